"""Backtest and sweep runs over a panel with a configuration: the code the CLI and the Dagster assets share."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gradient_pipeline.core.backtest import BacktestResult, run_backtest
from gradient_pipeline.core.costs import CostParams
from gradient_pipeline.core.panel import Panel
from gradient_pipeline.core.strategy import StrategyParams, run_strategy
from gradient_pipeline.core.sweep import SweepGrid, SweepResult, run_sweep
from gradient_pipeline.timegrid import BAR, utc_naive

STRATEGY_KEYS = ("capital_usd", "max_position_pct", "max_total_leverage", "concentration_pct", "rebalance_freq_hours",
                 "weight_scheme", "lookback_spans", "vol_span", "liquidity_threshold_usd", "liquidity_impact_pct",
                 "signal_combination", "side_gross_pct", "adv_bars", "no_trade_band_pct", "weight_smoothing",
                 "vol_target", "costs")


def strategy_config(cfg) -> dict:
    d = cfg.model_dump()
    return {k: d[k] for k in STRATEGY_KEYS}


def config_id(cfg, start, end, extra: str = "") -> str:
    text = json.dumps(strategy_config(cfg), sort_keys=True) + f"|{start}|{end}|{extra}"
    return hashlib.sha1(text.encode()).hexdigest()[:12]


@dataclass
class BacktestRun:
    run_id: str
    result: BacktestResult
    chart_png: bytes
    config: dict


def trim_to_data(panel: Panel) -> Panel:
    """The panel without trailing bars that have no candle at all (an ``--end`` past the data's last candle
    would otherwise add flat bars to the metrics)."""
    has = np.isfinite(panel.close).any(axis=1)
    if not has.any():
        return panel.slice_bars(0, 0)
    return panel.slice_bars(0, int(np.flatnonzero(has)[-1]) + 1)


def backtest(panel: Panel, cfg, start=None, end=None) -> BacktestRun:
    """Strategy over bars with open time in ``[start, end)``: signals from each coin's first candle, weights
    from ``start`` (flat), costs from ``cfg.costs``. Bars past the last candle are not counted."""
    if end is not None:
        panel = panel.truncate(utc_naive(end) - BAR)
    panel = trim_to_data(panel)
    start = utc_naive(start) if start is not None else panel.times[0]
    if len(panel.times) == 0 or start > panel.times[-1]:
        raise ValueError(f"no bars between {start} and {end} in the loaded history")
    params = StrategyParams.from_config(cfg)
    run = run_strategy(panel, params, start=start)
    o = run.offset
    res = run_backtest(run.times, run.weights.weights, panel.close[o:], panel.funding[o:], run.signals.adv[o:],
                       CostParams.from_config(cfg), cfg.capital_usd)
    m = res.metrics
    title = (f"{cfg.concentration_pct:g}% / {cfg.rebalance_freq_hours}h / {cfg.weight_scheme}: net Sharpe "
             f"{m.get('sharpe', float('nan')):.2f}, gross {m.get('sharpe_gross', float('nan')):.2f}")
    rid = config_id(cfg, run.times[0], run.times[-1])
    from gradient_pipeline.research import charts  # matplotlib: only when a chart is drawn, not at code-location load

    return BacktestRun(rid, res, charts.equity_png(res.bars, title), strategy_config(cfg))


GRIDS = {
    "full": SweepGrid(),
    "small": SweepGrid(concentration_pct=(20.0, 35.0), rebalance_hours=(4, 24), weight_scheme=("inverse_vol",),
                       span_sets={"all": SweepGrid().span_sets["all"], "slow": SweepGrid().span_sets["slow"]},
                       band_pct=(0.0, 1.0), smoothing=(1.0,)),
}


@dataclass
class SweepRun:
    sweep_id: str
    result: SweepResult
    seconds: float
    heatmaps: dict[str, bytes]


def sweep(panel: Panel, cfg, grid: SweepGrid, split, start=None, end=None, folds: int = 4, workers: int = 2) -> SweepRun:
    if end is not None:
        panel = panel.truncate(utc_naive(end) - BAR)
    panel = trim_to_data(panel)
    t0 = time.perf_counter()
    res = run_sweep(panel, StrategyParams.from_config(cfg), grid, CostParams.from_config(cfg), split, start=start,
                    capital_usd=cfg.capital_usd, folds=folds, workers=workers)
    secs = time.perf_counter() - t0
    from gradient_pipeline.research import charts

    maps = {
        "is_sharpe": charts.heatmap_png(res.table, "is_sharpe", "concentration_pct", "rebalance_hours",
                                        "in-sample net Sharpe (best over other dimensions)"),
        "oos_sharpe": charts.heatmap_png(res.table, "oos_sharpe", "concentration_pct", "rebalance_hours",
                                         "out-of-sample net Sharpe (best over other dimensions)"),
    }
    sid = config_id(cfg, res.times[0], res.times[-1], f"sweep|{pd.Timestamp(split)}|{grid!r}|{folds}")
    return SweepRun(sid, res, secs, maps)
