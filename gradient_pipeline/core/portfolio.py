"""Eligibility, selection and target weights, bar by bar, with the turnover controls. Pure and shared:
the backtest runs `target_path` over the history, the live asset runs it over the new window(s) starting
from the previous window's stored weights, so both produce the same numbers.

At each bar t (targets for the window ending at ``times[t] + 4h``):

1. **Eligible**: a candle at t, not delisted, finite score, sigma > 0, and
   ``threshold < liquidity_impact_pct/100 × ADV`` (ADV = USD volume of the last ``adv_bars`` bars), where
   ``threshold = max(liquidity_threshold_usd, capital_usd × max_position_pct/100)`` (`from_config`): the
   largest position the configured capital implies must be a small share of the coin's volume.
2. **Rebalance bar?** when the window end ``times[t] + 4h`` is a multiple of ``rebalance_freq_hours`` since
   1970-01-01 UTC (4h: every bar; 24h: the bar ending at 00:00 UTC). Otherwise the previous weights are kept.
3. **Selection** (rebalance bars): N eligible, ``k = min(ceil(N × concentration_pct/100), floor(N/2))``.
   Rank 1 = highest score; ties are ranked by coin name A→Z. Longs = ranks 1..k, shorts = ranks N−k+1..N.
4. **Weights**: within a side ∝ 1/sigma (``inverse_vol``) or equal, scaled to ``side_gross_pct``% of capital.
   No position above ``max_position_pct``%: the excess goes to the uncapped names of the side in proportion
   to their raw weights, repeated until none exceeds the cap. If ``k × cap`` is below the side gross the side
   is **shrunk** (every name at the cap); `info` reports ``n_capped`` and ``shrunk``.
5. **Vol target** (optional): forecast annual vol of the new book = RMS of its hypothetical returns over the
   last ``vol_span`` bars (uses the correlations actually realised) × sqrt(2190); the book is scaled by
   ``min(max_scale, target / forecast)``, never beyond the cap or ``max_total_leverage``.
6. **Turnover controls** (rebalance bars; one rule, `rebalance_weight`, used by this kernel and the sweep's):
   with target ``τ`` and held weight ``p``
   * **no-trade band** — if ``p`` and ``τ`` are on the same side and ``|τ − p| < no_trade_band_pct``% of
     capital, the coin keeps ``p`` (the band compares the *target* with the *held* weight);
   * **smoothing** — otherwise ``w = a·τ + (1 − a)·p`` (``weight_smoothing`` = a; 1 = off): a step towards the
     target; a step that would end within the band of the target goes all the way to it (so a partial step
     never stops where the band forbids the rest). Entries (p = 0), exits (τ = 0) and flips are never
     blocked by the band;
   * **exits** — a coin whose target is 0 decays as ``(1 − a)·p`` and is set to 0 as soon as
     ``|w| < max(band, MIN_WEIGHT)``. Since ``|p| ≤ max_position_pct``, a coin whose target stays 0 is flat
     after at most ``exit_bound(cap, band, a) = floor(log(max(band, MIN_WEIGHT)/cap) / log(1 − a)) + 1``
     rebalances (1 without smoothing; 4 with cap 10%, band 1%, a = 0.5; 10 with no band, a = 0.5). Likewise a
     coin with a steady non-zero target reaches it exactly once the remaining gap is below the band.
7. (removed: the old band tested ``a·(τ − p)`` after smoothing, which froze the book — see issue 12.)
8. Every bar (rebalance or not): ineligible coins are set to 0 (a delisted or illiquid coin is always exited),
   with smoothing on, weights below ``MIN_WEIGHT`` are dropped, and the book is scaled down if
   gross > ``max_total_leverage`` (`keep_weight`).

Steps 6–8 make today's weights depend on yesterday's; that is why live reads the previous stored window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit

from gradient_pipeline.timegrid import BAR

MIN_WEIGHT = 1e-4  # 0.01 % of capital: smaller weights (smoothing tails) are dropped
BARS_PER_YEAR = 6 * 365
INFO_FIELDS = (
    "n_eligible", "k", "n_long", "n_short", "long_gross", "short_gross", "n_capped", "shrunk",
    "vol_scale", "forecast_vol", "is_rebalance",
)
_I = {n: i for i, n in enumerate(INFO_FIELDS)}


@dataclass(frozen=True)
class PortfolioParams:
    concentration_pct: float = 35.0
    side_gross: float = 0.35  # fraction of capital per side
    cap: float = 0.10  # max |weight|
    max_leverage: float = 2.0
    weight_scheme: str = "inverse_vol"
    liquidity_threshold_usd: float = 10_000.0
    liquidity_impact_pct: float = 2.5
    rebalance_hours: int = 4
    rebalance_phase_hours: int = 0  # the grid is shifted by this many hours (0: window ends at 00:00 UTC)
    band: float = 0.0  # fraction of capital
    smoothing: float = 1.0
    vol_target: bool = False
    target_vol: float = 0.20  # annual, fraction
    max_scale: float = 1.0
    vol_window: int = 24

    @classmethod
    def from_config(cls, cfg) -> "PortfolioParams":
        return cls(
            concentration_pct=cfg.concentration_pct,
            side_gross=cfg.side_gross_pct / 100,
            cap=cfg.max_position_pct / 100,
            max_leverage=cfg.max_total_leverage,
            weight_scheme=cfg.weight_scheme,
            # the order sizes the configured capital implies: a full position (cap × capital) must itself be a
            # liquid-enough order, so at large capital the threshold rises with it (issue 12)
            liquidity_threshold_usd=max(cfg.liquidity_threshold_usd, cfg.capital_usd * cfg.max_position_pct / 100),
            liquidity_impact_pct=cfg.liquidity_impact_pct,
            rebalance_hours=cfg.rebalance_freq_hours,
            band=cfg.no_trade_band_pct / 100,
            smoothing=cfg.weight_smoothing,
            vol_target=cfg.vol_target.enabled,
            target_vol=cfg.vol_target.target_annual_vol_pct / 100,
            max_scale=cfg.vol_target.max_scale,
            vol_window=cfg.vol_span,
        )

    @property
    def path_dependent(self) -> bool:
        """True when a bar's weights depend on the previous bar's (band, smoothing or a longer interval)."""
        return self.band > 0 or self.smoothing < 1 or self.rebalance_hours != 4


@dataclass
class WeightsResult:
    weights: np.ndarray  # [bar, coin] signed fraction of capital
    rank: np.ndarray  # [bar, coin] rank among eligible (1 = best), 0 = not eligible / not ranked
    eligible: np.ndarray  # [bar, coin] bool
    info: np.ndarray  # [bar, field] see INFO_FIELDS

    def info_frame(self, times) -> pd.DataFrame:
        return pd.DataFrame(self.info, index=pd.DatetimeIndex(times, name="ts"), columns=list(INFO_FIELDS))


def eligibility(close, delisted, score, sigma, adv, params: PortfolioParams) -> np.ndarray:
    """Boolean ``[bar, coin]``: may hold a position at that bar (see module doc, step 1)."""
    with np.errstate(invalid="ignore"):
        liquid = params.liquidity_threshold_usd < (params.liquidity_impact_pct / 100.0) * adv
        return (
            np.isfinite(close) & ~delisted & np.isfinite(score) & np.isfinite(sigma) & (sigma > 0) & liquid
        )


def rebalance_mask(times, rebalance_hours: int, phase_hours: int = 0) -> np.ndarray:
    """True at bars whose window end (open + 4h) is on the ``rebalance_hours`` grid anchored at the epoch
    shifted by ``phase_hours`` (a multiple of 4 below the interval; 0 = the live grid)."""
    if phase_hours % 4 or not 0 <= phase_hours < max(int(rebalance_hours), 4):
        raise ValueError(f"rebalance phase {phase_hours}h: must be a multiple of 4 below the {rebalance_hours}h interval")
    end_hours = (pd.DatetimeIndex(times) + BAR).asi8 // 3_600_000_000_000
    return ((end_hours - int(phase_hours)) % int(rebalance_hours)) == 0


@njit(cache=True)
def _fill_side(members, raw, gross, cap, w, sign):
    """Water-filling: w ∝ raw, Σ = gross, each ≤ cap. Returns (n_capped, shrunk)."""
    return _fill_side_into(members, raw, gross, cap, w, sign, np.empty(members.shape[0], dtype=np.bool_))


@njit(cache=True)
def _fill_side_into(members, raw, gross, cap, w, sign, fixed):
    """`_fill_side` with a caller-owned scratch ``fixed`` (length ≥ k): the sweep calls it at every bar of
    every target book, where allocating per call was a measurable share of the time."""
    k = members.shape[0]
    if k == 0:
        return 0, False
    if k * cap <= gross * (1.0 + 1e-12):
        for j in range(k):
            w[members[j]] = sign * cap
        return k, True
    for j in range(k):
        fixed[j] = False
    n_fixed = 0
    for _ in range(k + 1):
        rem = gross - cap * n_fixed
        tot = 0.0
        for j in range(k):
            if not fixed[j]:
                tot += raw[j]
        f = rem / tot
        over = False
        for j in range(k):
            if not fixed[j] and f * raw[j] > cap * (1.0 + 1e-12):
                fixed[j] = True
                n_fixed += 1
                over = True
        if not over:
            for j in range(k):
                w[members[j]] = sign * (cap if fixed[j] else f * raw[j])
            return n_fixed, False
    return n_fixed, False  # unreachable: at most k names can be fixed


@njit(cache=True, nogil=True)
def n_selected(m, conc):
    """Step 3: k, the names per side at a bar with ``m`` eligible coins."""
    k = 0
    if m >= 2:
        k = int(math.ceil(m * conc / 100.0 - 1e-9))
        if k > m // 2:
            k = m // 2
    return k


@njit(cache=True, nogil=True)
def raw_weight(inv_sigma, equal_w):
    """Step 4: a selected name's raw (pre-water-filling) weight: 1/sigma, or 1 for equal weights."""
    return 1.0 if equal_w else inv_sigma


