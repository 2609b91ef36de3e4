"""`gradient-pipeline warm-up`: market data + signals for the history, quiet console, chunked runs in order."""

import json
import os
import subprocess
import sys

import duckdb
import pandas as pd

from gradient_pipeline.demo_data import FUTURES_DIR
from gradient_pipeline.app.warmup import plan_chunks


def test_chunks_cover_the_range_in_order_without_overlap():
    chunks = plan_chunks(pd.Timestamp("2025-01-01"), pd.Timestamp("2025-01-10 20:00"), 4)
    assert [c.first_key for c in chunks] == ["2025-01-01-00:00", "2025-01-05-00:00", "2025-01-09-00:00"]
    assert chunks[-1].last_key == "2025-01-10-20:00" and sum(c.windows for c in chunks) == 60
    assert plan_chunks(pd.Timestamp("2025-01-02"), pd.Timestamp("2025-01-01"), 4) == []


def test_warm_up_fills_market_data_and_targets_quietly(tmp_path):
    cfg = tmp_path / "cfg.json"
    db = tmp_path / "g.duckdb"
    cfg.write_text(json.dumps({"duckdb_path": str(db), "lookback_spans": [2, 4, 8], "vol_span": 4,
                               "data": {"source": "freqtrade", "freqtrade_dir": str(FUTURES_DIR)}}))
    env = {**os.environ, "GRADIENT_CONFIG": str(cfg), "DAGSTER_HOME": str(tmp_path / "dh"),
           "GRADIENT_PARTITIONS_START": "2024-10-01-00:00", "GRADIENT_DEBUG": "1"}
    env.pop("GRADIENT_DUCKDB_PATH", None)
    out = subprocess.run([sys.executable, "-m", "gradient_pipeline.cli", "warm-up", "--start", "2025-04-20",
                          "--chunk-days", "6"], env=env, capture_output=True, text=True, timeout=600, check=False)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    assert "DEBUG" not in text and "BetaWarning" not in text  # Dagster's chatter stays in the instance
    assert "2025-04-20-00:00 … 2025-04-25-20:00: run" in text and "warm-up done" in text
    with duckdb.connect(str(db), read_only=True) as conn:
        first, last = conn.execute("SELECT min(ts), max(ts) FROM candles").fetchone()
        assert str(first) == "2025-04-20 00:00:00" and str(last) == "2025-04-30 20:00:00"
        assert conn.execute("SELECT count(DISTINCT rebalance_time) FROM target_weights").fetchone()[0] > 0
    # the runs are in the project's instance (the UI lists them)
    import dagster as dg

    from dagster._core.instance.ref import InstanceRef

    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(tmp_path / "dh"))) as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"gradient/command": "warm-up"}))
        assert len(runs) == 2 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
