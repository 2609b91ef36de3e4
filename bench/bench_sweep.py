"""Bench (b): sweep throughput — core (numba) vs vectorbt 1.0.0 simulating the same configurations.

Both sides get the same weights path for each configuration (the core computes the signal once; vectorbt is
timed only for its `Portfolio.from_orders` simulation, which is generous to vectorbt) and the same cost model
vectorbt supports (taker fee 4.5 bp; no slippage or funding). Results are checked equal bar by bar. Also
prints the core's throughput on the full 768-configuration grid with all costs. No time assertions.

    uv run --isolated --group bench python bench/bench_sweep.py [--path DIR] [--vbt-configs 16]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from gradient_pipeline.core.backtest import run_backtest
from gradient_pipeline.core.costs import CostParams
from gradient_pipeline.core.portfolio import PortfolioParams, eligibility, rank_order, weights_from_order
from gradient_pipeline.core.signals import SignalParams, compute_signals
from gradient_pipeline.core.strategy import StrategyParams
from gradient_pipeline.core.sweep import SweepGrid, panel_inputs, run_sweep, simulate_config
from gradient_pipeline.research.data import load_panel_freqtrade

DEFAULT = Path(__file__).resolve().parents[2] / "shared/data/hyperliquid-freqtrade/user_data/data/hyperliquid/futures"
FEE_ONLY = CostParams(taker_fee_bps=4.5, slippage_base_bps=0.0, slippage_impact_coef=0.0, funding=False)
GRID = SweepGrid(concentration_pct=(10.0, 20.0, 35.0, 50.0), rebalance_hours=(4, 8, 12, 24),
                 weight_scheme=("inverse_vol", "equal"), span_sets={"all": SignalParams().spans},
                 band_pct=(0.0,), smoothing=(1.0,))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--path", default=str(DEFAULT))
    ap.add_argument("--vbt-configs", type=int, default=12, help="configurations vectorbt simulates (of 32)")
    a = ap.parse_args()
    import vectorbt as vbt

    panel = load_panel_freqtrade(a.path)
    T, N = panel.shape
    base = StrategyParams(SignalParams(), PortfolioParams())
    split = panel.times[int(T * 0.6)]
    run_sweep(panel.slice_bars(0, 200), base, GRID, FEE_ONLY, split)  # warm numba caches
    n = GRID.size
    print(f"panel {T} bars × {N} coins; grid {n} configs (concentration × interval × weighting), fee 4.5 bp only")
    t_by = {}
    for workers in (1, 2):
        reps = []
        for _ in range(3):
            t0 = time.perf_counter()
            res = run_sweep(panel, base, GRID, FEE_ONLY, split, workers=workers)
            reps.append(time.perf_counter() - t0)
        t_by[workers] = statistics.median(reps)
        print(f"core sweep, {workers} thread(s): {t_by[workers]:.2f} s for {n} configs incl. the signal pass = "
              f"{t_by[workers] / n * 1e3:.2f} ms/config, {n / t_by[workers]:.0f} configs/s")
    t_core = t_by[1]

    # weights of each configuration (identical to what the sweep simulated)
    sig = compute_signals(panel.close, panel.notional, panel.coins, base.signal)
    elig = eligibility(panel.close, panel.delisted, sig.score, sig.sigma, sig.adv, base.portfolio)
    order, m = rank_order(sig.score, elig)
    close_vbt = pd.DataFrame(panel.close, index=panel.times, columns=panel.coins).ffill().fillna(1.0)
    shared = panel_inputs(panel.close, sig.sigma)
    r_none = np.zeros((T, 0))
    vbt_times, core_sim_times, max_diff = [], [], 0.0
    configs = GRID.configs()[: a.vbt_configs]
    for ci, c in enumerate(configs):
        pp = replace(base.portfolio, concentration_pct=c["concentration_pct"], rebalance_hours=c["rebalance_hours"],
                     weight_scheme=c["weight_scheme"])
        t0 = time.perf_counter()  # the core's simulation of this configuration (shared inputs precomputed)
        simulate_config(panel.times, order, m, sig.sigma, elig, r_none, pp, panel.close, panel.funding, sig.adv,
                        FEE_ONLY, 5000.0, shared=shared)
        core_sim_times.append(time.perf_counter() - t0)
        w, _ = weights_from_order(panel.times, order, m, sig.sigma, elig, pp, np.zeros(N), np.zeros((T, 0)))
        size = pd.DataFrame(w, index=panel.times, columns=panel.coins)
        t0 = time.perf_counter()
        pf = vbt.Portfolio.from_orders(close_vbt, size=size, size_type="targetpercent", direction="both",
                                       cash_sharing=True, group_by=True, call_seq="auto", fees=4.5e-4,
                                       init_cash=1e6, freq="4h")  # large: vectorbt ignores sub-1e-9 sizes
        value = pf.value().to_numpy() / 1e6
        if ci > 0:  # the first call compiles vectorbt's kernels
            vbt_times.append(time.perf_counter() - t0)
        core = run_backtest(panel.times, w, panel.close, panel.funding, sig.adv, FEE_ONLY).bars["equity"].to_numpy()
        max_diff = max(max_diff, float(np.nanmax(np.abs(value - core) / np.maximum(core, 1e-12))))
        row = res.table.iloc[ci]
        assert (row.concentration_pct, row.rebalance_hours, row.weight_scheme) == (
            c["concentration_pct"], c["rebalance_hours"], c["weight_scheme"])
        sweep_eq = np.cumprod(1 + res.net[ci])
        max_diff = max(max_diff, float(np.nanmax(np.abs(sweep_eq - core) / np.maximum(core, 1e-12))))
    t_vbt = statistics.median(vbt_times)
    print(f"vectorbt {vbt.__version__} from_orders: {t_vbt * 1e3:.1f} ms/config (median of {len(vbt_times)}), "
          f"{1 / t_vbt:.1f} configs/s")
    t_sim = statistics.median(core_sim_times[1:])
    print(f"core simulation of the same configs (weights kernel + accounting, interleaved with vectorbt): "
          f"{t_sim * 1e3:.2f} ms/config")
    print(f"speed-up vs vectorbt per configuration: simulation only {t_vbt / t_sim:.0f}×; whole core sweep incl. "
          f"its signal pass {t_vbt / (t_core / n):.0f}× (1 thread), {t_vbt / (t_by[2] / n):.0f}× (2 threads)")
    print(f"max relative equity difference core vs vectorbt vs sweep over {len(configs)} configs: {max_diff:.2e}")

    full = SweepGrid()
    t0 = time.perf_counter()
    big = run_sweep(panel, base, full, CostParams(), split, workers=2)
    t_full = time.perf_counter() - t0
    print(f"core, full grid with all costs, 2 threads: {full.size} configs in {t_full:.1f} s = "
          f"{full.size / t_full:.0f} configs/s")
    print(big.statement())


if __name__ == "__main__":
    main()