@njit(cache=True, nogil=True)
def vol_scale(fvol, big, gross, target_vol, max_scale, cap, max_lev):
    """Step 5: the vol-target factor for a book with forecast annual vol ``fvol``, largest |weight| ``big`` and
    gross ``gross``: ``min(max_scale, target/forecast)``, never beyond the cap or the leverage limit."""
    scale = max_scale if fvol <= 0.0 else min(max_scale, target_vol / fvol)
    if big > 0.0 and scale * big > cap:
        scale = cap / big
    if gross > 0.0 and scale * gross > max_lev:
        scale = max_lev / gross
    return scale


@njit(cache=True, nogil=True)
def rebalance_weight(target, prev, band, smoothing, min_weight):
    """Step 6: the new weight of one coin on a rebalance bar from its target and its held weight."""
    if band > 0.0 and prev != 0.0 and target != 0.0 and (prev > 0.0) == (target > 0.0) \
            and abs(target - prev) < band:
        return prev  # held within the band of its target: no trade
    x = smoothing * target + (1.0 - smoothing) * prev if smoothing < 1.0 else target
    # a step that ends inside the band (for an exit: inside the band or below the dust threshold) goes all the
    # way: otherwise a partial step could stop where the band then forbids the rest (the old dead zone)
    thr = band if target != 0.0 else max(band, min_weight)
    if abs(target - x) < thr:
        x = target
    return x


