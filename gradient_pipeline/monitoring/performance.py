"""Live performance against the backtest's expectation for the same period, and the performance report charts.

Live returns come from the ledger's mark-to-market `equity` snapshots, sampled at the end of each 4h bar.
The expectation is the backtest's per-bar **net** return (`core.backtest` `bars["net"]`, fees, funding and
slippage included; stored by research in `backtest_equity`) over exactly the same bars. Over n bars:

    live   = Π(1 + live_ret) − 1          expected = Π(1 + bt_net) − 1
    sd     = σ · √n
    z      = (live − expected) / sd       → alert when z < −alerts.underperformance_sigma

σ is the **tracking error per 4h window** of the latest paper-vs-backtest tracking run (`gradient-pipeline
research track`: the real rebalance loop on the local exchange against the as-live backtest over the same
windows; the standard deviation of the per-window difference as a fraction of capital), read from
``tracking_error.json`` beside the DuckDB file (`tracking_path`). It measures how far live may wander from the
backtest through execution alone (fees, slippage, minimum orders, rounding, timing) — the market moves are common
to both. When no tracking run is stored (or the file is unreadable) σ falls back to the backtest's own bar
volatility, which is far wider (the check then only catches gross failures), and the daily summary and the log
say so every day (`UnderperformanceSigma.note`).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from gradient_pipeline.storage.db import table_exists

MIN_BARS = 6  # one day of 4h bars before the comparison means anything

log = logging.getLogger(__name__)


def tracking_path(cfg) -> Path:
    """The latest tracking run's summary (`Config.tracking_error_path`, beside the DuckDB file). Written by
    `gradient-pipeline research track` (research/tracking.py), read here."""
    return cfg.tracking_error_path


@dataclass(frozen=True)
class UnderperformanceSigma:
    per_bar: float  # fraction of capital per 4h bar
    source: str  # "tracking" | "backtest"
    note: str  # one sentence for the operator: where σ comes from (loud when it is the fallback)


def underperformance_sigma(cfg, backtest_net: pd.Series | None) -> UnderperformanceSigma | None:
    """σ per 4h bar for the underperformance check: the stored tracking error, else (loudly) the backtest's bar
    volatility; None when neither exists."""
    path = tracking_path(cfg)
    problem = None
    if path.exists():
        try:
            doc = json.loads(path.read_text())
            bp = float(doc["tracking_error_bp"])
            if not (math.isfinite(bp) and bp > 0):
                raise ValueError(f"tracking_error_bp is {bp!r}, not a positive number")
            return UnderperformanceSigma(bp / 1e4, "tracking", (
                f"σ = {bp:.2f} bp per 4h window: the tracking error of the paper-vs-backtest run of "
                f"{doc.get('created_at', '?')} ({doc.get('windows', '?')} windows from {doc.get('start', '?')}, "
                f"{doc.get('execution', '?')}, {path})"))
        except (OSError, ValueError, KeyError, TypeError) as err:
            problem = f"{path} is unreadable ({type(err).__name__}: {err})"
    else:
        problem = f"no paper-vs-backtest tracking run is stored ({path} does not exist)"
    bt = backtest_net.dropna() if backtest_net is not None else None
    if bt is None or len(bt) < 2:
        return None
    sd = float(np.std(bt.to_numpy(), ddof=1))
    note = (f"UNDERPERFORMANCE σ FALLBACK: {problem}; using the backtest's own bar volatility "
            f"({sd * 1e4:.1f} bp per 4h bar), which is far wider than the execution noise the check is for. "
            "Run `gradient-pipeline research track` to store the tracking error.")
    log.warning(note)
    return UnderperformanceSigma(sd, "backtest", note)


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
    s = equity.set_index(pd.to_datetime(equity["ts"]))["account_value_usd"].sort_index(kind="stable")
    return s.resample(freq, label="left", closed="left").last().dropna()


def compare(live_equity_by_bar: pd.Series, backtest_net: pd.Series,
            sigma_per_bar: float | None = None) -> Comparison | None:
    """z-score of live vs backtest over the bars both cover (None if fewer than MIN_BARS). ``sigma_per_bar``:
    σ of one bar (`underperformance_sigma`); None: the backtest's own bar volatility."""
    live_ret = live_equity_by_bar.pct_change().dropna()
    bt = backtest_net.dropna()
    common = live_ret.index.intersection(bt.index)
    if len(common) < MIN_BARS or len(bt) < 2:
        return None
    lr, br = live_ret.loc[common], bt.loc[common]
    live_total = float(np.prod(1 + lr.to_numpy()) - 1)
    expected = float(np.prod(1 + br.to_numpy()) - 1)
    per_bar = sigma_per_bar if sigma_per_bar is not None else float(np.std(bt.to_numpy(), ddof=1))
    sd = float(per_bar * math.sqrt(len(common)))
    z = (live_total - expected) / sd if sd > 0 else 0.0
    return Comparison(common[0], common[-1], len(common), live_total, expected, sd, z)


