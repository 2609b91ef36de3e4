"""Where Dagster keeps runs, events and schedules for this project.

`DAGSTER_HOME` defaults to `<project>/.dagster_home`. Every command that launches Dagster runs (`demo`, `backfill`,
`ui`, `rebalance`, `drawdown-drill`) calls `ensure_dagster_home()` first, so the runs they make show up in the UI.

`DAGSTER_HOME/dagster.yaml` is the operator's file: it is created from the project's dev template (`dagster.yaml`:
telemetry off, run-tag limits) **only when it is missing**, and never overwritten — an installed
`deploy/dagster.production.yaml` (PostgreSQL storage, retention) survives every command. When it differs from the
dev template a one-line warning says so (expected for production; a hint when a stale dev copy lacks new limits).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # gradient_pipeline/app/ -> the checkout
DEV_TEMPLATE = PROJECT_ROOT / "dagster.yaml"

log = logging.getLogger(__name__)


def ensure_dagster_home() -> Path:
    home = Path(os.environ.get("DAGSTER_HOME") or PROJECT_ROOT / ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if DEV_TEMPLATE.exists():
        if not target.exists():
            tmp = target.with_suffix(".yaml.tmp")
            shutil.copyfile(DEV_TEMPLATE, tmp)
            os.replace(tmp, target)  # atomic: a concurrent command never sees half a file
        elif target.read_bytes() != DEV_TEMPLATE.read_bytes():
            log.warning("%s differs from the dev template %s; using it unchanged", target, DEV_TEMPLATE)
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ.setdefault("TZ", "UTC")
    return home
