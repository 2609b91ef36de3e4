#!/usr/bin/env bash
# Consistent backup of the DuckDB ledger while the pipeline runs: attaches the file READ-ONLY (waits while a run
# holds the write lock) and copies every table into a new dated DuckDB file.
#   scripts/gradient_backup_duckdb.sh [SOURCE.duckdb] [BACKUP_DIR]
# Defaults: the configuration's duckdb_path (or $GRADIENT_DUCKDB_PATH) and ./backups. Keep 30 days, e.g.
#   find backups -name 'gradient-*.duckdb' -mtime +30 -delete
set -euo pipefail
cd "$(dirname "$0")/.."
export TZ=UTC
if command -v uv >/dev/null 2>&1; then RUN=(uv run --frozen --no-sync); else RUN=(env PATH="$PWD/.venv/bin:$PATH"); fi
"${RUN[@]}" python - "${1:-}" "${2:-backups}" <<'PY'
import datetime as dt
import os
import sys
import time
from pathlib import Path

import duckdb

src = sys.argv[1] or os.environ.get("GRADIENT_DUCKDB_PATH") or ""
if not src:
    from gradient_pipeline.config import load_config

    src = str(load_config().resolved_duckdb_path)
if not Path(src).exists():
    sys.exit(f"backup: {src} does not exist")
out_dir = Path(sys.argv[2])
out_dir.mkdir(parents=True, exist_ok=True)
dst = out_dir / f"gradient-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}.duckdb"
for attempt in range(60):  # a writer run holds the lock for seconds to minutes
    try:
        con = duckdb.connect()
        con.execute(f"ATTACH '{src}' AS src (READ_ONLY)")
        break
    except duckdb.IOException as err:
        if "lock" not in str(err).lower():
            raise
        time.sleep(5)
else:
    sys.exit(f"backup: {src} stayed locked for 5 minutes; try again later")
con.execute(f"ATTACH '{dst}' AS dst")
con.execute("COPY FROM DATABASE src TO dst")
n = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = 'dst'").fetchone()[0]
con.close()
print(f"backup: {src} → {dst} ({n} tables)")
PY