@njit(cache=True, nogil=True)
def keep_weight(x, eligible, smooth, min_weight):
    """Step 8 per coin: ineligible coins are exited; with smoothing, dust below ``min_weight`` is dropped."""
    if not eligible or (smooth and abs(x) < min_weight):
        return 0.0
    return x


def exit_bound(cap: float, band: float, smoothing: float) -> int:
    """Rebalances after which a coin whose target stays 0 is certainly flat (module doc, step 6)."""
    if smoothing >= 1.0:
        return 1
    thr = max(band, MIN_WEIGHT)
    if cap < thr:
        return 1
    return int(math.floor(math.log(thr / cap) / math.log(1.0 - smoothing))) + 1


@njit(cache=True)
def _order_kernel(score, eligible, order, m_out):
    """Per bar: eligible coins sorted by score descending, ties by column (= coin name) order."""
    T, N = score.shape
    idx = np.empty(N, dtype=np.int64)
    keys = np.empty(N)
    for t in range(T):
        m = 0
        for i in range(N):
            if eligible[t, i]:
                idx[m] = i
                keys[m] = -score[t, i]
                m += 1
        m_out[t] = m
        if m:
            o = np.argsort(keys[:m], kind="mergesort")  # stable: ties keep coin-name order
            for j in range(m):
                order[t, j] = idx[o[j]]