def expectation_band(live_equity_by_bar: pd.Series, backtest_net: pd.Series, n_sigma: float,
                     sigma_per_bar: float | None = None) -> pd.DataFrame:
    """Expected equity path (start at the first live value) and ±n_sigma band, on the live bars (σ as in
    `compare`)."""
    bt = backtest_net.dropna()
    idx = live_equity_by_bar.index.intersection(bt.index)
    if len(idx) < 2:
        return pd.DataFrame(columns=["expected", "lower", "upper"])
    start_value = float(live_equity_by_bar.loc[idx[0]])
    sigma = sigma_per_bar if sigma_per_bar is not None else float(np.std(bt.to_numpy(), ddof=1))
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


# ------------------------------------------------------------------------------------------------ tables


def _curve(equity: pd.DataFrame) -> pd.DataFrame:
    """One row per snapshot time (the latest source wins), sorted, indexed by ts."""
    if equity.empty:
        return pd.DataFrame(columns=["account_value_usd", "gross_exposure_usd", "net_exposure_usd", "n_positions"])
    eq = equity.copy()
    eq["ts"] = pd.to_datetime(eq["ts"])
    # stable: rows sharing a time keep the book's write order, so the last is the newest
    return eq.sort_values("ts", kind="stable").drop_duplicates("ts", keep="last").set_index("ts")


def _opening_value(equity: pd.DataFrame) -> float | None:
    """The first snapshot's account value (before any dedup: a rebalance's start at the same exchange time as its
    end and the monitor run after it is where the period's P&L starts)."""
    if equity.empty:
        return None
    eq = equity.assign(ts=pd.to_datetime(equity["ts"])).sort_values("ts", kind="stable")
    return float(eq["account_value_usd"].iloc[0])


