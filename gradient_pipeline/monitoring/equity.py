"""Mark-to-market equity, high-water mark and drawdown.

Account value is Hyperliquid's `marginSummary.accountValue` for the master address: USDC balance plus the
unrealised PnL of every open position at mark price, after every fee and every hourly funding payment (funding
settles into the balance), so it is the mark-to-market equity the drawdown stop needs — not closed-trade PnL.

Snapshots go to the execution ledger's `equity` / `positions` tables (source ``monitor`` from the equity sensor's
run, ``rebalance_*`` from the rebalance job). The high-water mark lives in `high_water_mark` (one row): it only
rises, except that `rebase_high_water_mark` (called by `resume`) resets it to the current account value — otherwise
a resumed account still 20 % below its old peak would trip the stop again at once. Deposits and withdrawals are not
netted out: after moving money, rebase (``gradient-pipeline resume --rebase-only``) so the drawdown stays honest.

The storage functions (snapshots, the mark, `equity_state`, `latest_positions`) live in the operations book
(`gradient_pipeline/book/equity.py`) and are re-exported here; they take a book connection. This module adds the
pure policy parts (`drawdown_level`, `drawdown_series`).
"""

from __future__ import annotations

import pandas as pd

from gradient_pipeline.book.equity import (  # noqa: F401 - storage lives in the operations book
    POSITION_COLUMNS,
    EquityState,
    catch_up_high_water_mark,
    drawdown_pct,
    equity_history,
    equity_state,
    high_water_mark,
    latest_equity,
    latest_positions,
    rebase_high_water_mark,
    record_equity,
    update_high_water_mark,
)
from gradient_pipeline.config import GradientConfig


def drawdown_level(dd_pct: float, cfg: GradientConfig) -> str:
    """'ok', 'warn' (≥ risk.drawdown_warn_pct) or 'stop' (≥ emergency_stop_drawdown_pct)."""
    if dd_pct >= cfg.emergency_stop_drawdown_pct:
        return "stop"
    if dd_pct >= cfg.risk.drawdown_warn_pct:
        return "warn"
    return "ok"


def drawdown_series(equity: pd.Series) -> pd.Series:
    """Running drawdown percent of an equity curve (for charts)."""
    peak = equity.cummax()
    return ((peak - equity) / peak * 100.0).fillna(0.0)
