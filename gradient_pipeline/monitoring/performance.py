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
TRACKING_FILE = "tracking_error.json"

log = logging.getLogger(__name__)


def tracking_path(cfg) -> Path:
    """The latest tracking run's summary: ``tracking_error.json`` beside the configured DuckDB file (the data
    directory). Written by `gradient-pipeline research track` (research/tracking.py), read here."""
    return Path(cfg.resolved_duckdb_path).expanduser().parent / TRACKING_FILE


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
    s = equity.set_index(pd.to_datetime(equity["ts"]))["account_value_usd"].sort_index()
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