@njit(cache=True)
def _weights_kernel(
    order, m_arr, sigma, eligible, r_hist, hist_off, is_reb, prev,
    conc, side_gross, cap, max_lev, equal_w, band, smoothing,
    vol_target, target_vol, max_scale, vol_window, bars_per_year, min_weight,
    w_out, info,
):
    T, N = sigma.shape
    w_prev = prev.copy()
    w = np.zeros(N)
    tw = np.zeros(N)
    longs = np.empty(N, dtype=np.int64)
    shorts = np.empty(N, dtype=np.int64)
    rl = np.empty(N)
    rs = np.empty(N)
    for t in range(T):
        for f in range(info.shape[1]):
            info[t, f] = 0.0
        m = m_arr[t]
        info[t, 0] = m
        for i in range(N):
            w[i] = w_prev[i]
        if is_reb[t]:
            info[t, 10] = 1.0
            for i in range(N):
                tw[i] = 0.0
            k = n_selected(m, conc)
            info[t, 1] = k
            if k >= 1:
                for j in range(k):
                    longs[j] = order[t, j]
                    shorts[j] = order[t, m - 1 - j]
                    rl[j] = raw_weight(1.0 / sigma[t, longs[j]], equal_w)
                    rs[j] = raw_weight(1.0 / sigma[t, shorts[j]], equal_w)
                c1, s1 = _fill_side(longs[:k], rl[:k], side_gross, cap, tw, 1.0)
                c2, s2 = _fill_side(shorts[:k], rs[:k], side_gross, cap, tw, -1.0)
                info[t, 6] = c1 + c2
                info[t, 7] = 1.0 if (s1 or s2) else 0.0
            scale = 1.0
            if vol_target and k >= 1:
                acc = 0.0
                for s in range(vol_window):
                    row = hist_off + t - vol_window + 1 + s
                    pr = 0.0
                    if row >= 0:
                        for i in range(N):
                            if tw[i] != 0.0:
                                x = r_hist[row, i]
                                if x == x:
                                    pr += tw[i] * x
                    acc += pr * pr
                fvol = math.sqrt(acc / vol_window * bars_per_year)
                info[t, 9] = fvol
                big = 0.0
                gross = 0.0
                for i in range(N):
                    a = abs(tw[i])
                    gross += a
                    if a > big:
                        big = a
                scale = vol_scale(fvol, big, gross, target_vol, max_scale, cap, max_lev)
                for i in range(N):
                    tw[i] *= scale
            info[t, 8] = scale
            for i in range(N):
                w[i] = rebalance_weight(tw[i], w_prev[i], band, smoothing, min_weight)
        else:
            info[t, 8] = 1.0
        gross = 0.0
        for i in range(N):
            w[i] = keep_weight(w[i], eligible[t, i], smoothing < 1.0, min_weight)
            gross += abs(w[i])
        if gross > max_lev:
            f = max_lev / gross
            for i in range(N):
                w[i] *= f
        nl = 0
        ns = 0
        lg = 0.0
        sg = 0.0
        for i in range(N):
            x = w[i]
            w_out[t, i] = x
            if x > 0.0:
                nl += 1
                lg += x
            elif x < 0.0:
                ns += 1
                sg -= x
        info[t, 2] = nl
        info[t, 3] = ns
        info[t, 4] = lg
        info[t, 5] = sg
        for i in range(N):
            w_prev[i] = w[i]


def target_path(
    times,
    score: np.ndarray,
    sigma: np.ndarray,
    adv: np.ndarray,
    close: np.ndarray,
    delisted: np.ndarray,
    params: PortfolioParams,
    prev_weights: np.ndarray | None = None,
    r_hist: np.ndarray | None = None,
    want_rank: bool = True,
) -> WeightsResult:
    """Target weights for every bar of ``times`` (bars × coins arrays), starting from ``prev_weights``
    (the weights held before the first bar; None = flat).

    ``r_hist``: log returns for the vol target, ``[vol_window − 1 + T, N]`` with the look-back rows first
    (None: only the given bars, i.e. no look-back before the first bar).
    """
    score = np.ascontiguousarray(score, dtype=np.float64)
    T, N = score.shape
    if params.weight_scheme not in ("inverse_vol", "equal"):
        raise ValueError(f"weight_scheme {params.weight_scheme!r}: expected 'inverse_vol' or 'equal'")
    if params.rebalance_hours % 4 or params.rebalance_hours <= 0:
        raise ValueError(f"rebalance_freq_hours {params.rebalance_hours}: must be a positive multiple of 4")
    elig = eligibility(close, delisted, score, sigma, adv, params)
    prev = np.zeros(N) if prev_weights is None else np.asarray(prev_weights, dtype=np.float64).copy()
    if prev.shape != (N,):
        raise ValueError(f"prev_weights has shape {prev.shape}, expected ({N},)")
    if r_hist is None:
        if params.vol_target:
            raise ValueError("the vol target needs r_hist (log returns incl. vol_window - 1 look-back rows)")
        r_hist = np.zeros((T, 0))  # never read without the vol target
    r_hist = np.ascontiguousarray(r_hist, dtype=np.float64)
    hist_off = r_hist.shape[0] - T
    if hist_off < 0:
        raise ValueError("r_hist must cover every bar (look-back rows first)")
    order, m = rank_order(score, elig)
    w, info = weights_from_order(times, order, m, sigma, elig, params, prev, r_hist)
    rank = np.zeros((T, N), dtype=np.int64)
    if want_rank:
        rows, pos = np.nonzero(np.arange(N)[None, :] < m[:, None])
        rank[rows, order[rows, pos]] = pos + 1
    return WeightsResult(w, rank, elig, info)


