"""`gradient-pipeline backfill`: one Dagster run over the whole range, recorded in the instance the UI reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from gradient_pipeline.config import parse_config
from gradient_pipeline.defs.market_data.backfill import BackfillRangeError, plan_backfill, run_backfill
from gradient_pipeline.definitions import defs
from gradient_pipeline.demo_data import FUTURES_DIR
from gradient_pipeline_tests.marketdata.conftest import read_table

ROOT = Path(__file__).resolve().parents[2]
CFG = parse_config({})


def test_plan_clips_to_the_source_and_counts_windows():
    plan = plan_backfill(CFG, "2025-04-29 01:00", "2026-01-01", "freqtrade", str(FUTURES_DIR))
    assert (plan.first_key, plan.last_key) == ("2025-04-29-04:00", "2025-04-30-20:00")
    assert plan.windows == 11 and plan.clipped_end
    default_end = plan_backfill(CFG, "2025-04-30", None, "freqtrade", str(FUTURES_DIR))
    assert default_end.last_key == "2025-04-30-20:00" and not default_end.clipped_end


def test_plan_refuses_bad_ranges():
    with pytest.raises(BackfillRangeError, match="before the first partition 2023-01-01-00:00"):
        plan_backfill(CFG, "2022-06-01", "2022-07-01", "freqtrade", str(FUTURES_DIR))
    with pytest.raises(BackfillRangeError, match="no complete 4h window"):
        plan_backfill(CFG, "2025-06-01", None, "freqtrade", str(FUTURES_DIR))


def test_backfill_is_one_run_recorded_in_the_instance(tmp_path, make_resources):
    res = make_resources(FUTURES_DIR)
    plan = plan_backfill(CFG, "2025-04-28", None, "freqtrade", str(FUTURES_DIR))
    (tmp_path / "home").mkdir()
    with dg.DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        result = run_backfill(defs, plan, instance, "freqtrade", str(FUTURES_DIR), resources=res)
        assert result.success
        runs = instance.get_runs()
        assert len(runs) == 1 and runs[0].job_name == "market_data_job"
        assert runs[0].tags["dagster/asset_partition_range_start"] == "2025-04-28-00:00"
        assert runs[0].tags["gradient/duckdb"] == "writer"
        done = instance.get_materialized_partitions(dg.AssetKey("candles"))
        assert len(done) == plan.windows == 18
    c = read_table(res, "candles")
    assert c["ts"].min() == pd.Timestamp("2025-04-28") and c["ts"].max() == pd.Timestamp("2025-04-30 20:00")
    assert c["coin"].nunique() == 26  # 30 coins minus the 4 delisted earlier in April
    u = read_table(res, "universe")
    assert u.loc[u["ts"] == u["ts"].max(), "is_delisted"].sum() == 4


def _cli(args, tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "GRADIENT_DUCKDB_PATH": str(tmp_path / "cli.duckdb"),
           "TZ": "UTC"}
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({}))
    env["GRADIENT_CONFIG"] = str(cfg)
    exe = Path(sys.executable).with_name("gradient-pipeline")
    return subprocess.run([str(exe), "backfill", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_cli_backfill_runs_in_dagster_home(tmp_path):
    proc = _cli(["--demo", "--start", "2025-04-30T16:00"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 windows from freqtrade" in proc.stdout and "success" in proc.stdout
    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        assert [r.job_name for r in instance.get_runs()] == ["market_data_job"]


def test_cli_backfill_bad_range_is_one_clear_line(tmp_path):
    proc = _cli(["--start", "2020-01-01", "--end", "2020-02-01", "--path", str(FUTURES_DIR)], tmp_path)
    assert proc.returncode == 2
    assert "before the first partition" in proc.stderr and "Traceback" not in proc.stderr


def test_summary_digs_the_user_error_out_of_dagsters_wrapper():
    """A plain exception in user code is wrapped by Dagster ("Error occurred while executing op …"); the summary
    (what the CLI prints) carries the exception's own text."""
    from gradient_pipeline.defs.market_data.backfill import summarize

    @dg.op
    def breaks():
        raise ValueError("metaAndAssetCtxs ctx[1] (coin ETH): field 'markPx' is missing")

    @dg.job
    def j():
        breaks()

    result = j.execute_in_process(raise_on_error=False)
    summary = summarize(result)
    assert not summary["success"]
    assert summary["failures"] == [("breaks", "ValueError: metaAndAssetCtxs ctx[1] (coin ETH): field 'markPx' is missing")]
