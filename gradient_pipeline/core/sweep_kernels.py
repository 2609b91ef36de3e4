"""The sweep's simulation kernels: many portfolio configurations on one ranking, net of costs, fused.

The target book of every bar (portfolio steps 3–5) depends on the ranking and on (concentration, weighting) only,
so `_targets_kernel` builds it once (`target_books`) and every rebalance interval, band and smoothing sharing it
reads it; the rest (steps 6–8 and the backtest accounting) runs in one sparse numba kernel (`_batch_kernel`) over
a batch of configurations, bar-major; `simulate_grid` schedules the batches on threads (the kernels are nogil).
Same rules and per-coin arithmetic as `portfolio.target_path` + `backtest.run_backtest` (see `core/sweep.py`).

numba `cache=True` does not notice edits to the helpers these kernels call from `core/portfolio.py`/`costs.py`:
clear `__pycache__/*.nbi|*.nbc` after editing them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from gradient_pipeline.core.backtest import BAR_FIELDS
from gradient_pipeline.core.costs import CostParams, inv_adv_scalar, slippage_bps_inv
from gradient_pipeline.core.portfolio import (
    BARS_PER_YEAR, MIN_WEIGHT, PortfolioParams, _fill_side_into, keep_weight, n_selected, raw_weight,
    rebalance_mask, rebalance_weight, vol_scale,
)
from gradient_pipeline.core.sweep_grid import config_params

@njit(cache=True, nogil=True)
def _book_size(m_arr, conc):
    """Σ over bars of 2k: the length of a sparse target path."""
    n = 0
    for t in range(m_arr.shape[0]):
        n += 2 * n_selected(m_arr[t], conc)
    return n


@njit(cache=True, nogil=True)
def _targets_kernel(
    order, m_arr, inv_sigma, r_hist, hist_off, conc, side_gross, cap, max_lev, equal_w,
    vol_target, target_vol, max_scale, vol_window, bars_per_year, off, idx, val,
):
    """Steps 3–5 of `portfolio` (selection, inverse-vol/equal weights with caps, optional vol target) at every
    bar, stored sparse: bar t's target book is ``idx/val[off[t]:off[t+1]]`` (longs and shorts interleaved).

    Why separate: the target book depends only on the ranking and on (concentration, weighting, vol target),
    not on the rebalance interval, band or smoothing, so the sweep builds it once and every configuration
    sharing those inputs reads it (4–24 configurations per target book in the default grids). Arithmetic is
    `portfolio._weights_kernel`'s: the same water-filling (`_fill_side_into`), the same 1/sigma bits."""
    T, N = inv_sigma.shape
    longs = np.empty(N, dtype=np.int64)
    shorts = np.empty(N, dtype=np.int64)
    rl = np.empty(N)
    rs = np.empty(N)
    wl = np.empty(N)  # each side's weights, filled in side order (not scattered into a dense row)
    ws = np.empty(N)
    iota = np.arange(N)  # "members" for the water-filling: write weight j of the side to slot j
    fixed = np.empty(N, dtype=np.bool_)  # water-filling scratch, allocated once rather than per side per bar
    e = 0
    for t in range(T):
        off[t] = e
        m = m_arr[t]
        k = n_selected(m, conc)
        if k < 1:
            continue
        for j in range(k):
            longs[j] = order[t, j]
            shorts[j] = order[t, m - 1 - j]
            rl[j] = raw_weight(inv_sigma[t, longs[j]], equal_w)
            rs[j] = raw_weight(inv_sigma[t, shorts[j]], equal_w)
        _fill_side_into(iota[:k], rl[:k], side_gross, cap, wl, 1.0, fixed)
        _fill_side_into(iota[:k], rs[:k], side_gross, cap, ws, -1.0, fixed)
        for j in range(k):
            idx[e + 2 * j] = longs[j]
            idx[e + 2 * j + 1] = shorts[j]
            val[e + 2 * j] = wl[j]
            val[e + 2 * j + 1] = ws[j]
        ns = 2 * k
        if vol_target:
            acc = 0.0
            for s in range(vol_window):
                row = hist_off + t - vol_window + 1 + s
                pr = 0.0
                if row >= 0:
                    for j in range(ns):
                        x = r_hist[row, idx[e + j]]
                        if x == x:
                            pr += val[e + j] * x
                acc += pr * pr
            fvol = math.sqrt(acc / vol_window * bars_per_year)
            big = 0.0
            gross = 0.0
            for j in range(ns):
                a = abs(val[e + j])
                gross += a
                if a > big:
                    big = a
            scale = vol_scale(fvol, big, gross, target_vol, max_scale, cap, max_lev)
            for j in range(ns):
                val[e + j] *= scale
        e += ns
    off[T] = e


