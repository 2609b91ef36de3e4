"""Sensitivity sweep: many configurations of the same strategy, net of costs, in-sample and out-of-sample.

Fast because the expensive parts are shared, at every level where the rules allow it:

1. the signal recursion runs once for the union of spans (the per-span EWMAs are kept); each span subset's
   score, eligibility and ranking are computed once (`run_sweep`);
2. the target book of every bar (selection, inverse-vol/equal weights, caps, vol target: portfolio steps
   3–5) depends on the ranking and on (concentration, weighting) only, so `_targets_kernel` builds it once
   and every rebalance interval, band and smoothing sharing it reads it (`simulate_grid`);
3. the rest (steps 6–8: interval, smoothing, band, eligibility, leverage cap) and the backtest accounting
   run in one fused, sparse numba kernel (`_batch_kernel`) over a batch of configurations, bar-major so
   each bar's rows of the panels are read once for the batch; batches run on ``workers`` threads (nogil).

Same rules and per-coin arithmetic as `portfolio.target_path` + `backtest.run_backtest`: every sweep row
equals the dense path for that configuration to ~1e-15 (sums over coins run in another order, and slippage
multiplies by a precomputed 1/ADV instead of dividing by ADV), which the tests check on the real data and
on random panels with every option.

Selection and validation:
* **In-sample / out-of-sample**: bars before ``split`` are in-sample; the weights path runs through both (the
  state at the split is what live trading would have had). The in-sample winner is the configuration with the
  best in-sample net Sharpe; its out-of-sample figures are reported beside it.
* **Walk-forward**: the out-of-sample period is cut into ``folds`` consecutive blocks; before each block the
  configuration with the best net Sharpe on all bars up to the block is chosen and its returns over the block
  are recorded. The concatenation is an honest out-of-sample track of "re-pick the best config as you go".

Modules: `sweep_grid` (the grid and one configuration's parameters), `sweep_kernels` (the fused simulation),
`sweep_stats` (metrics, walk-forward, overfitting report); this module runs a sweep end to end (`run_sweep`).
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from gradient_pipeline.core.panel import Panel
from gradient_pipeline.core.portfolio import eligibility, rank_order, rebalance_mask
from gradient_pipeline.core.signals import combine_ewm, compute_signals
from gradient_pipeline.core.strategy import StrategyParams, r_lookback
from gradient_pipeline.core.sweep_grid import ALL_SPANS, DEFAULT_SPAN_SETS, SweepGrid, config_params
from gradient_pipeline.core.sweep_kernels import (
    TargetBooks, book_size, panel_inputs, simulate_config, simulate_configs, simulate_grid, target_books,
)
from gradient_pipeline.core.sweep_stats import _config_metrics, _period_sharpes, _stats, _walk_forward, overfit_report
from gradient_pipeline.core.costs import CostParams

__all__ = [  # the grid and the kernels are re-exported: callers import the sweep from here
    "ALL_SPANS", "DEFAULT_SPAN_SETS", "SweepGrid", "SweepResult", "TargetBooks", "book_size", "config_params",
    "overfit_report", "panel_inputs", "run_sweep", "simulate_config", "simulate_configs", "simulate_grid",
    "target_books",
]


@dataclass
class SweepResult:
    table: pd.DataFrame  # one row per configuration
    net: np.ndarray  # [config, bar] net returns (for walk-forward and charts)
    times: pd.DatetimeIndex
    split: pd.Timestamp
    walk_forward: pd.DataFrame  # one row per fold: chosen config id, fold dates, fold net Sharpe
    walk_forward_net: np.ndarray  # concatenated out-of-sample net returns of the re-picked configs
    overfit: dict = field(default_factory=dict)  # `overfit_report`

    def winner(self) -> pd.Series:
        return self.table.sort_values(["is_sharpe", "config_id"], ascending=[False, True]).iloc[0]

    def statement(self) -> str:
        w = self.winner()
        d = self.default_row()
        wf = _stats(self.walk_forward_net)[0] if len(self.walk_forward_net) else float("nan")
        lines = [
            f"In-sample (< {self.split:%Y-%m-%d}) winner: config {int(w.config_id)} — spans {w.span_set}, "
            f"concentration {w.concentration_pct:g}%, rebalance {int(w.rebalance_hours)}h, {w.weight_scheme}, "
            f"band {w.band_pct:g}%, smoothing {w.smoothing:g}: in-sample net Sharpe {w.is_sharpe:.2f} "
            f"(gross {w.is_sharpe_gross:.2f}), annual return {w.is_annual_return:+.1%}.",
            f"Out-of-sample (≥ {self.split:%Y-%m-%d}) the same config earned net Sharpe {w.oos_sharpe:.2f} "
            f"(gross {w.oos_sharpe_gross:.2f}), annual return {w.oos_annual_return:+.1%}, "
            f"max drawdown {w.oos_max_drawdown:.1%}, turnover {w.oos_turnover:.3f}/bar.",
            f"Walk-forward ({len(self.walk_forward)} folds, re-picking the best net Sharpe before each): "
            f"out-of-sample net Sharpe {wf:.2f}.",
            f"Winner's average gross exposure {w.is_avg_gross_exposure:.2f} in-sample, {w.oos_avg_gross_exposure:.2f} "
            f"out of sample; gross Sharpe before funding {w.is_sharpe_gross:.2f} IS / {w.oos_sharpe_gross:.2f} OOS, "
            f"after funding {w.is_sharpe_gross_after_funding:.2f} / {w.oos_sharpe_gross_after_funding:.2f}.",
        ]
        o = self.overfit
        if o:
            lines.append(
                f"IS/OOS Spearman rank correlation over {o['n_configs']} configurations: net {o['spearman_is_oos_net']:+.2f}, "
                f"gross {o['spearman_is_oos_gross']:+.2f}. Winner over its {o['winner_phases']} rebalance phase(s): "
                f"OOS net Sharpe mean {o['winner_phase_oos_mean']:.2f} ± {o['winner_phase_oos_std']:.2f} "
                f"(min {o['winner_phase_oos_min']:.2f}, max {o['winner_phase_oos_max']:.2f}).")
            lines.append(
                f"Deflated Sharpe ratio of the winner (best of {o.get('dsr_n_trials', 0)} tried, {o.get('dsr_bars', 0)} "
                f"in-sample bars): {o.get('dsr', float('nan')):.3f}; probability of backtest overfitting (CSCV, "
                f"{o.get('pbo_splits', 0)} splits): {o.get('pbo', float('nan')):.2f}.")
            lines.append(
                "VERDICT: a configuration with a reliable net edge was found (DSR ≥ 0.95, PBO < 0.5, positive OOS)."
                if o["reliable_net_edge"] else
                "VERDICT: NO configuration has a reliable net edge — the winner does not pass DSR ≥ 0.95, PBO < 0.5 "
                "and a positive out-of-sample net Sharpe together; do not trade it on this evidence.")
        if d is not None:
            lines.append(
                f"Default config (35%/4h/inverse_vol/all spans, no band/smoothing): in-sample net Sharpe "
                f"{d.is_sharpe:.2f} (gross {d.is_sharpe_gross:.2f}); out-of-sample net {d.oos_sharpe:.2f} "
                f"(gross {d.oos_sharpe_gross:.2f}); turnover {d.is_turnover:.3f}/bar in-sample."
            )
        return "\n".join(lines)

    def default_row(self) -> pd.Series | None:
        t = self.table
        m = t[(t.span_set == "all") & (t.concentration_pct == 35) & (t.rebalance_hours == 4) & (t.phase_hours == 0)
              & (t.weight_scheme == "inverse_vol") & (t.band_pct == 0) & (t.smoothing == 1)]
        return m.iloc[0] if len(m) else None


def run_sweep(
    panel: Panel,
    base: StrategyParams,
    grid: SweepGrid,
    costs: CostParams,
    split,
    start=None,
    capital_usd: float = 5000.0,
    folds: int = 4,
    workers: int = 1,
) -> SweepResult:
    """Run every configuration of ``grid`` (other parameters from ``base``) over ``[start, end of panel]``."""
    spans_union = tuple(sorted(set(itertools.chain.from_iterable(grid.span_sets.values()))))
    sp = replace(base.signal, spans=spans_union)
    sig = compute_signals(panel.close, panel.notional, panel.coins, sp, keep_ewm=True)
    s0 = 0 if start is None else int(panel.times.searchsorted(pd.Timestamp(start)))
    times = panel.times[s0:]
    T = len(times)
    split = pd.Timestamp(split)
    k_split = int(times.searchsorted(split))
    close, fund, adv, sigma = (np.ascontiguousarray(a[s0:]) for a in (panel.close, panel.funding, sig.adv, sig.sigma))
    delisted = panel.delisted[s0:]
    r_hist = r_lookback(sig.r, s0, base.portfolio.vol_window)
    configs = grid.configs()
    rows: list[dict] = [None] * len(configs)
    net_all = np.zeros((len(configs), T))
    reb_masks = {(h, ph): rebalance_mask(times, h, ph) for h in grid.rebalance_hours for ph in range(0, h, 4)}
    shared = panel_inputs(close, sigma, adv)
    by_set: dict[str, list[int]] = {}
    for ci, c in enumerate(configs):
        by_set.setdefault(c["span_set"], []).append(ci)
    # the kernels release the GIL: batches of configurations run on `workers` threads
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for set_name, cids in by_set.items():
            idx = [spans_union.index(s) for s in grid.span_sets[set_name]]
            # the full set in kernel order is the kernel's own score (combine_ewm reproduces it exactly)
            score = sig.score[s0:] if idx == list(range(len(spans_union))) else combine_ewm(sig.ewm[s0:], idx,
                                                                                            sp.combination)
            elig = np.ascontiguousarray(eligibility(close, delisted, score, sigma, adv, base.portfolio))
            order, m = rank_order(score, elig)
            out = simulate_grid([configs[ci] for ci in cids], order, m, elig, r_hist, shared, fund, reb_masks,
                                base.portfolio, costs, capital_usd, pool, workers)
            for j, (ci, met) in enumerate(zip(cids, _config_metrics(out, k_split))):
                net_all[ci] = out[j, :, 4]
                rows[ci] = {"config_id": ci, **configs[ci], **met}
    table = pd.DataFrame(rows).sort_values("config_id").reset_index(drop=True)
    table = pd.concat([table, _period_sharpes(net_all, times, k_split)], axis=1)
    wf, wf_net = _walk_forward(net_all, times, k_split, folds)
    res = SweepResult(table, net_all, times, split, wf, wf_net)
    res.overfit = overfit_report(res)
    return res
