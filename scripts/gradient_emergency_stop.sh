#!/usr/bin/env bash
# EMERGENCY STOP: halt trading, cancel every open order, close every position (reduce-only IOC), alert.
# Works with the Dagster daemon and webserver down: it talks to the exchange and the DuckDB file directly.
#
#   scripts/gradient_emergency_stop.sh                 # asks for confirmation (type "yes")
#   scripts/gradient_emergency_stop.sh --yes           # no question (automation, a second terminal in a panic)
#   scripts/gradient_emergency_stop.sh --yes --reason "exchange incident"
#
# Needs the same environment as trading: GRADIENT_CONFIG (or config/gradient_live.json), GRADIENT_PRIVATE_KEY,
# GRADIENT_ACCOUNT_ADDRESS, and GRADIENT_ALERT_URLS for the alert. Exit code 0 = flat and halted; 1 = positions
# left open (close them in the exchange UI NOW) or not confirmed; 2 = error (message on stderr).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
export TZ=UTC

if command -v uv >/dev/null 2>&1; then
  GP=(uv run --frozen --no-sync gradient-pipeline)
elif [ -x .venv/bin/gradient-pipeline ]; then
  GP=(.venv/bin/gradient-pipeline)
else
  echo "gradient_emergency_stop: neither uv nor .venv/bin/gradient-pipeline found in $(pwd)" >&2
  exit 2
fi

echo "$(date -u '+%Y-%m-%d %H:%M:%S') UTC emergency stop starting (config: ${GRADIENT_CONFIG:-config/gradient_live.json})"
"${GP[@]}" emergency-stop --flatten-all "$@"
rc=$?
echo "--- status after the emergency stop ---"
"${GP[@]}" status || true
exit $rc
