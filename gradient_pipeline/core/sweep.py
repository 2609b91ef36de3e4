"""Sensitivity sweep: many configurations of the same strategy, net of costs, in-sample and out-of-sample.

Fast because the expensive parts are shared: the signal recursion runs once for the union of spans (the
per-span EWMAs are kept), each span subset's score and ranking is computed once, and each configuration then
only runs the weights kernel on the precomputed ranking plus the backtest kernel (both numba, the same
rules as the backtest and the live assets, in one fused sparse kernel (`_sweep_kernel`): every sweep row
equals `run_backtest` of `run_strategy` for that configuration to ~1e-15, which the tests check).

Selection and validation:
* **In-sample / out-of-sample**: bars before ``split`` are in-sample; the weights path runs through both (the
  state at the split is what live trading would have had). The in-sample winner is the configuration with the
  best in-sample net Sharpe; its out-of-sample figures are reported beside it.
* **Walk-forward**: the out-of-sample period is cut into ``folds`` consecutive blocks; before each block the
  configuration with the best net Sharpe on all bars up to the block is chosen and its returns over the block
  are recorded. The concatenation is an honest out-of-sample track of "re-pick the best config as you go".
"""

from __future__ import annotations

import itertools
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from numba import njit

from gradient_pipeline.core.backtest import BAR_FIELDS
from gradient_pipeline.core.costs import CostParams, slippage_bps_scalar
from gradient_pipeline.core.panel import Panel
from gradient_pipeline.core.portfolio import (
    BARS_PER_YEAR, MIN_WEIGHT, PortfolioParams, _fill_side, eligibility, rank_order, rebalance_mask,
)
from gradient_pipeline.core.signals import SignalParams, combine_ewm, compute_signals
from gradient_pipeline.core.strategy import StrategyParams, r_lookback

