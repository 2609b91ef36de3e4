"""`gradient-pipeline backtest` / `sweep` on the real data, the result tables, and the research assets."""

from __future__ import annotations

import base64
import json

import dagster as dg
import pandas as pd
import pytest

from gradient_pipeline.cli import main
from gradient_pipeline.defs.resources import GradientResource
from gradient_pipeline.storage.db import connect
from gradient_pipeline_tests.signals.conftest import fill_db, write_config

PNG = b"\x89PNG\r\n\x1a\n"


def test_backtest_cli_on_freqtrade_data(tmp_path, freqtrade_dir, capsys):
    db = tmp_path / "r.duckdb"
    cfg = write_config(tmp_path / "c.json", duckdb_path=str(db))
    rc = main(["backtest", "--start", "2024-06-01", "--end", "2024-09-01", "--config", str(cfg), "--source", "freqtrade",
               "--path", str(freqtrade_dir), "--out", str(tmp_path / "out")])
    assert rc == 0
    text = capsys.readouterr().out
    assert "sharpe" in text and "fees_paid" in text
    run_dir = next((tmp_path / "out").glob("backtest-*"))
    assert (run_dir / "equity.png").read_bytes().startswith(PNG)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    bars = pd.read_csv(run_dir / "bars.csv")
    assert metrics["n_bars"] == len(bars) == len(pd.date_range("2024-06-01", "2024-09-01", freq="4h", inclusive="left"))
    assert metrics["fees_paid"] > 0 and metrics["sharpe"] < metrics["sharpe_gross"]
    with connect(db, read_only=True) as conn:
        runs = conn.execute("SELECT * FROM backtest_runs").df()
        eq = conn.execute("SELECT count(*) FROM backtest_equity").fetchone()[0]
    assert len(runs) == 1 and eq == len(bars)
    assert runs.sharpe[0] == pytest.approx(metrics["sharpe"])
    assert json.loads(runs.config_json[0])["costs"]["taker_fee_bps"] == 4.5


def test_sweep_cli_small_grid(tmp_path, freqtrade_dir, capsys):
    db = tmp_path / "s.duckdb"
    cfg = write_config(tmp_path / "c.json", duckdb_path=str(db))
    rc = main(["sweep", "--start", "2024-01-01", "--end", "2025-01-01", "--split", "2024-09-01", "--grid", "small",
               "--folds", "2", "--config", str(cfg), "--source", "freqtrade", "--path", str(freqtrade_dir),
               "--out", str(tmp_path / "out")])
    assert rc == 0
    text = capsys.readouterr().out
    assert "In-sample" in text and "Out-of-sample" in text and "Walk-forward" in text
    with connect(db, read_only=True) as conn:
        results = conn.execute("SELECT * FROM sweep_results").df()
        runs = conn.execute("SELECT * FROM sweep_runs").df()
    assert len(results) == 56 and len(runs) == 1  # 16 choices; the 24h ones in each of their 6 phases
    assert runs.winner_config_id[0] == results.sort_values("is_sharpe", ascending=False).config_id.iloc[0]
    out = next((tmp_path / "out").glob("sweep-*"))
    assert (out / "heatmap_is_sharpe.png").read_bytes().startswith(PNG)


def test_cli_errors_are_clear(tmp_path, capsys):
    cfg = write_config(tmp_path / "c.json", duckdb_path=str(tmp_path / "missing.duckdb"))
    assert main(["backtest", "--start", "2024-01-01", "--end", "2024-02-01", "--config", str(cfg)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["backtest", "--start", "2024-01-01", "--end", "2024-02-01", "--config", str(cfg),
                 "--source", "freqtrade"]) == 2
    assert "--path" in capsys.readouterr().err


def test_backtest_and_sweep_assets(tmp_path, freqtrade_dir):
    from gradient_pipeline.defs.signals.research_assets import backtest, sweep
    from gradient_pipeline.marketdata.freqtrade import load_candles, load_funding

    coins = ["BTC", "ETH", "SOL", "DOGE", "ARB", "OP", "LINK", "AVAX", "INJ", "SUI"]
    db = tmp_path / "a.duckdb"
    fill_db(db, load_candles(freqtrade_dir, coins=coins, end="2024-01-01"),
            load_funding(freqtrade_dir, coins=coins, end="2024-01-01"))
    cfg = write_config(tmp_path / "c.json", duckdb_path=str(db))
    res = {"gradient": GradientResource(config_path=str(cfg), duckdb_path=str(db))}
    r = dg.materialize([backtest, sweep], resources=res,
                       run_config={"ops": {"sweep": {"config": {"split": "2023-09-01", "grid": "small", "folds": 2}}}})
    assert r.success
    meta = r.asset_materializations_for_node("backtest")[0].metadata
    md = meta["equity_chart"].value
    assert base64.b64decode(md.split("base64,")[1].rstrip(")")).startswith(PNG)
    assert meta["sharpe"].value < meta["sharpe_gross"].value
    smeta = r.asset_materializations_for_node("sweep")[0].metadata
    assert smeta["configs"].value == 56 and "In-sample" in smeta["statement"].value
    with connect(db, read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM backtest_runs").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM sweep_results").fetchone()[0] == 56
