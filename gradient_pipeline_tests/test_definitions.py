"""The code location loads: every domain's definitions merge, resolve and pass Dagster's own validation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from gradient_pipeline.definitions import defs

ROOT = Path(__file__).resolve().parent.parent


def test_definitions_are_loadable():
    dg.Definitions.validate_loadable(defs)


def test_market_data_assets_jobs_and_checks_are_registered():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"candles", "funding", "universe"} <= keys
    job = defs.resolve_job_def("market_data_job")
    assert job.tags.get("gradient/duckdb") == "writer"
    check_names = {k.name for k in graph.asset_check_keys}
    assert {"candles_fresh", "candles_no_gaps"} <= check_names
    for key in ("candles", "funding", "universe"):
        node = graph.get(dg.AssetKey(key))
        assert node.group_name == "market_data"
        assert node.backfill_policy == dg.BackfillPolicy.single_run()


def test_dagster_definitions_validate_cli(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "TZ": "UTC"}
    (tmp_path / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    dagster = Path(sys.executable).with_name("dagster")
    proc = subprocess.run([str(dagster), "definitions", "validate", "-w", "workspace.yaml"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Validation successful" in proc.stdout + proc.stderr


def test_monitor_alert_and_emergency_jobs_never_wait_for_duckdb():
    """They touch only the operations book, so they carry no DuckDB writer tag (never queued behind a backfill)."""
    for name in ("monitor_job", "emergency_stop_job", "drawdown_warning_job", "send_alert_job"):
        assert "gradient/duckdb" not in defs.resolve_job_def(name).tags, name
