"""The whole strategy on a panel: signals → eligibility → target weights. The backtest, the sweep and the
live assets all go through these functions (the assets call the same steps window by window).

Public interface (what the execution side and research use)::

    from gradient_pipeline.core.strategy import StrategyParams, run_strategy, targets_long
    params = StrategyParams.from_config(cfg)
    run = run_strategy(panel, params, start="2024-01-01")      # signals over the whole panel, weights from start
    frame = targets_long(run.times, run.coins, run.weights.weights, run.signals..., rank)  # table rows

Live targets are read from the `target_weights` table (written by the asset through these functions).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gradient_pipeline.core.panel import Panel
from gradient_pipeline.core.portfolio import PortfolioParams, WeightsResult, target_path
from gradient_pipeline.core.signals import SignalParams, SignalResult, compute_signals
from gradient_pipeline.timegrid import BAR

TARGET_COLUMNS = ["rebalance_time", "ts", "coin", "weight", "score", "sigma", "adv_usd", "side", "rank"]


@dataclass(frozen=True)
class StrategyParams:
    signal: SignalParams
    portfolio: PortfolioParams

    @classmethod
    def from_config(cls, cfg) -> "StrategyParams":
        return cls(SignalParams.from_config(cfg), PortfolioParams.from_config(cfg))


@dataclass
class StrategyRun:
    times: pd.DatetimeIndex  # bars from `start`
    coins: tuple[str, ...]
    signals: SignalResult  # over the whole panel
    offset: int  # index of times[0] in the panel
    weights: WeightsResult  # over `times`


def r_lookback(r: np.ndarray, start: int, window: int) -> np.ndarray:
    """``r[start - window + 1 : ]`` padded with NaN rows when the history is shorter (vol-target look-back)."""
    lo = start - (window - 1)
    if lo >= 0:
        return r[lo:]
    return np.vstack([np.full((-lo, r.shape[1]), np.nan), r])


def run_strategy(panel: Panel, params: StrategyParams, start=None, prev_weights=None,
                 keep_ewm: bool = False) -> StrategyRun:
    """Signals over every bar of the panel (each coin from its first traded candle), weights from the bar
    ``start`` (open time; default the first bar) starting flat or from ``prev_weights``."""
    sig = compute_signals(panel.close, panel.notional, panel.coins, params.signal, keep_ewm=keep_ewm)
    s0 = 0 if start is None else int(panel.times.searchsorted(pd.Timestamp(start)))
    wr = target_path(
        panel.times[s0:], sig.score[s0:], sig.sigma[s0:], sig.adv[s0:], panel.close[s0:], panel.delisted[s0:],
        params.portfolio, prev_weights, r_lookback(sig.r, s0, params.portfolio.vol_window),
    )
    return StrategyRun(panel.times[s0:], panel.coins, sig, s0, wr)


def targets_long(times, coins, weights, score, sigma, adv, rank) -> pd.DataFrame:
    """Non-zero weights as `target_weights` rows (``ts`` = bar open, ``rebalance_time`` = ts + 4h)."""
    t_idx, c_idx = np.nonzero(weights)
    times = pd.DatetimeIndex(times)
    w = weights[t_idx, c_idx]
    ts = times[t_idx]
    return pd.DataFrame(
        {
            "rebalance_time": (ts + BAR).astype("datetime64[ns]"),
            "ts": ts.astype("datetime64[ns]"),
            "coin": np.asarray(coins, dtype=object)[c_idx],
            "weight": w,
            "score": score[t_idx, c_idx],
            "sigma": sigma[t_idx, c_idx],
            "adv_usd": adv[t_idx, c_idx],
            "side": np.where(w > 0, "long", "short").astype(object),
            "rank": rank[t_idx, c_idx].astype(np.int32),
        },
        columns=TARGET_COLUMNS,
    )
