"""Operator-facing views over the whole system (they read the operations book and the configuration; no Dagster).

Modules: `cli` (registers the commands), `trades` (`gradient-pipeline trades`), `demo_book` (where the last demo's
configuration and book are, for `--demo`)."""