ALL_SPANS = (2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
DEFAULT_SPAN_SETS = {
    "all": ALL_SPANS,
    "fast": (2, 4, 8, 16, 32),
    "mid": (16, 32, 64, 128, 256),
    "slow": (64, 128, 256, 512, 1024),
}


@dataclass(frozen=True)
class SweepGrid:
    concentration_pct: tuple = (10.0, 20.0, 35.0, 50.0)
    rebalance_hours: tuple = (4, 8, 12, 24)
    weight_scheme: tuple = ("inverse_vol", "equal")
    span_sets: dict = field(default_factory=lambda: dict(DEFAULT_SPAN_SETS))
    band_pct: tuple = (0.0, 0.5, 1.0)
    smoothing: tuple = (1.0, 0.5)

    def configs(self) -> list[dict]:
        keys = ("span_set", "concentration_pct", "rebalance_hours", "weight_scheme", "band_pct", "smoothing")
        vals = (tuple(self.span_sets), self.concentration_pct, self.rebalance_hours, self.weight_scheme,
                self.band_pct, self.smoothing)
        return [dict(zip(keys, v)) for v in itertools.product(*vals)]

    @property
    def size(self) -> int:
        return len(self.configs())


def _stats(x: np.ndarray) -> tuple[float, float, float]:
    """(annualised Sharpe, annual return (compounded), annual vol) of per-bar returns."""
    if len(x) < 2:
        return float("nan"), float("nan"), float("nan")
    sd = float(np.std(x, ddof=1))
    growth = float(np.prod(1.0 + x))
    years = len(x) / BARS_PER_YEAR
    ann = growth ** (1 / years) - 1 if growth > 0 else -1.0
    return (float(np.mean(x) / sd * math.sqrt(BARS_PER_YEAR)) if sd > 0 else float("nan"), ann,
            sd * math.sqrt(BARS_PER_YEAR))


def _max_dd(x: np.ndarray) -> float:
    if not len(x):
        return float("nan")
    eq = np.cumprod(1.0 + x)
    return float((eq / np.maximum.accumulate(np.maximum(eq, 1.0)) - 1.0).min())


@njit(cache=True, nogil=True)
def _sweep_kernel(
    order, m_arr, eligible, r_hist, hist_off, is_reb,
    conc, side_gross, cap, max_lev, equal_w, band, smoothing,
    vol_target, target_vol, max_scale, vol_window, bars_per_year, min_weight,
    simple_ret, inv_sigma, funding, adv, fee, base_bps, coin_coef, capital, use_funding, out,
):
    """`portfolio._weights_kernel` followed by `backtest._backtest_kernel`, fused and sparse: each bar touches
    only the coins held or selected (≈ 2k of N), and no [bar, coin] array is written. Same rules, same
    arithmetic per coin; sums over coins run in another order, so results agree to ~1e-15, not bit for bit
    (tests compare every configuration with the dense path)."""
    T, N = inv_sigma.shape
    w_prev = np.zeros(N)
    w = np.zeros(N)
    tw = np.zeros(N)
    pos = np.zeros(N)
    held = np.empty(N, dtype=np.int64)
    nh = 0
    sel = np.empty(N, dtype=np.int64)
    ns = 0
    cand = np.empty(N, dtype=np.int64)
    mark = np.full(N, -1, dtype=np.int64)
    longs = np.empty(N, dtype=np.int64)
    shorts = np.empty(N, dtype=np.int64)
    rl = np.empty(N)
    rs = np.empty(N)
    eq = 1.0
    for t in range(T):
        m = m_arr[t]
        nc = 0
        g = 0.0
        fu = 0.0
        for j in range(nh):  # held coins: candidates, and mark-to-market of their positions
            i = held[j]
            cand[nc] = i
            nc += 1
            mark[i] = t
            w[i] = w_prev[i]
            p = pos[i]
            if p != 0.0:
                r = simple_ret[t, i]
                g += p * r
                if use_funding:
                    fu += p * funding[t, i]
                pos[i] = p * (1.0 + r)
        if is_reb[t]:
            for j in range(ns):
                tw[sel[j]] = 0.0
            ns = 0
            k = 0
            if m >= 2:
                k = int(math.ceil(m * conc / 100.0 - 1e-9))
                if k > m // 2:
                    k = m // 2
            if k >= 1:
                for j in range(k):
                    longs[j] = order[t, j]
                    shorts[j] = order[t, m - 1 - j]
                    rl[j] = 1.0 if equal_w else inv_sigma[t, longs[j]]
                    rs[j] = 1.0 if equal_w else inv_sigma[t, shorts[j]]
                _fill_side(longs[:k], rl[:k], side_gross, cap, tw, 1.0)
                _fill_side(shorts[:k], rs[:k], side_gross, cap, tw, -1.0)
                for j in range(k):
                    sel[ns] = longs[j]
                    sel[ns + 1] = shorts[j]
                    ns += 2
                for j in range(ns):
                    i = sel[j]
                    if mark[i] != t:
                        mark[i] = t
                        cand[nc] = i
                        nc += 1
                        w[i] = w_prev[i]
            scale = 1.0
            if vol_target and k >= 1:
                acc = 0.0
                for s in range(vol_window):
                    row = hist_off + t - vol_window + 1 + s
                    pr = 0.0
                    if row >= 0:
                        for j in range(ns):
                            i = sel[j]
                            x = r_hist[row, i]
                            if x == x:
                                pr += tw[i] * x
                    acc += pr * pr
                fvol = math.sqrt(acc / vol_window * bars_per_year)
                scale = max_scale if fvol <= 0.0 else min(max_scale, target_vol / fvol)
                big = 0.0
                gross = 0.0
                for j in range(ns):
                    a = abs(tw[sel[j]])
                    gross += a
                    if a > big:
                        big = a
                if big > 0.0 and scale * big > cap:
                    scale = cap / big
                if gross > 0.0 and scale * gross > max_lev:
                    scale = max_lev / gross
                for j in range(ns):
                    tw[sel[j]] *= scale
            for j in range(nc):
                i = cand[j]
                x = smoothing * tw[i] + (1.0 - smoothing) * w_prev[i] if smoothing < 1.0 else tw[i]
                if band > 0.0 and abs(x - w_prev[i]) < band:
                    x = w_prev[i]
                w[i] = x
        gross = 0.0
        for j in range(nc):
            i = cand[j]
            if not eligible[t, i] or (smoothing < 1.0 and abs(w[i]) < min_weight):
                w[i] = 0.0
            gross += abs(w[i])
        if gross > max_lev:
            f = max_lev / gross
            for j in range(nc):
                w[cand[j]] *= f
        # --- accounting (backtest kernel): trade to the new weights, then they become the held book ---
        eq_mid = eq + g - fu
        if eq_mid <= 0.0:
            eq_mid = 0.0
        to = 0.0
        sl = 0.0
        ge = 0.0
        ne = 0.0
        nh = 0
        for j in range(nc):
            i = cand[j]
            x = w[i] if eq_mid > 0.0 else 0.0
            tgt = x * eq_mid
            d = abs(tgt - pos[i])
            if d > 0.0:
                to += d
                sl += d * slippage_bps_scalar(d * capital, adv[t, i], base_bps, coin_coef) / 1e4
            pos[i] = tgt
            ge += abs(x)
            ne += x
            w_prev[i] = x
            if x != 0.0:
                held[nh] = i
                nh += 1
            w[i] = 0.0
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


def panel_inputs(close: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-panel arrays every configuration shares: simple returns (missing price = 0, the backtest's rule,
    same expression so the same bits) and 1/sigma."""
    c0 = np.vstack([np.full((1, close.shape[1]), np.nan), close[:-1]])
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = np.isfinite(c0) & np.isfinite(close) & (c0 > 0)
        ret = np.where(ok, close / np.where(ok, c0, 1.0) - 1.0, 0.0)
        inv_sigma = 1.0 / sigma
    return np.ascontiguousarray(ret), np.ascontiguousarray(inv_sigma)


def simulate_config(times, order, m, sigma, eligible, r_hist, pp: PortfolioParams, close, funding, adv,
                    costs: CostParams, capital_usd: float, rebalance=None, out=None, shared=None) -> np.ndarray:
    """Per-bar backtest fields (`backtest.BAR_FIELDS`) of one configuration on a precomputed ranking.
    ``shared``: `panel_inputs(close, sigma)` computed once for many configurations."""
    T = order.shape[0]
    out = np.zeros((T, len(BAR_FIELDS))) if out is None else out
    ret, inv_sigma = panel_inputs(close, sigma) if shared is None else shared
    if T:
        _sweep_kernel(
            order, m, eligible, r_hist, r_hist.shape[0] - T,
            rebalance_mask(times, pp.rebalance_hours) if rebalance is None else rebalance,
            pp.concentration_pct, pp.side_gross, pp.cap, pp.max_leverage, pp.weight_scheme == "equal", pp.band,
            pp.smoothing, pp.vol_target, pp.target_vol, pp.max_scale, pp.vol_window, BARS_PER_YEAR, MIN_WEIGHT,
            ret, inv_sigma, funding, adv, costs.taker_fee_bps, costs.slippage_base_bps, costs.slippage_impact_coef,
            capital_usd, costs.funding, out,
        )
    return out


@dataclass
class SweepResult:
    table: pd.DataFrame  # one row per configuration
    net: np.ndarray  # [config, bar] net returns (for walk-forward and charts)
    times: pd.DatetimeIndex
    split: pd.Timestamp
    walk_forward: pd.DataFrame  # one row per fold: chosen config id, fold dates, fold net Sharpe
    walk_forward_net: np.ndarray  # concatenated out-of-sample net returns of the re-picked configs

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
        ]
        if d is not None:
            lines.append(
                f"Default config (35%/4h/inverse_vol/all spans, no band/smoothing): in-sample net Sharpe "
                f"{d.is_sharpe:.2f} (gross {d.is_sharpe_gross:.2f}); out-of-sample net {d.oos_sharpe:.2f} "
                f"(gross {d.oos_sharpe_gross:.2f}); turnover {d.is_turnover:.3f}/bar in-sample."
            )
        return "\n".join(lines)

    def default_row(self) -> pd.Series | None:
        t = self.table
        m = t[(t.span_set == "all") & (t.concentration_pct == 35) & (t.rebalance_hours == 4)
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
    T, N = len(times), len(panel.coins)
    split = pd.Timestamp(split)
    k_split = int(times.searchsorted(split))
    close, fund, adv, sigma = (np.ascontiguousarray(a[s0:]) for a in (panel.close, panel.funding, sig.adv, sig.sigma))
    delisted = panel.delisted[s0:]
    r_hist = r_lookback(sig.r, s0, base.portfolio.vol_window)
    configs = grid.configs()
    rows: list[dict] = [None] * len(configs)
    net_all = np.zeros((len(configs), T))
    reb_cache = {h: rebalance_mask(times, h) for h in grid.rebalance_hours}
    shared = panel_inputs(close, sigma)
    by_set: dict[str, list[int]] = {}
    for ci, c in enumerate(configs):
        by_set.setdefault(c["span_set"], []).append(ci)

    def one(ci, order, m, elig):
        c = configs[ci]
        pp = replace(base.portfolio, concentration_pct=float(c["concentration_pct"]),
                     rebalance_hours=int(c["rebalance_hours"]), weight_scheme=c["weight_scheme"],
                     band=float(c["band_pct"]) / 100, smoothing=float(c["smoothing"]))
        out = simulate_config(times, order, m, sigma, elig, r_hist, pp, close, fund, adv, costs, capital_usd,
                              rebalance=reb_cache[pp.rebalance_hours], shared=shared)
        net = out[:, 4]
        net_all[ci] = net
        row = {"config_id": ci, **c}
        for tag, sl in (("is", slice(1, k_split)), ("oos", slice(max(k_split, 1), T))):
            n, g = net[sl], out[sl, 0]
            sh, ann, vol = _stats(n)
            row.update({
                f"{tag}_sharpe": sh, f"{tag}_annual_return": ann, f"{tag}_annual_vol": vol,
                f"{tag}_sharpe_gross": _stats(g)[0], f"{tag}_max_drawdown": _max_dd(n),
                f"{tag}_turnover": float(out[sl, 5].mean()) if len(n) else float("nan"),
                f"{tag}_fees": float(out[sl, 2].sum()), f"{tag}_funding": float(out[sl, 1].sum()),
                f"{tag}_slippage": float(out[sl, 3].sum()),
            })
        rows[ci] = row

    # the kernel releases the GIL: configurations run on `workers` threads
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for set_name, cids in by_set.items():
            idx = [spans_union.index(s) for s in grid.span_sets[set_name]]
            score = combine_ewm(sig.ewm[s0:], idx, sp.combination)
            elig = np.ascontiguousarray(eligibility(close, delisted, score, sigma, adv, base.portfolio))
            order, m = rank_order(score, elig)
            list(pool.map(lambda ci: one(ci, order, m, elig), cids))
    table = pd.DataFrame(rows).sort_values("config_id").reset_index(drop=True)
    wf, wf_net = _walk_forward(net_all, times, k_split, folds)
    return SweepResult(table, net_all, times, split, wf, wf_net)


def _walk_forward(net_all: np.ndarray, times, k_split: int, folds: int):
    T = net_all.shape[1]
    if k_split >= T or folds < 1 or k_split < 3:
        return pd.DataFrame(columns=["fold", "start", "end", "config_id", "train_sharpe", "test_sharpe"]), np.zeros(0)
    edges = np.linspace(k_split, T, folds + 1).astype(int)
    rows, parts = [], []
    for f in range(folds):
        a, b = edges[f], edges[f + 1]
        if b - a < 2:
            continue
        train = net_all[:, 1:a]
        mu, sd = train.mean(1), train.std(1, ddof=1)
        sh = np.where(sd > 0, mu / np.where(sd > 0, sd, 1) * math.sqrt(BARS_PER_YEAR), -np.inf)
        best = int(np.argmax(sh))  # first max: lowest config id wins ties
        test = net_all[best, a:b]
        parts.append(test)
        rows.append({"fold": f, "start": times[a], "end": times[b - 1], "config_id": best,
                     "train_sharpe": float(sh[best]), "test_sharpe": _stats(test)[0]})
    return pd.DataFrame(rows), (np.concatenate(parts) if parts else np.zeros(0))
