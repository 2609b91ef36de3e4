"""The application layer: everything that wires the library packages together or launches Dagster runs.

Library packages (core, book, exchange, execution, monitoring, marketdata, research, localexchange, storage, signals)
never import from here, nor `gradient_pipeline.defs` / `gradient_pipeline.definitions`
(gradient_pipeline_tests/test_layering.py enforces it).

Modules: `main` (the `gradient-pipeline` dispatcher), `cli` (preflight, trades), `marketdata_cli` (import, backfill),
`execution_cli` (rebalance, demo), `monitoring_cli` (status, emergency stop, resume, watchdog, drill, simulate),
`warmup` (warm-up), `dagster_home` (`ensure_dagster_home`), `demo` (the offline demo), `drill` (the drawdown drill),
`simulate` (seeded fault schedules), `preflight` (the go-live checklist), `trades` (`gradient-pipeline trades`),
`demo_book` (where the last demo's configuration and book are, for `--demo`)."""
