#!/usr/bin/env bash
# One 4h trading cycle without the Dagster daemon, for operators who drive the pipeline from cron:
#   1. materialise the latest complete window's market data, signals and target_weights (with their checks);
#   2. run rebalance_job for that window (refuses stale/unchecked targets, refuses while halted, records all).
# Both runs go into the project's Dagster instance (DAGSTER_HOME, default .dagster_home) and show in the UI.
#
# crontab (five-plus minutes after each 4h candle close, UTC):
#   7 */4 * * *  cd /srv/gradient-pipeline && GRADIENT_CONFIG=/etc/gradient/live.json scripts/gradient_rebalance.sh >> /var/log/gradient/rebalance.log 2>&1
#
# Secrets come from the environment (e.g. `EnvironmentFile=` of a systemd timer, or a root-only file sourced
# here via GRADIENT_ENV_FILE); never put them in the crontab line. A lock file keeps two cycles from overlapping.
# Exit code: 0 traded (or nothing to do), 1 the data run or the rebalance did not complete (see the log), 2 error.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
export TZ=UTC
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/.dagster_home}"
if [ -n "${GRADIENT_ENV_FILE:-}" ]; then
  # shellcheck disable=SC1090
  set -a; . "$GRADIENT_ENV_FILE"; set +a
fi

if command -v uv >/dev/null 2>&1; then
  RUN=(uv run --frozen --no-sync)
elif [ -x .venv/bin/python ]; then
  RUN=(env PATH="$PWD/.venv/bin:$PATH")
else
  echo "gradient_rebalance: neither uv nor .venv found in $(pwd)" >&2
  exit 2
fi

exec 9>"${GRADIENT_REBALANCE_LOCK:-/tmp/gradient_rebalance.lock}"
if ! flock -n 9; then
  echo "$(date -u '+%F %T') UTC another gradient_rebalance.sh is still running; skipping this cycle"
  exit 0
fi

# The window is chosen by the exchange clock (the same rule the schedule and the rebalance job use).
KEY=$("${RUN[@]}" python - <<'PY'
from gradient_pipeline.config import load_config
from gradient_pipeline.exchange.hyperliquid.client import HyperliquidClient
from gradient_pipeline.timegrid import latest_complete_bar_open, partition_key
print(partition_key(latest_complete_bar_open(HyperliquidClient.from_config(load_config()).server_time())))
PY
) || { echo "gradient_rebalance: cannot read the exchange clock" >&2; exit 2; }

echo "$(date -u '+%F %T') UTC window $KEY: materialising targets"
"${RUN[@]}" python - "$KEY" <<'PY' || { echo "window $KEY: data run failed; no rebalance"; exit 1; }
import sys

import dagster as dg

from gradient_pipeline.app.dagster_home import ensure_dagster_home
from gradient_pipeline.definitions import defs

ensure_dagster_home()
job = defs.resolve_job_def("trading_window_job")
result = job.execute_in_process(partition_key=sys.argv[1], instance=dg.DagsterInstance.get(), raise_on_error=False,
                                tags={"gradient/window": sys.argv[1], "gradient/launched_by": "cron"})
print(f"data run {result.run_id}: {'success' if result.success else 'FAILED'}")
sys.exit(0 if result.success else 1)
PY

echo "$(date -u '+%F %T') UTC window $KEY: rebalancing"
"${RUN[@]}" gradient-pipeline rebalance --window "$KEY"
