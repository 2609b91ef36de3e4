"""Bench (b): sweep throughput — core (numba) vs vectorbt 1.0.0 simulating the same configurations.

Same data (the shared freqtrade history), same 32 configurations (concentration × interval × weighting), same
run. Each side is timed per configuration on:

* vectorbt: one `Portfolio.from_orders` call (+ `value()`) per configuration, given the configuration's
  target weights ready-made (computed by the core, untimed — generous to vectorbt), fee 4.5 bp (the cost
  vectorbt supports; no slippage or funding). Its first call (compilation) is not timed.
* core, simulation stage (`sweep.simulate_grid`): from the shared ranking to per-bar results — target books
  (selection, caps) once per (concentration, weighting), turnover controls and accounting for every
  configuration in bar-major batches. Total wall time ÷ 32, on 1 thread (like vectorbt) and on 2.
* core, whole sweep (`run_sweep`): the above plus the signal pass, ranking and per-config statistics.

Every configuration's equity is checked equal bar by bar across vectorbt, the core's sweep and the dense
`target_path` + `run_backtest` path. Also prints the core's throughput on the full 768-configuration grid with
all costs. No time assertions.

    uv run --isolated --group bench python bench/bench_sweep.py [--path DIR] [--vbt-configs 32]
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from gradient_pipeline.core.backtest import run_backtest
from gradient_pipeline.core.costs import CostParams
from gradient_pipeline.core.portfolio import (
    PortfolioParams, eligibility, rank_order, rebalance_mask, weights_from_order,
)
from gradient_pipeline.core.signals import SignalParams, compute_signals
from gradient_pipeline.core.strategy import StrategyParams
from gradient_pipeline.core.sweep import SweepGrid, config_params, panel_inputs, run_sweep, simulate_grid
from gradient_pipeline.research.data import load_panel_freqtrade

DEFAULT = Path(__file__).resolve().parents[2] / "shared/data/hyperliquid-freqtrade/user_data/data/hyperliquid/futures"
FEE_ONLY = CostParams(taker_fee_bps=4.5, slippage_base_bps=0.0, slippage_impact_coef=0.0, funding=False)
GRID = SweepGrid(concentration_pct=(10.0, 20.0, 35.0, 50.0), rebalance_hours=(4, 8, 12, 24),
                 weight_scheme=("inverse_vol", "equal"), span_sets={"all": SignalParams().spans},
                 band_pct=(0.0,), smoothing=(1.0,), phases=False)


def _median_time(fn, reps: int) -> float:
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--path", default=str(DEFAULT))
    ap.add_argument("--vbt-configs", type=int, default=32, help="configurations vectorbt simulates (first N of 32)")
    a = ap.parse_args()
    import vectorbt as vbt

    panel = load_panel_freqtrade(a.path)
    T, N = panel.shape
    base = StrategyParams(SignalParams(), PortfolioParams())
    split = panel.times[int(T * 0.6)]
    run_sweep(panel.slice_bars(0, 200), base, GRID, FEE_ONLY, split)  # warm numba caches
    configs = GRID.configs()
    n = len(configs)
    print(f"panel {T} bars × {N} coins; grid {n} configs (concentration × interval × weighting), fee 4.5 bp only")

    # the shared ranking (what the sweep computes once per span set), then the simulation stage alone
    sig = compute_signals(panel.close, panel.notional, panel.coins, base.signal)
    elig = np.ascontiguousarray(eligibility(panel.close, panel.delisted, sig.score, sig.sigma, sig.adv,
                                            base.portfolio))
    order, m = rank_order(sig.score, elig)
    shared = panel_inputs(panel.close, sig.sigma, sig.adv)
    masks = {h: rebalance_mask(panel.times, h) for h in GRID.rebalance_hours}
    r_none = np.zeros((T, 0))
    t_sim = {}
    for workers in (1, 2):
        with ThreadPoolExecutor(workers) as pool:
            def stage():
                return simulate_grid(configs, order, m, elig, r_none, shared, panel.funding, masks, base.portfolio,
                                     FEE_ONLY, 5000.0, pool, workers)
            out = stage()
            t_sim[workers] = _median_time(stage, 7) / n
        print(f"core simulation stage (target books + turnover controls + accounting, from the shared ranking), "
              f"{workers} thread(s): {t_sim[workers] * 1e3:.2f} ms/config ({n} configs per call, median of 7)")
    t_all = {}
    for workers in (1, 2):
        t_all[workers] = _median_time(lambda: run_sweep(panel, base, GRID, FEE_ONLY, split, workers=workers), 3) / n
        print(f"core whole sweep (run_sweep: signal pass + ranking + simulation + statistics), {workers} thread(s): "
              f"{t_all[workers] * 1e3:.2f} ms/config, {1 / t_all[workers]:.0f} configs/s")
    res = run_sweep(panel, base, GRID, FEE_ONLY, split)

    close_vbt = pd.DataFrame(panel.close, index=panel.times, columns=panel.coins).ffill().fillna(1.0)
    vbt_times, max_diff = [], 0.0
    for ci, c in enumerate(configs[: a.vbt_configs]):
        pp = config_params(base.portfolio, c)
        w, _ = weights_from_order(panel.times, order, m, sig.sigma, elig, pp, np.zeros(N), r_none)
        size = pd.DataFrame(w, index=panel.times, columns=panel.coins)

        def vbt_run():
            pf = vbt.Portfolio.from_orders(close_vbt, size=size, size_type="targetpercent", direction="both",
                                           cash_sharing=True, group_by=True, call_seq="auto", fees=4.5e-4,
                                           init_cash=1e6, freq="4h")  # large: vectorbt ignores sub-1e-9 sizes
            return pf.value().to_numpy() / 1e6

        if ci == 0:
            vbt_run()  # the first call compiles vectorbt's kernels
        t0 = time.perf_counter()
        value = vbt_run()
        vbt_times.append(time.perf_counter() - t0)
        dense = run_backtest(panel.times, w, panel.close, panel.funding, sig.adv, FEE_ONLY).bars["equity"].to_numpy()
        row = res.table.iloc[ci]
        assert (row.concentration_pct, row.rebalance_hours, row.weight_scheme) == (
            c["concentration_pct"], c["rebalance_hours"], c["weight_scheme"])
        for other in (out[ci, :, 6], np.cumprod(1 + res.net[ci]), dense):
            max_diff = max(max_diff, float(np.nanmax(np.abs(value - other) / np.maximum(other, 1e-12))))
    t_vbt = statistics.median(vbt_times)
    k = len(vbt_times)
    print(f"vectorbt {vbt.__version__} from_orders (weights given): {t_vbt * 1e3:.1f} ms/config (median of {k} "
          f"configs), {1 / t_vbt:.1f} configs/s")
    print(f"speed-up vs vectorbt per configuration: simulation stage {t_vbt / t_sim[1]:.0f}× (1 thread), "
          f"{t_vbt / t_sim[2]:.0f}× (2 threads); whole sweep incl. signal pass {t_vbt / t_all[1]:.0f}× (1 thread), "
          f"{t_vbt / t_all[2]:.0f}× (2 threads)")
    print(f"max relative equity difference vectorbt vs core simulation vs core sweep vs dense backtest over {k} "
          f"configs: {max_diff:.2e}")

    full = SweepGrid()
    t0 = time.perf_counter()
    big = run_sweep(panel, base, full, CostParams(), split, workers=2)
    t_full = time.perf_counter() - t0
    print(f"core, full grid with all costs, 2 threads: {full.size} configs in {t_full:.1f} s = "
          f"{full.size / t_full:.0f} configs/s")
    print(big.statement())


if __name__ == "__main__":
    main()