@njit(cache=True, nogil=True)
def _batch_kernel(
    book_off, book_idx, book_val, cfg_book, cfg_reb, cfg_band, cfg_smooth, cfg_row, reb_masks,
    eligible, max_lev, min_weight, simple_ret, funding, inv_adv, fee, base_bps, coin_coef, capital, use_funding,
    out,
):
    """Steps 6–8 of `portfolio` (smoothing, no-trade band, eligibility, leverage cap) on the shared target
    books, fused with `backtest._backtest_kernel`'s accounting, for a batch of configurations at once.

    Why batched, bar-major: bar t's rows of the [bar, coin] panels (returns, eligibility, 1/ADV, funding) are
    read once for the whole batch while they sit in L1, instead of streaming ~8 MB panels per configuration.

    Why sparse and compact: a configuration's state is its held book only — coin, position and weight in
    parallel arrays (``held/hpos/hw[c, :nh[c]]``) — so a bar walks ≈ 2k coins, not N, mostly sequentially:
    (A) the held coins earn the bar's return and get their new weight, coins entering from the target book
    are appended; (B) every candidate trades to its new weight, pays fee and slippage, and the non-zero ones
    are compacted into the new held book. Per configuration the arithmetic is the dense path's except that
    sums over coins run in another order and the slippage ratio multiplies by a precomputed 1/ADV, so results
    agree to ~1e-15, not bit for bit (tests compare every configuration with `target_path` + `run_backtest`).
    Configurations never interact: each row of a batch has the same bits as that configuration alone (tested).

    ``cfg_*[c]``: configuration c's target book (row of ``book_off``), rebalance mask (row of ``reb_masks``),
    band, smoothing, and its row of ``out``; ``out[cfg_row[c], t]``: `backtest.BAR_FIELDS`."""
    C = cfg_book.shape[0]
    B = book_off.shape[0]
    T, N = eligible.shape
    # coin columns are stored unsigned: numba then skips negative-index wraparound on every lookup
    held = np.empty((C, N), dtype=np.uint64)  # coins with a non-zero weight ...
    hpos = np.empty((C, N))  # ... their positions in equity units (marked at the last close) ...
    hw = np.empty((C, N))  # ... and their weights (the book held into this bar)
    nh = np.zeros(C, dtype=np.int64)
    eq = np.ones(C)
    tw = np.zeros((B, N))  # each book's target at this bar, dense (reset after the bar)
    cand = np.empty(N, dtype=np.uint64)  # scratch for one (bar, config): candidate coins,
    cpos = np.empty(N)  # their drifted positions
    cw = np.empty(N)  # and their new weights before the leverage cap
    mark = np.full(N, -1, dtype=np.int64)  # mark[i] == stamp: coin i is already a candidate
    stamp = 0
    for t in range(T):
        for b in range(B):
            for e in range(book_off[b, t], book_off[b, t + 1]):
                tw[b, np.uint64(book_idx[e])] = book_val[e]
        for c in range(C):
            stamp += 1
            reb = reb_masks[cfg_reb[c], t]
            band = cfg_band[c]
            smoothing = cfg_smooth[c]
            smooth = smoothing < 1.0
            bk = cfg_book[c]
            nc = nh[c]
            g = 0.0
            fu = 0.0
            gross = 0.0
            # (A) held coins: earn the bar's return and drift ...
            for j in range(nc):
                i = held[c, j]
                cand[j] = i
                mark[i] = stamp
                p = hpos[c, j]
                if p != 0.0:
                    r = simple_ret[t, i]
                    g += p * r
                    if use_funding:
                        fu += p * funding[t, i]
                    p = p * (1.0 + r)
                cpos[j] = p
            # ... then get this bar's weight: the portfolio rules `rebalance_weight` and `keep_weight`
            for j in range(nc):
                i = cand[j]
                x = rebalance_weight(tw[bk, i], hw[c, j], band, smoothing, min_weight) if reb else hw[c, j]
                x = keep_weight(x, eligible[t, i], smooth, min_weight)
                cw[j] = x
                gross += abs(x)
            # ... and coins entering from the target book (not held: previous weight and position 0)
            if reb:
                for e in range(book_off[bk, t], book_off[bk, t + 1]):
                    i = np.uint64(book_idx[e])
                    if mark[i] != stamp:
                        x = keep_weight(rebalance_weight(book_val[e], 0.0, band, smoothing, min_weight),
                                        eligible[t, i], smooth, min_weight)
                        cand[nc] = i
                        cpos[nc] = 0.0
                        cw[nc] = x
                        nc += 1
                        gross += abs(x)
            lev = max_lev / gross if gross > max_lev else 1.0
            # (B) trade to the new weights; the non-zero ones become the held book
            eq0 = eq[c]
            eq_mid = eq0 + g - fu
            if eq_mid <= 0.0:
                eq_mid = 0.0
            to = 0.0
            sl = 0.0  # in bp × equity units: divided by 1e4 once per bar, not per coin
            ge = 0.0
            ne = 0.0
            n = 0
            for j in range(nc):
                x = cw[j] * lev
                if not eq_mid > 0.0:
                    x = 0.0
                tgt = x * eq_mid
                d = abs(tgt - cpos[j])
                if d > 0.0:
                    to += d
                    bps = slippage_bps_inv(d * capital, inv_adv[t, cand[j]], base_bps, coin_coef)
                    sl += d * bps
                ge += abs(x)
                ne += x
                if x != 0.0:
                    held[c, n] = cand[j]
                    hpos[c, n] = tgt
                    hw[c, n] = x
                    n += 1
            nh[c] = n
            sl /= 1e4
            fees = to * fee / 1e4
            eq_new = eq_mid - fees - sl
            base = eq0 if eq0 > 0.0 else 1.0
            o = cfg_row[c]
            out[o, t, 0] = g / base
            out[o, t, 1] = fu / base
            out[o, t, 2] = fees / base
            out[o, t, 3] = sl / base
            out[o, t, 4] = eq_new / base - 1.0 if eq0 > 0.0 else 0.0
            out[o, t, 5] = to / eq_mid if eq_mid > 0.0 else 0.0
            out[o, t, 6] = eq_new
            out[o, t, 7] = ge
            out[o, t, 8] = ne
            eq[c] = eq_new
        for b in range(B):
            for e in range(book_off[b, t], book_off[b, t + 1]):
                tw[b, np.uint64(book_idx[e])] = 0.0


