"""The performance report's tables, its band σ (tracking error when stored) and the demo's bounded partitions."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from gradient_pipeline.config import parse_config
from gradient_pipeline.monitoring.performance import (
    expectation_band,
    period_table,
    render_report,
    tracking_path,
    underperformance_sigma,
)


def _equity(n=30, start="2025-04-09 20:00"):
    ts = pd.date_range(start, periods=n, freq="4h")
    av = 10_000 + np.cumsum(np.where(np.arange(n) % 3, 10.0, -25.0))
    return pd.DataFrame({"ts": ts, "source": "monitor", "account_value_usd": av, "gross_exposure_usd": 7_000.0,
                         "net_exposure_usd": 50.0, "n_positions": 20})


def test_daily_and_weekly_tables_add_up_to_the_equity_change():
    eq = _equity()
    # a rebalance's start snapshot at the first exchange time, written before the monitor's: P&L starts there
    eq = pd.concat([eq.iloc[:1].assign(source="rebalance_start", account_value_usd=10_020.0), eq], ignore_index=True)
    fills = pd.DataFrame({"time": eq["ts"][:4], "fee_usd": [1.5, 1.0, 0.5, 0.25]})
    funding = pd.DataFrame({"time": eq["ts"][2:12], "usdc": [-0.1] * 10})
    daily = period_table(eq, fills, funding, "D")
    weekly = period_table(eq, fills, funding, "W")
    total = eq["account_value_usd"].iloc[-1] - 10_020.0
    for t in (daily, weekly):
        assert t["P&L (USD)"].sum() == pytest.approx(total, abs=0.05)
        assert t["fees (USD)"].sum() == pytest.approx(3.25) and t["funding (USD)"].sum() == pytest.approx(-1.0)
        assert t["snapshots"].sum() == len(eq) - 1  # one row per exchange time: the newest
    assert list(daily["period (UTC)"][:2]) == ["2025-04-09", "2025-04-10"]
    assert weekly["period (UTC)"].iloc[0] == "2025-04-07 (week)"  # weeks start Monday (UTC)
    assert (daily["max drawdown (%)"] >= 0).all()


def test_band_uses_the_tracking_error_when_a_tracking_run_is_stored(tmp_path):
    cfg = parse_config({"duckdb_path": str(tmp_path / "gradient.duckdb")})
    live = _equity().set_index("ts")["account_value_usd"]
    bt = pd.Series(0.001, index=live.index).where(np.arange(len(live)) % 2 == 0, 0.003)
    fallback = underperformance_sigma(cfg, bt)  # no tracking run yet: the backtest's own σ, said loudly
    assert fallback.source == "backtest" and "FALLBACK" in fallback.note
    tracking_path(cfg).write_text(json.dumps({"tracking_error_bp": 20.0, "created_at": "2025-06-01T00:00:00Z",
                                              "windows": 72, "start": "2025-05-20", "execution": "ioc"}))
    sigma = underperformance_sigma(cfg, bt)
    assert sigma.source == "tracking" and sigma.per_bar == pytest.approx(0.002) and "72 windows" in sigma.note
    wide = expectation_band(live, bt, 2.0, sigma_per_bar=0.004)
    narrow = expectation_band(live, bt, 2.0, sigma_per_bar=sigma.per_bar)
    assert (wide["upper"] - wide["expected"]).iloc[-1] == pytest.approx(2 * (narrow["upper"] - narrow["expected"]).iloc[-1])
    half = 2.0 * 0.002 * np.sqrt(len(live) - 1) * live.iloc[0]
    assert (narrow["upper"] - narrow["expected"]).iloc[-1] == pytest.approx(half)


def test_html_report_has_tables_units_and_the_band_note(tmp_path):
    eq = _equity()
    _png, html = render_report(eq, None, tmp_path, "paper <demo>", fills=pd.DataFrame({"time": [], "fee_usd": []}),
                               funding=None, band_note="none — no tracking run yet")
    text = html.read_text()
    assert "paper &lt;demo&gt;" in text  # escaped
    for s in ("Daily P&amp;L (UTC days)", "Weekly P&amp;L", "account value (USD)", "n/a (not fetched)",
              "none — no tracking run yet", "2025-04-09 20:00 → 2025-04-14 16:00", "<table"):
        assert s in text, s


def _keys_in_subprocess(env_extra: dict, tmp_path) -> list[str]:
    code = ("import json; from gradient_pipeline.defs.partitions import four_hourly as f; "
            "k = f.get_partition_keys(); print(json.dumps([len(k), k[0], k[-1]]))")
    env = {**{k: v for k, v in __import__("os").environ.items() if not k.startswith("GRADIENT_")}, **env_extra}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_partitions_are_bounded_by_the_configured_data_range(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"mode": "paper", "data": {"partitions_start": "2025-04-09-20:00",
                                                          "partitions_end": "2025-04-10-20:00"}}))
    assert _keys_in_subprocess({"GRADIENT_CONFIG": str(cfg)}, tmp_path) == [6, "2025-04-09-20:00", "2025-04-10-16:00"]
    # the environment wins over the file (the demo's warm-up needs its longer history in-process)
    env = {"GRADIENT_CONFIG": str(cfg), "GRADIENT_PARTITIONS_START": "2025-04-01-00:00"}
    assert _keys_in_subprocess(env, tmp_path) == [59, "2025-04-01-00:00", "2025-04-10-16:00"]


def test_ui_demo_environment_names_the_demo_and_its_windows(tmp_path):
    from gradient_pipeline.app.demo_book import demo_ui_env

    with pytest.raises(FileNotFoundError, match="run `uv run gradient-pipeline demo` first"):
        demo_ui_env(tmp_path)
    (tmp_path / "gradient_demo.json").write_text(json.dumps({"duckdb_path": str(tmp_path / "d.duckdb")}))
    (tmp_path / "demo_run.json").write_text(json.dumps({
        "account": "0xabc", "dagster_home": "/h", "partitions_start": "2025-04-09-20:00",
        "partitions_end": "2025-04-10-20:00"}))
    env = demo_ui_env(tmp_path)
    assert env == {"GRADIENT_CONFIG": str(tmp_path / "gradient_demo.json"), "GRADIENT_DUCKDB_PATH": str(tmp_path / "d.duckdb"),
                   "DAGSTER_HOME": "/h", "GRADIENT_PARTITIONS_START": "2025-04-09-20:00",
                   "GRADIENT_PARTITIONS_END": "2025-04-10-20:00", "GRADIENT_ACCOUNT_ADDRESS": "0xabc"}
    assert not any("KEY" in k for k in env)
