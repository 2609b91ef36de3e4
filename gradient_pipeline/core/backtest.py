"""Vectorised (numba) backtest of a weights path with fees, slippage and funding.

Timing: ``weights[t]`` is decided when bar t closes (the window end) and held over bar t+1. At each bar:

1. the positions bought at the previous close earn ``Σ pos·(close_t/close_{t-1} − 1)`` (a missing close counts
   as an unchanged price), pay ``Σ pos·funding_t``, and drift with their prices;
2. the book is traded to ``weights[t] × equity`` (equity marked at the close, before this bar's costs); the
   traded notional pays the taker fee and slippage (see `costs`), both taken from equity.

Equity compounds (the same accounting as vectorbt's ``from_orders`` with target-percent sizes, cash sharing and
``update_value=False``, which `bench/bench_sweep.py` checks). Between rebalance bars the book is still traded
back to its target weights (what the live rebalance job does every window), so drift costs are counted.
Per-bar fields are fractions of the previous bar's equity; ``turnover`` is Σ|Δ position| / equity.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from numba import njit

from gradient_pipeline.core.costs import CostParams, slippage_bps_scalar
from gradient_pipeline.core.portfolio import BARS_PER_YEAR

BAR_FIELDS = ("gross", "funding", "fees", "slippage", "net", "turnover", "equity", "gross_exposure", "net_exposure")


@njit(cache=True)
def _backtest_kernel(weights, close, funding, adv, fee, base_bps, coef, capital, use_funding, out):
    """Positions are held in equity units (1 = starting capital); costs are paid from equity."""
    T, N = weights.shape
    eq = 1.0
    pos = np.zeros(N)
    for t in range(T):
        g = 0.0
        fu = 0.0
        for i in range(N):
            p = pos[i]
            if p != 0.0:
                c0 = close[t - 1, i]
                c1 = close[t, i]
                r = c1 / c0 - 1.0 if (c0 == c0 and c1 == c1 and c0 > 0.0) else 0.0
                g += p * r
                if use_funding:
                    fu += p * funding[t, i]
                pos[i] = p * (1.0 + r)
        eq_mid = eq + g - fu
        to = 0.0
        sl = 0.0
        ge = 0.0
        ne = 0.0
        if eq_mid > 0.0:
            for i in range(N):
                w = weights[t, i]
                tgt = w * eq_mid
                d = abs(tgt - pos[i])
                if d > 0.0:
                    to += d
                    sl += d * slippage_bps_scalar(d * capital, adv[t, i], base_bps, coef) / 1e4
                pos[i] = tgt
                ge += abs(w)
                ne += w
        else:  # wiped out: nothing left to trade
            for i in range(N):
                pos[i] = 0.0
            eq_mid = 0.0
        fees = to * fee / 1e4
        eq_new = eq_mid - fees - sl
        base = eq if eq > 0.0 else 1.0
        out[t, 0] = g / base
        out[t, 1] = fu / base
        out[t, 2] = fees / base
        out[t, 3] = sl / base
        out[t, 4] = eq_new / base - 1.0 if eq > 0.0 else 0.0
        out[t, 5] = to / eq_mid if eq_mid > 0.0 else 0.0
        out[t, 6] = eq_new
        out[t, 7] = ge
        out[t, 8] = ne
        eq = eq_new


@dataclass
class BacktestResult:
    bars: pd.DataFrame  # per bar: BAR_FIELDS (returns and costs as fractions of equity)
    metrics: dict


def run_backtest(times, weights, close, funding, adv, costs: CostParams, capital_usd: float = 5000.0) -> BacktestResult:
    """Simulate the weights path; returns per-bar frame and summary metrics (see `metrics`)."""
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    T, N = weights.shape
    out = np.zeros((T, len(BAR_FIELDS)))
    if T:
        _backtest_kernel(
            weights, np.ascontiguousarray(close, dtype=np.float64), np.ascontiguousarray(funding, dtype=np.float64),
            np.ascontiguousarray(adv, dtype=np.float64), costs.taker_fee_bps, costs.slippage_base_bps,
            costs.slippage_impact_coef, capital_usd, costs.funding, out,
        )
    bars = pd.DataFrame(out, index=pd.DatetimeIndex(times, name="ts"), columns=list(BAR_FIELDS))
    return BacktestResult(bars, metrics(bars))


def _sharpe(x: np.ndarray) -> float:
    if len(x) < 2:
        return float("nan")
    sd = float(np.std(x, ddof=1))
    return float(np.mean(x) / sd * math.sqrt(BARS_PER_YEAR)) if sd > 0 else float("nan")


def metrics(bars: pd.DataFrame) -> dict:
    """Sharpe, annual return/vol, max drawdown, turnover, exposure and cost totals.

    Labels: ``sharpe`` = net of fees, slippage and funding; ``sharpe_gross`` = price P&L only, before every cost
    *including funding*; ``sharpe_gross_after_funding`` = after funding, before fees and slippage.
    ``annual_return*`` are **geometric** (compounded: final equity^(1/years) − 1); ``annual_return_arithmetic``
    = mean per-bar net return × 2,190. Annualised with 2,190 bars a year (24/7 market). Costs are sums of
    per-bar fractions of equity (so 0.25 = 25 % of capital paid over the period)."""
    if len(bars) < 2:
        return {"n_bars": len(bars)}
    net = bars["net"].to_numpy()[1:]
    gross = bars["gross"].to_numpy()[1:]
    eq = bars["equity"].to_numpy()
    years = len(net) / BARS_PER_YEAR
    dd = eq / np.maximum.accumulate(np.maximum(eq, 1.0)) - 1.0
    gross_eq = np.cumprod(1 + gross)
    m = {
        "n_bars": int(len(bars)),
        "start": str(bars.index[0]),
        "end": str(bars.index[-1]),
        "sharpe": _sharpe(net),
        "sharpe_gross": _sharpe(gross),
        "sharpe_gross_after_funding": _sharpe(gross - bars["funding"].to_numpy()[1:]),
        "annual_return": float(eq[-1] ** (1 / years) - 1) if eq[-1] > 0 else -1.0,
        "annual_return_gross": float(gross_eq[-1] ** (1 / years) - 1) if gross_eq[-1] > 0 else -1.0,
        "annual_return_arithmetic": float(np.mean(net) * BARS_PER_YEAR),
        "annual_vol": float(np.std(net, ddof=1) * math.sqrt(BARS_PER_YEAR)),
        "max_drawdown": float(dd.min()),
        "total_return": float(eq[-1] - 1),
        "total_return_gross": float(gross_eq[-1] - 1),
        "turnover_per_bar": float(bars["turnover"].mean()),
        "fees_paid": float(bars["fees"].sum()),
        "funding_paid": float(bars["funding"].sum()),
        "slippage_paid": float(bars["slippage"].sum()),
        "avg_gross_exposure": float(bars["gross_exposure"].mean()),
    }
    return m


@dataclass(frozen=True)
class BacktestSummary:
    """Flat record for the `backtest_runs` table."""

    run_id: str
    start: str
    end: str
    config_json: str
    sharpe: float
    sharpe_gross: float
    annual_return: float
    annual_vol: float
    max_drawdown: float
    turnover_per_bar: float
    fees_paid: float
    funding_paid: float
    slippage_paid: float

    def as_dict(self) -> dict:
        return asdict(self)