def period_table(equity: pd.DataFrame, fills: pd.DataFrame, funding: pd.DataFrame, freq: str) -> pd.DataFrame:
    """Per UTC period (`"D"` day, `"W-MON"`-style week starting Monday: pass `"W"`): equity at the end, P&L in USD
    and % (vs the previous period's end; the first period vs its first snapshot), fees paid (USD), funding
    (USD, + received), max drawdown within the period from the running high (%), mean gross exposure (% of equity)."""
    from gradient_pipeline.monitoring.equity import drawdown_series

    eq = _curve(equity)
    cols = ["period (UTC)", "equity end (USD)", "P&L (USD)", "P&L (%)", "fees (USD)", "funding (USD)",
            "max drawdown (%)", "gross exposure (% of equity)", "snapshots"]
    if eq.empty:
        return pd.DataFrame(columns=cols)
    rule = "W-MON" if freq == "W" else "D"  # W-MON bins closed and labelled left: [Monday, next Monday)
    av = eq["account_value_usd"].astype(float)
    dd = drawdown_series(av)
    gross_pct = 100 * eq["gross_exposure_usd"].astype(float) / av.where(av != 0)
    g = pd.DataFrame({"av": av, "dd": dd, "gross": gross_pct}).resample(rule, label="left", closed="left")
    end = g["av"].last()
    n = g["av"].count()
    keep = n > 0
    prev = end.shift(1)
    prev.iloc[0] = _opening_value(equity)
    pnl = end - prev.ffill()

    def _sum(frame: pd.DataFrame, tcol: str, vcol: str) -> pd.Series:
        if frame is None or frame.empty:
            return pd.Series(0.0, index=end.index)
        s = frame.set_index(pd.to_datetime(frame[tcol]))[vcol].astype(float).sort_index()
        r = s.resample(rule, label="left", closed="left").sum()
        return r.reindex(end.index, fill_value=0.0)

    out = pd.DataFrame({
        "period (UTC)": [t.strftime("%Y-%m-%d") + (" (week)" if rule != "D" else "") for t in end.index],
        "equity end (USD)": end.round(2).to_numpy(),
        "P&L (USD)": pnl.round(2).to_numpy(),
        "P&L (%)": (100 * pnl / prev.ffill()).round(3).to_numpy(),
        "fees (USD)": _sum(fills, "time", "fee_usd").round(2).to_numpy(),
        "funding (USD)": _sum(funding, "time", "usdc").round(2).to_numpy(),
        "max drawdown (%)": g["dd"].max().round(2).to_numpy(),
        "gross exposure (% of equity)": g["gross"].mean().round(1).to_numpy(),
        "snapshots": n.to_numpy(),
    })[keep.to_numpy()]
    return out.reset_index(drop=True)


def _html_table(df: pd.DataFrame) -> str:
    if df.empty:
        return "<p><i>no rows</i></p>"
    pct_cols = {c: (lambda v: f"{v + 0.0:,.3f}") for c in df.columns if "(%)" in c and c != "max drawdown (%)"}
    return df.to_html(index=False, border=0, classes="t", na_rep="n/a", formatters=pct_cols,
                      float_format=lambda v: f"{v + 0.0:,.2f}")


# ------------------------------------------------------------------------------------------------ charts