def rank_order(score: np.ndarray, eligible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``order[t, :m[t]]`` = eligible columns by score descending (ties: coin name A→Z)."""
    T, N = score.shape
    order = np.zeros((T, N), dtype=np.int64)
    m = np.zeros(T, dtype=np.int64)
    if T:
        _order_kernel(np.ascontiguousarray(score, dtype=np.float64), np.ascontiguousarray(eligible), order, m)
    return order, m


def weights_from_order(times, order, m, sigma, eligible, params: PortfolioParams, prev, r_hist,
                       rebalance=None) -> tuple[np.ndarray, np.ndarray]:
    """The weights kernel on a precomputed ranking (the sweep reuses one ranking for many configurations)."""
    T, N = order.shape
    w = np.empty((T, N))
    info = np.zeros((T, len(INFO_FIELDS)))
    if T == 0:
        return w, info
    hist_off = r_hist.shape[0] - T
    _weights_kernel(
        order, m, np.ascontiguousarray(sigma, dtype=np.float64), np.ascontiguousarray(eligible), r_hist, hist_off,
        rebalance_mask(times, params.rebalance_hours, params.rebalance_phase_hours) if rebalance is None else rebalance,
        prev,
        params.concentration_pct, params.side_gross, params.cap, params.max_leverage,
        params.weight_scheme == "equal", params.band, params.smoothing,
        params.vol_target, params.target_vol, params.max_scale, params.vol_window, BARS_PER_YEAR,
        MIN_WEIGHT, w, info,
    )
    return w, info


def check_weights(weights: np.ndarray, eligible: np.ndarray, info_row: np.ndarray, params: PortfolioParams,
                  coins=None, when=None) -> list[str]:
    """Invariant violations of one bar's weights (empty list = valid). Tight rules for a book built fresh
    (no band/smoothing: exact side grosses, k names a side, net 0); loose bounds otherwise."""
    where = f" at {when}" if when is not None else ""
    name = (lambda i: coins[i]) if coins is not None else (lambda i: f"column {i}")
    out = []
    bad = ~np.isfinite(weights)
    if bad.any():
        return [f"non-finite weight for {name(int(np.flatnonzero(bad)[0]))}{where}"]
    held_inelig = (weights != 0) & ~eligible
    if held_inelig.any():
        out.append(f"ineligible coin {name(int(np.flatnonzero(held_inelig)[0]))} has weight{where}")
    big = np.abs(weights) > params.cap + 1e-12
    if big.any():
        i = int(np.flatnonzero(big)[0])
        out.append(f"{name(i)} weight {weights[i]:.6f} exceeds cap {params.cap}{where}")
    gross = float(np.abs(weights).sum())
    if gross > params.max_leverage + 1e-9:
        out.append(f"gross {gross:.6f} exceeds max_total_leverage {params.max_leverage}{where}")
    lg, sg = float(weights[weights > 0].sum()), float(-weights[weights < 0].sum())
    scale = float(info_row[_I["vol_scale"]]) if params.vol_target else 1.0
    side_max = params.side_gross * (max(1.0, params.max_scale) if params.vol_target else 1.0)
    if params.path_dependent:
        if max(lg, sg) > 2 * side_max + 1e-9:
            out.append(f"side gross long {lg:.6f} / short {sg:.6f} above 2 × side gross{where}")
        if abs(lg - sg) > side_max + 1e-9:
            out.append(f"net {lg - sg:+.6f} beyond one side's gross{where}")
        return out
    k = int(info_row[_I["k"]])
    nl, ns = int((weights > 0).sum()), int((weights < 0).sum())
    n_elig = int(eligible.sum())
    if nl != ns or nl > n_elig // 2 or nl != k:
        out.append(f"counts long {nl} / short {ns} (k={k}, eligible={n_elig}){where}")
    expect = min(params.side_gross, k * params.cap) * scale
    for side, g in (("long", lg), ("short", sg)):
        if k and abs(g - expect) > 1e-9:
            out.append(f"{side} gross {g:.6f} != expected {expect:.6f}{where}")
    if abs(lg - sg) > 1e-9:
        out.append(f"net {lg - sg:+.3e} is not 0{where}")
    return out
