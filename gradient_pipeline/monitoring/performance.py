"""Live performance against the backtest's expectation for the same period, and the performance report charts.

Live returns come from the ledger's mark-to-market `equity` snapshots, sampled at the end of each 4h bar.
The expectation is the backtest's per-bar **net** return (`core.backtest` `bars["net"]`, fees, funding and
slippage included; stored by research in `backtest_equity`) over exactly the same bars. Over n bars:

    live   = Π(1 + live_ret) − 1          expected = Π(1 + bt_net) − 1
    sd     = σ(bt_net over the whole backtest) · √n
    z      = (live − expected) / sd       → alert when z < −alerts.underperformance_sigma

Using the backtest's own bar volatility (not the live sample's) keeps z stable over the first few days.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from gradient_pipeline.storage.db import table_exists

MIN_BARS = 6  # one day of 4h bars before the comparison means anything


@dataclass(frozen=True)
class Comparison:
    start: pd.Timestamp
    end: pd.Timestamp
    n_bars: int
    live_return: float  # fraction
    expected_return: float  # fraction
    sd: float  # fraction, for the whole period
    z: float

    @property
    def period(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M} → {self.end:%Y-%m-%d %H:%M} UTC ({self.n_bars} bars)"


def live_bar_equity(equity: pd.DataFrame, freq: str = "4h") -> pd.Series:
    """Account value at the end of each bar (last snapshot inside the bar), indexed by bar open time."""
    if equity.empty:
        return pd.Series(dtype=float)
    s = equity.set_index(pd.to_datetime(equity["ts"]))["account_value_usd"].sort_index()
    return s.resample(freq, label="left", closed="left").last().dropna()


def compare(live_equity_by_bar: pd.Series, backtest_net: pd.Series) -> Comparison | None:
    """z-score of live vs backtest over the bars both cover (None if fewer than MIN_BARS)."""
    live_ret = live_equity_by_bar.pct_change().dropna()
    bt = backtest_net.dropna()
    common = live_ret.index.intersection(bt.index)
    if len(common) < MIN_BARS or len(bt) < 2:
        return None
    lr, br = live_ret.loc[common], bt.loc[common]
    live_total = float(np.prod(1 + lr.to_numpy()) - 1)
    expected = float(np.prod(1 + br.to_numpy()) - 1)
    sd = float(np.std(bt.to_numpy(), ddof=1) * math.sqrt(len(common)))
    z = (live_total - expected) / sd if sd > 0 else 0.0
    return Comparison(common[0], common[-1], len(common), live_total, expected, sd, z)


def expectation_band(live_equity_by_bar: pd.Series, backtest_net: pd.Series, n_sigma: float) -> pd.DataFrame:
    """Expected equity path (start at the first live value) and ±n_sigma band, on the live bars."""
    bt = backtest_net.dropna()
    idx = live_equity_by_bar.index.intersection(bt.index)
    if len(idx) < 2:
        return pd.DataFrame(columns=["expected", "lower", "upper"])
    start_value = float(live_equity_by_bar.loc[idx[0]])
    sigma = float(np.std(bt.to_numpy(), ddof=1))
    steps = bt.loc[idx].copy()
    steps.iloc[0] = 0.0  # the first bar is the starting point
    expected = start_value * np.cumprod(1 + steps.to_numpy())
    k = np.arange(len(idx))
    half = n_sigma * sigma * np.sqrt(k) * start_value
    return pd.DataFrame({"expected": expected, "lower": expected - half, "upper": expected + half}, index=idx)


def load_backtest_net(conn: duckdb.DuckDBPyConnection, since=None) -> pd.Series | None:
    """Per-bar net returns (`backtest_equity.net`, indexed by bar time) of the newest stored backtest
    (`backtest_runs.created_at`) that reaches past `since` (the first live bar); None if there is none.

    The research domain writes these tables (`gradient-pipeline backtest`, the `backtest` asset); run a backtest over
    the live period to get the comparison and the band in `performance_report`.
    """
    if not (table_exists(conn, "backtest_runs") and table_exists(conn, "backtest_equity")):
        return None
    where, params = ("WHERE end_ts >= ?", [pd.Timestamp(since).to_pydatetime()]) if since is not None else ("", [])
    run = conn.execute(f"SELECT run_id FROM backtest_runs {where} ORDER BY created_at DESC LIMIT 1", params).fetchone()
    if run is None:
        return None
    df = conn.execute("SELECT ts, net FROM backtest_equity WHERE run_id = ? ORDER BY ts", [run[0]]).df()
    if df.empty:
        return None
    return pd.Series(df["net"].to_numpy(dtype=float), index=pd.DatetimeIndex(df["ts"]), name="net")


# ------------------------------------------------------------------------------------------------ charts


def render_report(equity: pd.DataFrame, band: pd.DataFrame | None, out_dir: Path, title: str) -> tuple[Path, Path]:
    """Four charts (equity with the backtest band, drawdown, exposure, live vs backtest) → PNG + HTML files."""
    import base64

    import matplotlib

    matplotlib.use("Agg")  # no display in runs
    import matplotlib.pyplot as plt

    from gradient_pipeline.monitoring.equity import drawdown_series

    out_dir.mkdir(parents=True, exist_ok=True)
    eq = equity.copy()
    eq["ts"] = pd.to_datetime(eq["ts"])
    eq = eq.sort_values("ts").drop_duplicates("ts", keep="last").set_index("ts")
    fig, axes = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    ax = axes[0]
    if len(eq):
        ax.plot(eq.index, eq["account_value_usd"], label="live account value", color="tab:blue")
    if band is not None and len(band):
        ax.plot(band.index, band["expected"], label="backtest expectation", color="tab:green", linestyle="--")
        ax.fill_between(band.index, band["lower"], band["upper"], color="tab:green", alpha=0.15, label="±band")
    ax.set_ylabel("USD")
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8)
    ax = axes[1]
    if len(eq):
        dd = drawdown_series(eq["account_value_usd"])
        ax.fill_between(dd.index, -dd.to_numpy(), 0, color="tab:red", alpha=0.4)
    ax.set_ylabel("drawdown %")
    ax = axes[2]
    if len(eq):
        ax.plot(eq.index, eq["gross_exposure_usd"], label="gross", color="tab:purple")
        ax.plot(eq.index, eq["net_exposure_usd"], label="net", color="tab:orange")
        ax.legend(loc="best", fontsize=8)
    ax.set_ylabel("exposure USD")
    fig.autofmt_xdate()
    fig.tight_layout()
    png = out_dir / "performance_report.png"
    fig.savefig(png, dpi=90)
    plt.close(fig)
    b64 = base64.b64encode(png.read_bytes()).decode()
    last = eq.iloc[-1] if len(eq) else None
    summary = (
        f"<p>Account value ${last['account_value_usd']:,.2f}; snapshots {len(eq)}; "
        f"max drawdown {drawdown_series(eq['account_value_usd']).max():.2f}%.</p>" if last is not None else "<p>No equity yet.</p>"
    )
    html = out_dir / "performance_report.html"
    html.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
        f"<h1>{title}</h1>{summary}<img alt='performance charts' src='data:image/png;base64,{b64}'/></body></html>"
    )
    return png, html
