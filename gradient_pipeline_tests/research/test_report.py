"""`research report` end to end on a small real panel: every section written, numbers consistent with the runs."""

from __future__ import annotations

import json

from gradient_pipeline.config import load_config
from gradient_pipeline.research.data import load_panel_freqtrade
from gradient_pipeline.research.report import build_report

COINS = ["BTC", "ETH", "SOL", "DOGE", "ARB", "OP", "LINK", "AVAX", "INJ", "SUI", "WIF", "kPEPE", "TIA"]


def test_report_writes_every_section(freqtrade_dir, tmp_path):
    panel = load_panel_freqtrade(freqtrade_dir, coins=COINS)
    cfg = load_config(None).model_copy(update={"liquidity_threshold_usd": 1000.0})
    rep = build_report(panel, cfg, tmp_path, hourly_dir=freqtrade_dir, end="2030-01-01", quick=True,
                       capitals=(5000.0, 5_000_000.0), log=lambda *_: None, track_dir=freqtrade_dir)
    md = (tmp_path / "report.md").read_text()
    for heading in ("## Strategy backtests", "## Capital scaling", "## Execution: IOC vs passive-first", "## Sweep",
                    "## Paper vs backtest tracking"):
        assert heading in md
    assert json.loads((tmp_path / "report.json").read_text())["end"] == rep["end"]
    # the end past the data is clipped to the data (no padded bars)
    assert rep["end"] == str(panel.times[-1] + __import__("pandas").Timedelta(hours=4))
    assert 0 < rep["exposure_check"]["share_of_nominal"] <= 2
    caps = [r["capital_usd"] for r in rep["capital_scaling"]]
    assert caps == [5000.0, 5_000_000.0, 5000.0, 5_000_000.0]  # as configured (refuse), then scale
    ex = rep["execution"]
    assert ex["passive_first"]["maker_share"] > 0.5 and ex["taker"]["maker_share"] == 0
    assert ex["taker"]["shortfall_bps"] >= cfg.costs.taker_fee_bps + cfg.costs.slippage_base_bps
    assert "VERDICT" in rep["sweep"]["statement"] and "dsr" in rep["sweep"]["overfit"]
    assert (tmp_path / "sweep_results.csv").stat().st_size > 0
    assert rep["tracking"]["windows"] == 6 and "tracking error per 4h window" in md
