"""The application layer: operator commands that wire several domains together (exchange, book, research, alerts)
and read the operations book and the configuration; no Dagster. Library packages never import from here.

Modules: `cli` (registers the commands), `preflight` (the go-live checklist), `trades` (`gradient-pipeline
trades`), `demo_book` (where the last demo's configuration and book are, for `--demo`)."""
