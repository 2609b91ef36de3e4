"""The daily run: summary alert (PnL, exposure, fills, fees, funding) and the live-vs-backtest check."""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd

from gradient_pipeline import book
from gradient_pipeline.config import GradientConfig
from gradient_pipeline.monitoring import messages
from gradient_pipeline.monitoring.alerts import Delivery, clear_alert, raise_alert
from gradient_pipeline.monitoring.equity import equity_history, equity_state
from gradient_pipeline.monitoring.evaluate import DailyFigures, daily_figures, funding_usd
from gradient_pipeline.monitoring.halt import is_halted
from gradient_pipeline.monitoring.performance import (
    compare,
    live_bar_equity,
    load_backtest_net,
    underperformance_sigma,
)
from gradient_pipeline.storage.db import connect

log = logging.getLogger(__name__)


def run_daily(cfg: GradientConfig, db_path: str, day: dt.date | None = None, trading=None) -> list[Delivery]:
    """Summarise `day` (default: the last complete UTC day by the exchange clock) and check underperformance."""
    if trading is None:
        from gradient_pipeline.monitoring.account import open_trading

        trading = open_trading(cfg, signer=False)
    if day is None:
        day = (pd.Timestamp(trading.server_time()) - pd.Timedelta(days=1)).date()
    try:
        funding = funding_usd(trading, day)
    except Exception as err:  # noqa: BLE001 - the summary still goes out, saying funding is unknown
        log.warning("funding for %s unavailable: %s", day, err)
        funding = float("nan")
    out: list[Delivery] = []
    with book.connect(db_path) as conn:
        hist = equity_history(conn)
    try:  # the backtest is analytics: DuckDB
        with connect(db_path, read_only=True, wait_s=60.0) as duck:
            bt = load_backtest_net(duck, since=hist["ts"].min() if len(hist) else None)
    except FileNotFoundError:
        bt = None
    # σ of the check: the latest paper-vs-backtest tracking error, or a loud fallback (said in the summary)
    sigma = underperformance_sigma(cfg, bt)
    if bt is None:
        note = ("UNDERPERFORMANCE CHECK CANNOT RUN: no stored backtest covers the live period (run "
                "`gradient-pipeline backtest` over it).")
        log.warning(note)
    else:
        note = sigma.note if sigma is not None else None
    with book.connect(db_path) as conn:
        fig = daily_figures(conn, day) or DailyFigures(day, 0.0, 0.0, 0.0, 0.0, 0, 0.0, 0)
        st = equity_state(conn)
        alert = messages.daily_summary(
            day, fig.pnl_usd, fig.equity_usd, fig.long_usd, fig.short_usd, fig.n_fills, fig.fees_usd,
            funding, fig.n_rebalances, st.drawdown_pct or 0.0, is_halted(conn), cfg.mode,
            notes=[note] if note else (),
        )
        out.append(raise_alert(conn, alert, cfg))

        comp = (compare(live_bar_equity(hist), bt, sigma.per_bar if sigma is not None else None)
                if bt is not None and len(hist) else None)
        if comp is not None and comp.z < -cfg.alerts.underperformance_sigma:
            out.append(raise_alert(conn, messages.underperformance(
                comp.period, 100 * comp.live_return, 100 * comp.expected_return, 100 * comp.sd, comp.z,
                cfg.alerts.underperformance_sigma, sigma_note=sigma.note if sigma is not None else ""), cfg))
        elif comp is not None:
            clear_alert(conn, "underperformance")
    return out
