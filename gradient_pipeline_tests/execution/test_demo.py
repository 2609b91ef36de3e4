"""The README's main command, end to end on the bundled data: real market-data and strategy assets with their real
checks, the real gate, the rebalance job, the local exchange — two 4h cycles (~1-2 minutes)."""

import os
import subprocess
import sys

import dagster as dg

from gradient_pipeline_tests.conftest import book_frame


def test_demo_trades_two_cycles_through_dagster(tmp_path, monkeypatch, capsys):
    home, work = tmp_path / "dagster_home", tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADIENT_")}
    env.update(DAGSTER_HOME=str(home), TZ="UTC")
    out = subprocess.run([sys.executable, "-m", "gradient_pipeline.cli", "demo", "--cycles", "2",
                          "--workdir", str(work)], env=env, capture_output=True, text=True, timeout=600,
                         check=False)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    text = out.stdout
    assert "cycle 1 [2025-04-10 00:05:00]: window 2025-04-09-20:00 → rebalance complete" in text
    assert "cycle 2 [2025-04-10 04:05:00]: window 2025-04-10-00:00 → rebalance complete" in text
    assert "=== demo summary ===" in text and "rebalances: 2 (complete 2)" in text
    db = work / "gradient_demo.duckdb"  # the demo's book is the SQLite file beside it
    reb = book_frame(db, "SELECT status, n_orders, n_fills FROM rebalances ORDER BY window_ts")
    pos = book_frame(db, "SELECT weight, target_weight FROM positions WHERE source = 'rebalance_end' "
                         "AND ts = (SELECT max(ts) FROM positions)")
    unresolved = book_frame(db, "SELECT count(*) AS n FROM orders WHERE status NOT IN ('filled', 'partial')")["n"]
    assert list(reb["status"]) == ["complete", "complete"] and (reb["n_orders"] > 0).all()
    assert (reb["n_fills"] >= reb["n_orders"]).all() and unresolved[0] == 0
    assert len(pos) >= 10 and (pos["weight"] - pos["target_weight"]).abs().max() < 0.0025  # at target (rounding)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"gradient/demo": "cycle-2"}))
        # each cycle: the window's data, its rebalance, then the dashboard's monitor run
        assert {r.job_name for r in runs} == {"trading_window_job", "rebalance_job", "monitor_job"}
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
        mats = instance.fetch_materializations(dg.AssetKey("executed_orders"), limit=10).records
        assert len(mats) == 2

    # the demo's summary names the commands that show it again, and they work from its book (exchange gone)
    assert "status --demo --demo-dir" in text and "trades --demo --demo-dir" in text
    assert "uv run gradient-pipeline ui" in text
    from gradient_pipeline.cli import main

    monkeypatch.delenv("GRADIENT_CONFIG", raising=False)
    monkeypatch.delenv("GRADIENT_DUCKDB_PATH", raising=False)
    main(["status", "--demo", "--demo-dir", str(work), "--json"])  # exit code: the drawdown level (safety branch)
    captured = capsys.readouterr()
    status = __import__("json").loads(captured.out)
    assert status["mode"] == "paper" and status["account_value"] is not None
    assert len(status["positions"]) == len(pos)
    assert status["targets"]["weights"] and status["last_rebalance"]["status"] == "complete"
    assert "the last demo's book" in captured.err
    assert main(["trades", "--demo", "--demo-dir", str(work)]) == 0
    trades_text = capsys.readouterr().out
    n_fills = int(book_frame(db, "SELECT count(*) AS n FROM fills")["n"][0])
    assert f"fills ({n_fills})" in trades_text and "P&L per coin" in trades_text
