"""Every Dagster run tag this project sets or reads (`gradient/...`), in one place (Dagster-free constants).

The concurrency limits in `dagster.yaml` and `deploy/dagster.production.yaml` key on `DUCKDB`, `EXCLUSIVE` and
`KIND`: rename one there too. Tests read the literal values on purpose (they are what operators filter by in the UI).
"""

from __future__ import annotations

# --- concurrency (dagster.yaml `tag_concurrency_limits`)
DUCKDB = "gradient/duckdb"  # "writer": one DuckDB writer at a time; monitor/alert/emergency runs never carry it
DUCKDB_WRITER = {DUCKDB: "writer"}
EXCLUSIVE = "gradient/exclusive"  # "rebalance": one rebalance run at a time (queued, not dropped)
KIND = "gradient/kind"  # monitor | emergency | resume (production limits emergency/resume separately)

# --- what launched the run
COMMAND = "gradient/command"  # CLI command that launched it: backfill | warm-up
DEMO = "gradient/demo"  # cycle-N of `gradient-pipeline demo`
DRILL = "gradient/drill"  # "true" on runs of `gradient-pipeline drawdown-drill`

# --- trading cycle
WINDOW = "gradient/window"  # partition key of the 4h window a trading/rebalance run serves
WINDOW_CLOSE = "gradient/window_close"  # exchange-clock close of that window (ISO; latency starts here)
TICK_LAG_S = "gradient/tick_lag_s"  # how late the schedule tick ran after the close (exchange clock, s)
UPSTREAM_RUN = "gradient/upstream_run"  # the window run whose targets a rebalance run trades

# --- rebalance outcome (set by the run itself)
OUTCOME = "gradient/outcome"  # traded | skipped (refused/failed runs fail)
SKIP_REASON = "gradient/skip_reason"
SKIPPED = "gradient/skipped"  # "another rebalance is running" (the book's rebalance lock was held)

# --- monitoring
DRAWDOWN_PCT = "gradient/drawdown_pct"  # drawdown that made the sensor request an emergency run