@njit(cache=True, nogil=True)
def _panel_inputs_kernel(close, sigma, adv, ret, inv_sigma, inv_adv):
    T, N = close.shape
    for t in range(T):
        for i in range(N):
            c1 = close[t, i]
            r = 0.0
            if t > 0:
                c0 = close[t - 1, i]
                if math.isfinite(c0) and math.isfinite(c1) and c0 > 0.0:
                    r = c1 / c0 - 1.0
            ret[t, i] = r
            inv_sigma[t, i] = 1.0 / sigma[t, i] if sigma[t, i] != 0.0 else math.copysign(math.inf, sigma[t, i])
            inv_adv[t, i] = inv_adv_scalar(adv[t, i])


def panel_inputs(close: np.ndarray, sigma: np.ndarray, adv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-panel arrays every configuration shares, in one pass: simple returns (missing or non-positive
    previous price = 0, the backtest's rule, same expression so the same bits), 1/sigma (what the weights
    kernel divides by), and 1/ADV (inf where ADV is unknown or ≤ 0, which makes the slippage ratio 1 as in
    `costs.slippage_bps_scalar`; a multiply instead of a divide per traded coin)."""
    close, sigma, adv = (np.ascontiguousarray(x, dtype=np.float64) for x in (close, sigma, adv))
    ret, inv_sigma, inv_adv = np.empty(close.shape), np.empty(close.shape), np.empty(close.shape)
    _panel_inputs_kernel(close, sigma, adv, ret, inv_sigma, inv_adv)
    return ret, inv_sigma, inv_adv


@dataclass(frozen=True)
class TargetBooks:
    """The sparse target book of every bar for one (ranking, concentration, weighting, vol target): bar t's
    book is ``idx/val[off[t]:off[t + 1]]``. Shared by every rebalance interval, band and smoothing."""

    off: np.ndarray  # int64 [T + 1]
    idx: np.ndarray  # int64 coin columns
    val: np.ndarray  # float64 signed weights


def book_size(m, pp: PortfolioParams) -> int:
    """Entries of `target_books` for ``pp`` (Σ over bars of 2k)."""
    return int(_book_size(np.ascontiguousarray(m, dtype=np.int64), float(pp.concentration_pct))) if len(m) else 0


def target_books(order, m, inv_sigma, r_hist, pp: PortfolioParams, idx=None, val=None) -> TargetBooks:
    """Run `_targets_kernel` (portfolio steps 3–5) for one parameter set; ``inv_sigma`` = 1/sigma
    (`panel_inputs`), ``r_hist`` as in `portfolio.target_path` (only read with the vol target on).
    ``idx``/``val``: optional storage of `book_size` entries (slices of a batch's flat arrays)."""
    T = order.shape[0]
    if pp.weight_scheme not in ("inverse_vol", "equal"):
        raise ValueError(f"weight_scheme {pp.weight_scheme!r}: expected 'inverse_vol' or 'equal'")
    m = np.ascontiguousarray(m, dtype=np.int64)
    n = book_size(m, pp)
    off = np.zeros(T + 1, dtype=np.int64)
    idx = np.empty(n, dtype=np.int64) if idx is None else idx
    val = np.empty(n) if val is None else val
    if idx.shape != (n,) or val.shape != (n,):
        raise ValueError(f"target book storage has {idx.shape}/{val.shape} entries, expected {n}")
    if T:
        _targets_kernel(
            order, m, inv_sigma, r_hist, r_hist.shape[0] - T, float(pp.concentration_pct), pp.side_gross, pp.cap,
            pp.max_leverage, pp.weight_scheme == "equal", pp.vol_target, pp.target_vol, pp.max_scale,
            pp.vol_window, BARS_PER_YEAR, off, idx, val,
        )
    return TargetBooks(off, idx, val)


def simulate_configs(books: list[TargetBooks], configs: list[tuple[int, int, float, float]], reb_masks: np.ndarray,
                     eligible, shared, funding, costs: CostParams, capital_usd: float, max_leverage: float,
                     out: np.ndarray | None = None, rows=None) -> np.ndarray:
    """Per-bar backtest fields ``[config, bar, BAR_FIELDS]`` of a batch of configurations on one ranking.
    ``configs[c]`` = (index into ``books``, row of ``reb_masks`` (`rebalance_mask` per interval), band as a
    fraction of capital, smoothing); ``shared`` = `panel_inputs` of the same bars. Configuration c writes
    ``out[rows[c]]`` (default: ``out[c]``)."""
    T, N = eligible.shape
    C = len(configs)
    out = np.zeros((C, T, len(BAR_FIELDS))) if out is None else out
    rows = np.arange(C, dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
    if T == 0 or C == 0:
        return out
    off = np.empty((len(books), T + 1), dtype=np.int64)
    base = 0
    for b, bk in enumerate(books):  # one flat idx/val for all books; off rows point into it
        off[b] = bk.off + base
        base += len(bk.idx)
    idx = np.concatenate([bk.idx for bk in books])
    val = np.concatenate([bk.val for bk in books])
    _run_batch(off, idx, val, configs, reb_masks, eligible, shared, funding, costs, capital_usd, max_leverage, out,
               rows)
    return out


def _run_batch(off, idx, val, configs, reb_masks, eligible, shared, funding, costs: CostParams, capital_usd: float,
               max_leverage: float, out, rows) -> None:
    cfg = list(zip(*configs))
    ret, _, inv_adv = shared
    _batch_kernel(
        off, idx, val, np.array(cfg[0], dtype=np.int64), np.array(cfg[1], dtype=np.int64),
        np.array(cfg[2], dtype=np.float64), np.array(cfg[3], dtype=np.float64), rows, np.ascontiguousarray(reb_masks),
        np.ascontiguousarray(eligible), float(max_leverage), MIN_WEIGHT, ret, np.ascontiguousarray(funding), inv_adv,
        costs.taker_fee_bps, costs.slippage_base_bps, costs.slippage_impact_coef, float(capital_usd), costs.funding,
        out,
    )


def simulate_config(times, order, m, sigma, eligible, r_hist, pp: PortfolioParams, close, funding, adv,
                    costs: CostParams, capital_usd: float, rebalance=None, shared=None,
                    books: TargetBooks | None = None) -> np.ndarray:
    """Per-bar backtest fields (`backtest.BAR_FIELDS`) of one configuration on a precomputed ranking
    (a batch of one). ``shared``: `panel_inputs(close, sigma, adv)` computed once for many configurations;
    ``books``: `target_books` for this configuration's ranking, concentration, weighting and vol target."""
    T = order.shape[0]
    shared = panel_inputs(close, sigma, adv) if shared is None else shared
    if T == 0:
        return np.zeros((0, len(BAR_FIELDS)))
    books = target_books(order, m, shared[1], r_hist, pp) if books is None else books
    reb = rebalance_mask(times, pp.rebalance_hours, pp.rebalance_phase_hours) if rebalance is None else rebalance
    return simulate_configs([books], [(0, 0, pp.band, pp.smoothing)], np.asarray(reb)[None, :], eligible, shared,
                            funding, costs, capital_usd, pp.max_leverage)[0]


def _mask_key(pp: PortfolioParams, reb_masks: dict):
    """`reb_masks` is keyed by interval (phase 0) or by (interval, phase)."""
    key = (pp.rebalance_hours, pp.rebalance_phase_hours)
    if key in reb_masks:
        return key
    if pp.rebalance_phase_hours == 0 and pp.rebalance_hours in reb_masks:
        return pp.rebalance_hours
    raise KeyError(f"no rebalance mask for {pp.rebalance_hours}h phase {pp.rebalance_phase_hours}h")


def simulate_grid(configs: list[dict], order, m, eligible, r_hist, shared, funding, reb_masks: dict,
                  base: PortfolioParams, costs: CostParams, capital_usd: float, pool=None, workers: int = 1,
                  batch: int = 32) -> np.ndarray:
    """Per-bar backtest fields ``[config, bar, BAR_FIELDS]`` of grid configurations on one ranking.

    The target book is built once per (concentration, weighting) and shared by every interval, band and
    smoothing; configurations then run in batches (bar-major, see `_batch_kernel`) of about ``batch``
    (32 keeps a batch's state in L2), at least ``workers`` batches (when there are as many books) so every
    thread has one."""
    pps = [config_params(base, c) for c in configs]
    T = order.shape[0]
    out = np.empty((len(configs), T, len(BAR_FIELDS)))  # the kernel writes every field of every bar
    if T == 0 or not configs:
        return out
    run = pool.map if pool is not None else map
    by_book: dict = {}  # (concentration, weighting) -> configurations sharing that target book
    for ci, pp in enumerate(pps):
        by_book.setdefault((pp.concentration_pct, pp.weight_scheme), []).append(ci)
    size = {key: book_size(m, pps[cis[0]]) for key, cis in by_book.items()}
    # Batches: each book's configurations stay together (a batch fills a book's dense view once per bar for
    # all of them), and books go to the least loaded batch, heaviest first (work ∝ book entries × configs),
    # so `workers` threads finish together.
    n_batches = min(len(by_book), max(math.ceil(len(configs) / batch), max(1, workers)))
    load = [0] * n_batches
    batches: list[list] = [[] for _ in range(n_batches)]
    for key in sorted(by_book, key=lambda k: -(size[k] + 1) * len(by_book[k])):
        b = int(np.argmin(load))
        batches[b].append(key)
        load[b] += (size[key] + 1) * len(by_book[key])
    # each batch's books live in one flat idx/val (what the kernel reads), built in place, in parallel
    hours = sorted(reb_masks)
    masks = np.stack([reb_masks[h] for h in hours])
    flat, where, jobs = [], {}, []
    for keys_b in batches:
        n = sum(size[k] for k in keys_b)
        idx, val = np.empty(n, dtype=np.int64), np.empty(n)
        flat.append((idx, val))
        a = 0
        for key in keys_b:
            where[key] = a
            jobs.append((key, idx[a:a + size[key]], val[a:a + size[key]]))
            a += size[key]
    books = dict(zip([j[0] for j in jobs], run(
        lambda j: target_books(order, m, shared[1], r_hist, pps[by_book[j[0]][0]], j[1], j[2]), jobs)))

    def one(bi):
        keys_b = batches[bi]
        off = np.stack([books[k].off + where[k] for k in keys_b])
        rows = np.array([ci for key in keys_b for ci in by_book[key]], dtype=np.int64)
        cfg = [(keys_b.index((pps[ci].concentration_pct, pps[ci].weight_scheme)),
                hours.index(_mask_key(pps[ci], reb_masks)),
                pps[ci].band, pps[ci].smoothing) for ci in rows]
        _run_batch(off, *flat[bi], cfg, masks, eligible, shared, funding, costs, capital_usd, base.max_leverage, out,
                   rows)

    list(run(one, range(n_batches)))
    return out
