"""Bench (a): signal + target weights for the full shared history — core (numba) vs straightforward pandas.

Same formulas both ways (pandas `ewm(adjust=False)`, ranks with name tie-break, inverse-vol weights with
cap water-filling). Prints medians of several runs, the ratio measured in this run, tracemalloc peak memory,
and the largest weight difference. Does not assert anything about time.

    uv run python bench/bench_signal.py [--path FREQTRADE_DIR] [--repeat 5]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

from gradient_pipeline.core.panel import Panel
from gradient_pipeline.core.portfolio import PortfolioParams, target_path
from gradient_pipeline.core.signals import SignalParams, compute_signals
from gradient_pipeline.research.data import load_panel_freqtrade

DEFAULT = Path(__file__).resolve().parents[2] / "shared/data/hyperliquid-freqtrade/user_data/data/hyperliquid/futures"


def core_targets(p: Panel, sp: SignalParams, pp: PortfolioParams) -> np.ndarray:
    s = compute_signals(p.close, p.notional, p.coins, sp)
    return target_path(p.times, s.score, s.sigma, s.adv, p.close, p.delisted, pp, want_rank=False).weights


def pandas_targets(p: Panel, sp: SignalParams, pp: PortfolioParams) -> np.ndarray:
    close = pd.DataFrame(p.close, index=p.times, columns=p.coins)
    notional = pd.DataFrame(p.notional, index=p.times, columns=p.coins)
    started = (notional > 0).cummax()
    c = close.where(started)
    r = np.log(c / c.shift(1))
    sigma = r.ewm(span=sp.vol_span, adjust=False, min_periods=sp.vol_span).std()
    z = (r / sigma).replace([np.inf, -np.inf], np.nan).fillna(0.0).where(started)
    score = sum(z.ewm(span=s, adjust=False).mean() for s in sp.spans)
    adv = notional.fillna(0.0).rolling(sp.adv_bars, min_periods=1).sum()
    elig = close.notna() & score.notna() & (sigma > 0) & (pp.liquidity_threshold_usd < pp.liquidity_impact_pct / 100 * adv)
    sc = score.where(elig)
    rank = sc.rank(axis=1, ascending=False, method="first")  # ties: first column (coin name order) ranks higher
    n = elig.sum(axis=1)
    k = np.minimum(np.ceil(n * pp.concentration_pct / 100 - 1e-9), n // 2).where(n >= 2, 0)
    longs = rank.le(k, axis=0)
    shorts = rank.gt(n - k, axis=0) & elig
    raw = (1.0 / sigma) if pp.weight_scheme == "inverse_vol" else pd.DataFrame(1.0, index=sigma.index, columns=sigma.columns)
    out = pd.DataFrame(0.0, index=sigma.index, columns=sigma.columns)
    for side, sign in ((longs, 1.0), (shorts, -1.0)):
        rw = raw.where(side, 0.0)
        kk = side.sum(axis=1)
        feasible = kk * pp.cap > pp.side_gross * (1 + 1e-12)
        fixed = pd.DataFrame(False, index=rw.index, columns=rw.columns)
        w = rw.div(rw.sum(axis=1), axis=0).mul(pp.side_gross, axis=0).fillna(0.0)
        for _ in range(int(kk.max()) + 1):  # water-filling, all bars at once
            rem = pp.side_gross - pp.cap * fixed.sum(axis=1)
            free = rw.where(~fixed, 0.0)
            w = free.div(free.sum(axis=1), axis=0).mul(rem, axis=0).fillna(0.0)
            over = (w > pp.cap * (1 + 1e-12)) & ~fixed
            if not over.any().any():
                break
            fixed |= over
        w = w.where(~fixed, pp.cap)
        w = w.where(feasible, side * pp.cap, axis=0).where(side, 0.0)
        out += sign * w
    return out.to_numpy()


def measure(fn, repeat):
    times, peaks = [], []
    for _ in range(repeat):
        tracemalloc.start()
        t0 = time.perf_counter()
        res = fn()
        times.append(time.perf_counter() - t0)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    return res, statistics.median(times), max(peaks)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--path", default=str(DEFAULT))
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    panel = load_panel_freqtrade(a.path)
    sp, pp = SignalParams(), PortfolioParams()
    T, N = panel.shape
    core_targets(panel.slice_bars(0, 50), sp, pp)  # numba: load the cached compilation outside the timing
    w_core, t_core, m_core = measure(lambda: core_targets(panel, sp, pp), a.repeat)
    w_pd, t_pd, m_pd = measure(lambda: pandas_targets(panel, sp, pp), max(1, a.repeat // 2))
    diff = float(np.abs(w_core - w_pd).max())
    print(f"panel: {T} bars × {N} coins ({panel.times[0]} … {panel.times[-1]}), spans {sp.spans}")
    print(f"{'implementation':34s} {'median':>10s} {'peak traced memory':>20s}")
    print(f"{'pandas (ewm per span, rank, water-fill)':34s} {t_pd * 1e3:8.1f} ms {m_pd / 2**20:17.1f} MiB")
    print(f"{'core (numba kernels)':34s} {t_core * 1e3:8.1f} ms {m_core / 2**20:17.1f} MiB")
    print(f"speed-up core vs pandas: {t_pd / t_core:.1f}×   memory ratio: {m_pd / max(m_core, 1):.1f}×")
    print(f"max |weight difference|: {diff:.3g}   (non-zero weights: core {int((w_core != 0).sum())}, "
          f"pandas {int((w_pd != 0).sum())})")
    if not math.isfinite(diff) or diff > 1e-12:
        print("WARNING: implementations disagree")


if __name__ == "__main__":
    main()