def render_report(equity: pd.DataFrame, band: pd.DataFrame | None, out_dir: Path, title: str,
                  fills: pd.DataFrame | None = None, funding: pd.DataFrame | None = None,
                  band_note: str = "", generated_at: pd.Timestamp | None = None) -> tuple[Path, Path]:
    """Charts (equity with the backtest band, drawdown, exposure; UTC dates with years, units on every axis) and
    tables (summary, daily and weekly P&L with fees, funding, drawdown and exposure) → PNG + one HTML file."""
    import base64
    import html as _html

    import matplotlib

    matplotlib.use("Agg")  # no display in runs
    import matplotlib.pyplot as plt

    from gradient_pipeline.monitoring.equity import drawdown_series
    from gradient_pipeline.research.charts import utc_time_axis

    out_dir.mkdir(parents=True, exist_ok=True)
    eq = _curve(equity)
    fig, axes = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    ax = axes[0]
    if len(eq):
        ax.plot(eq.index, eq["account_value_usd"], label="live account value", color="tab:blue", marker=".")
    if band is not None and len(band):
        ax.plot(band.index, band["expected"], label="backtest expectation", color="tab:green", linestyle="--")
        ax.fill_between(band.index, band["lower"], band["upper"], color="tab:green", alpha=0.15,
                        label="expectation band")
    ax.set_ylabel("account value (USD)")
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    ax = axes[1]
    if len(eq):
        dd = drawdown_series(eq["account_value_usd"].astype(float))
        ax.fill_between(dd.index, -dd.to_numpy(), 0, color="tab:red", alpha=0.3)
        ax.plot(dd.index, -dd.to_numpy(), color="tab:red", marker=".")
    ax.set_ylabel("drawdown (%)")
    ax.grid(alpha=0.3)
    ax = axes[2]
    if len(eq):
        ax.plot(eq.index, eq["gross_exposure_usd"], label="gross", color="tab:purple", marker=".")
        ax.plot(eq.index, eq["net_exposure_usd"], label="net (long − short)", color="tab:orange", marker=".")
        ax.legend(loc="best", fontsize=8)
    ax.set_ylabel("exposure (USD)")
    ax.grid(alpha=0.3)
    utc_time_axis(ax)
    fig.tight_layout()
    png = out_dir / "performance_report.png"
    fig.savefig(png, dpi=90)
    plt.close(fig)
    b64 = base64.b64encode(png.read_bytes()).decode()

    fills = fills if fills is not None else pd.DataFrame(columns=["time", "fee_usd"])
    funding_known = funding is not None
    funding = funding if funding is not None else pd.DataFrame(columns=["time", "usdc"])
    if len(eq):
        av = eq["account_value_usd"].astype(float)
        first, last = _opening_value(equity), av.iloc[-1]
        summary = pd.DataFrame({"item": [
            "period (UTC)", "account value (USD)", "P&L (USD)", "P&L (%)", "max drawdown (%)", "fees paid (USD)",
            "funding (USD, + received)", "gross exposure now (USD)", "net exposure now (USD)", "positions now",
            "snapshots"], "value": [
            f"{eq.index[0]:%Y-%m-%d %H:%M} → {eq.index[-1]:%Y-%m-%d %H:%M}", f"{last:,.2f}", f"{last - first:+,.2f}",
            f"{100 * (last - first) / first:+.3f}" if first else "n/a", f"{drawdown_series(av).max():.2f}",
            f"{float(fills['fee_usd'].sum()):,.2f}",
            f"{float(funding['usdc'].sum()):+,.2f}" if funding_known else "n/a (not fetched)",
            f"{float(eq['gross_exposure_usd'].iloc[-1]):,.2f}", f"{float(eq['net_exposure_usd'].iloc[-1]):+,.2f}",
            f"{int(eq['n_positions'].iloc[-1])}", f"{len(eq)}"]})
    else:
        summary = pd.DataFrame({"item": ["snapshots"], "value": ["0 (no equity snapshot in the book yet)"]})
    daily = period_table(equity, fills, funding, "D")
    weekly = period_table(equity, fills, funding, "W")
    gen = (generated_at or pd.Timestamp.now(tz="UTC").tz_localize(None)).strftime("%Y-%m-%d %H:%M")
    t = _html.escape(title)
    style = ("body{font-family:sans-serif;margin:2em;max-width:1100px} table.t{border-collapse:collapse;"
             "font-size:13px} table.t td,table.t th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}"
             " table.t td:first-child,table.t th:first-child{text-align:left} .note{color:#555}")
    html = out_dir / "performance_report.html"
    html.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{t}</title><style>{style}</style></head><body>"
        f"<h1>{t}</h1><p class='note'>Generated {gen} UTC from the operations book's equity snapshots, fills and "
        "funding payments. Times are UTC (exchange clock); money in USD.</p>"
        f"<h2>Summary</h2>{_html_table(summary)}"
        f"<h2>Charts</h2><p class='note'>Backtest expectation band: {_html.escape(band_note or 'none')}</p>"
        f"<img alt='equity with the backtest band, drawdown and exposure' src='data:image/png;base64,{b64}'/>"
        f"<h2>Daily P&amp;L (UTC days)</h2>{_html_table(daily)}"
        f"<h2>Weekly P&amp;L (weeks starting Monday, UTC)</h2>{_html_table(weekly)}"
        "<p class='note'>P&amp;L: change in account value (realised, unrealised, fees and funding included). "
        "Fees: paid on fills. Funding: + received, − paid. Drawdown: from the running high of the snapshots. "
        "Gross exposure: Σ|position value| ÷ account value, mean over the period's snapshots.</p>"
        "</body></html>"
    )
    return png, html
