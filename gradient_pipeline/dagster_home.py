"""Where Dagster keeps runs, events and schedules for this project.

`DAGSTER_HOME` defaults to `<project>/.dagster_home`, created on first use with the project's `dagster.yaml`
(telemetry off, run-tag limits that keep DuckDB writers and rebalances from overlapping). Every command that
launches Dagster runs (`demo`, `backfill`, `ui`, `rebalance`) calls `ensure_dagster_home()` first, so the runs
they make show up in the UI.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def ensure_dagster_home() -> Path:
    home = Path(os.environ.get("DAGSTER_HOME") or PROJECT_ROOT / ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    source = PROJECT_ROOT / "dagster.yaml"
    if source.exists() and (not target.exists() or target.read_bytes() != source.read_bytes()):
        shutil.copyfile(source, target)
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ.setdefault("TZ", "UTC")
    return home
