"""Vol-normalised returns and the multi-span momentum score: one sequential kernel with explicit state.

Definitions (the strategy card's, made exact):

* ``r_t = log(close_t / close_{t-1})`` on consecutive complete 4h candles; NaN when either candle is missing.
* ``sigma_t`` = EWMA standard deviation of ``r`` with span ``vol_span``, **exactly pandas**
  ``r.ewm(span=vol_span, adjust=False, min_periods=vol_span).std()`` (bias-corrected, mean-subtracted;
  NaN returns inside the history decay the weights as pandas' default ``ignore_na=False`` does). A coin has a
  sigma once it has ``vol_span`` observed returns.
* ``z_t = r_t / sigma_t``; a non-finite z (no sigma yet, a gap, sigma 0) counts as 0.
* ``ewm_s`` = ``z.ewm(span=s, adjust=False).mean()`` for every ``s`` in ``lookback_spans``, seeded at the coin's
  first traded candle (``adjust=False``: ``y_0 = x_0``, ``y_t = (1-a) y_{t-1} + a x_t`` with ``a = 2/(s+1)``).
* score (``signal_combination``): ``sum`` = Σ_s ewm_s (default); ``mean`` = Σ_s ewm_s / n_spans (same ranking
  as sum, scale-free); ``sign_sum`` = Σ_s sign(ewm_s), a vote count in [-n, n] that ignores magnitude (many
  ties, broken by coin name like any other tie).

Why ``adjust=False``: it is a true recursion, so the whole signal is a function of a small per-coin state. The
state after bar t (``SignalState``) is stored beside each window's rows; the next window starts from it, so a
4h update costs O(coins) whatever the history length, and yields bit-identical numbers to a pass over the whole
history (the same kernel runs either way). The EWMA with span 1024 never "converges": it is defined from the
coin's first traded candle, which is why the state is carried rather than recomputed from a fixed window.

History start and gaps: a coin starts at its first candle with volume > 0 (earlier rows are the exchange's
back-fill). A coin with no candle for more than ``MAX_GAP_BARS`` bars (delisted) is dropped; should it trade
again it starts afresh like a new listing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit

MAX_GAP_BARS = 42  # 7 days without a candle: the coin is gone; its state is dropped
COMBINATIONS = {"sum": 0, "mean": 1, "sign_sum": 2}


def pandas_alpha(span: float) -> float:
    """The smoothing factor exactly as pandas computes it for ``span`` (via the centre of mass)."""
    com = (span - 1) / 2.0
    return 1.0 / (1.0 + com)


@dataclass(frozen=True)
class SignalParams:
    spans: tuple[int, ...] = (2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
    vol_span: int = 24
    combination: str = "sum"
    adv_bars: int = 6

    @classmethod
    def from_config(cls, cfg) -> "SignalParams":
        return cls(tuple(cfg.lookback_spans), cfg.vol_span, cfg.signal_combination, cfg.adv_bars)

    def fingerprint(self) -> str:
        """Identifies the state layout: stored state is only reused by a run with the same parameters."""
        spans = ",".join(str(s) for s in self.spans)
        return f"v1|vol{self.vol_span}|spans{spans}|gap{MAX_GAP_BARS}"


@dataclass
class SignalState:
    """Per-coin recursion state after the last processed bar (arrays aligned with ``coins``)."""

    coins: tuple[str, ...]
    n_spans: int
    started: np.ndarray = field(default=None)
    gap: np.ndarray = field(default=None)
    prev_close: np.ndarray = field(default=None)
    vol_mean: np.ndarray = field(default=None)
    vol_cov: np.ndarray = field(default=None)
    vol_sum_wt: np.ndarray = field(default=None)
    vol_sum_wt2: np.ndarray = field(default=None)
    vol_old_wt: np.ndarray = field(default=None)
    vol_nobs: np.ndarray = field(default=None)
    ewm: np.ndarray = field(default=None)

    FLOAT_FIELDS = ("prev_close", "vol_mean", "vol_cov", "vol_sum_wt", "vol_sum_wt2", "vol_old_wt")

    def __post_init__(self):
        n = len(self.coins)
        if self.started is None:
            self.started = np.zeros(n, dtype=np.bool_)
            self.gap = np.zeros(n, dtype=np.int64)
            self.prev_close = np.full(n, np.nan)
            self.vol_mean = np.full(n, np.nan)
            self.vol_cov = np.zeros(n)
            self.vol_sum_wt = np.ones(n)
            self.vol_sum_wt2 = np.ones(n)
            self.vol_old_wt = np.ones(n)
            self.vol_nobs = np.zeros(n, dtype=np.int64)
            self.ewm = np.full((n, self.n_spans), np.nan)

    def copy(self) -> "SignalState":
        return SignalState(
            self.coins, self.n_spans, self.started.copy(), self.gap.copy(),
            *(getattr(self, f).copy() for f in self.FLOAT_FIELDS), self.vol_nobs.copy(), self.ewm.copy(),
        )

    def reindex(self, coins) -> "SignalState":
        """The same state over another coin list (new coins start empty; dropped coins are forgotten)."""
        coins = tuple(coins)
        out = SignalState(coins, self.n_spans)
        pos = {c: i for i, c in enumerate(self.coins)}
        src = np.array([pos.get(c, -1) for c in coins], dtype=np.int64)
        have = src >= 0
        for name in ("started", "gap", "vol_nobs", *self.FLOAT_FIELDS, "ewm"):
            getattr(out, name)[have] = getattr(self, name)[src[have]]
        return out


@dataclass
class SignalResult:
    r: np.ndarray
    sigma: np.ndarray
    z: np.ndarray
    score: np.ndarray
    adv: np.ndarray
    ewm: np.ndarray | None  # [bar, coin, span] when requested (the sweep recombines span subsets)
    state: SignalState
    live: np.ndarray  # [bar, coin] the coin has history at that bar (a row in `returns`)


@njit(cache=True)
def _vol_kernel(
    close, notional, vol_alpha, vol_minp, max_gap,
    started, gap, prev_close, vm, vc, sw, sw2, ow, nobs,
    r_out, sig_out, z_out, live_out,
):
    """r, sigma (pandas ewm std, adjust=False), z; ``live_out`` marks bars where the coin has history."""
    T, N = close.shape
    vfac = 1.0 - vol_alpha
    for t in range(T):
        for i in range(N):
            c = close[t, i]
            has = c == c
            if not started[i]:
                if has and notional[t, i] > 0.0:
                    started[i] = True
                    gap[i] = 0
                    prev_close[i] = np.nan
                    vm[i] = np.nan
                    vc[i] = 0.0
                    sw[i] = 1.0
                    sw2[i] = 1.0
                    ow[i] = 1.0
                    nobs[i] = 0
            elif has:
                gap[i] = 0
            else:
                gap[i] += 1
                if gap[i] > max_gap:
                    started[i] = False
            if not started[i]:
                r_out[t, i] = np.nan
                sig_out[t, i] = np.nan
                z_out[t, i] = np.nan
                live_out[t, i] = False
                continue
            live_out[t, i] = True
            r = np.log(c / prev_close[i])  # NaN if either side is missing
            prev_close[i] = c
            # --- pandas ewmcov(x, x, adjust=False, bias=False), one step ---
            obs = r == r
            if obs:
                nobs[i] += 1
            mean = vm[i]
            if mean == mean:
                sw[i] *= vfac
                sw2[i] *= vfac * vfac
                ow[i] *= vfac
                if obs:
                    old_mean = mean
                    if mean != r:
                        mean = (ow[i] * old_mean + vol_alpha * r) / (ow[i] + vol_alpha)
                    d = old_mean - mean
                    vc[i] = (ow[i] * (vc[i] + d * d) + vol_alpha * ((r - mean) * (r - mean))) / (ow[i] + vol_alpha)
                    sw[i] += vol_alpha
                    sw2[i] += vol_alpha * vol_alpha
                    ow[i] += vol_alpha
                    sw[i] /= ow[i]
                    sw2[i] /= ow[i] * ow[i]
                    ow[i] = 1.0
                    vm[i] = mean
            elif obs:
                vm[i] = r
            sig = np.nan
            if nobs[i] >= vol_minp:
                num = sw[i] * sw[i]
                den = num - sw2[i]
                if den > 0.0:
                    var = (num / den) * vc[i]
                    sig = np.sqrt(var) if var > 0.0 else 0.0
            r_out[t, i] = r
            sig_out[t, i] = sig
            z_out[t, i] = r / sig


@njit(cache=True)
def _ewm_kernel(z, live, alphas, combo, ewm, score_out, ewm_out, store_ewm):
    """EWMA of z (non-finite = 0) per span, pandas ``ewm(span, adjust=False).mean()``, and the score."""
    T, N = z.shape
    S = alphas.shape[0]
    for t in range(T):
        for i in range(N):
            if not live[t, i]:
                for s in range(S):
                    ewm[i, s] = np.nan
                    if store_ewm:
                        ewm_out[t, i, s] = np.nan
                score_out[t, i] = np.nan
                continue
            zz = z[t, i]
            zf = zz if np.isfinite(zz) else 0.0
            acc = 0.0
            for s in range(S):
                e = ewm[i, s]
                if e == e:
                    a = alphas[s]
                    old = 1.0 - a
                    if e != zf:
                        e = (old * e + a * zf) / (old + a)
                else:
                    e = zf
                ewm[i, s] = e
                if store_ewm:
                    ewm_out[t, i, s] = e
                if combo == 2:
                    acc += 1.0 if e > 0.0 else (-1.0 if e < 0.0 else 0.0)
                else:
                    acc += e
            if combo == 1:
                acc /= S
            score_out[t, i] = acc


@njit(cache=True)
def _adv_kernel(notional, adv_bars, prefix):
    """Σ notional over the last ``adv_bars`` bars (missing = 0), summed in a fixed order so that any
    window of the history gives bit-identical values. Rows ``[0, prefix)`` are look-back only."""
    T, N = notional.shape
    out = np.empty((T - prefix, N))
    for t in range(prefix, T):
        for i in range(N):
            acc = 0.0
            for j in range(adv_bars):
                k = t - adv_bars + 1 + j
                if k >= 0:
                    v = notional[k, i]
                    if v == v:
                        acc += v
            out[t - prefix, i] = acc
    return out


def trailing_adv(notional: np.ndarray, adv_bars: int, prefix: int = 0) -> np.ndarray:
    """Trailing ``adv_bars``-bar USD volume known at each bar (including that bar's candle)."""
    return _adv_kernel(np.ascontiguousarray(notional, dtype=np.float64), int(adv_bars), int(prefix))


def compute_signals(
    close: np.ndarray,
    notional: np.ndarray,
    coins,
    params: SignalParams,
    state: SignalState | None = None,
    notional_prefix: np.ndarray | None = None,
    keep_ewm: bool = False,
) -> SignalResult:
    """Run the signal recursion over bars ``close[0..T)`` starting from ``state`` (None: nothing seen yet).

    ``notional_prefix``: up to ``adv_bars - 1`` bars of USD volume before the first bar, so the ADV of the
    first bars of an incremental run equals the full-history value. ``state`` is not modified.
    """
    if params.combination not in COMBINATIONS:
        raise ValueError(f"signal_combination {params.combination!r}: expected one of {sorted(COMBINATIONS)}")
    coins = tuple(coins)
    close = np.ascontiguousarray(close, dtype=np.float64)
    notional = np.ascontiguousarray(notional, dtype=np.float64)
    T, N = close.shape
    if notional.shape != (T, N) or len(coins) != N:
        raise ValueError(f"close {close.shape}, notional {notional.shape} and {len(coins)} coins disagree")
    st = SignalState(coins, len(params.spans)) if state is None else state.reindex(coins)
    r, sig, z, live = vol_step(close, notional, params, st)
    score, ewm = score_step(z, live, params, st, keep_ewm)
    pre = np.empty((0, N))
    if notional_prefix is not None and params.adv_bars > 1:
        pre = np.asarray(notional_prefix, dtype=np.float64).reshape(-1, N)[-(params.adv_bars - 1):]
    adv = trailing_adv(np.vstack([pre, notional]), params.adv_bars, len(pre))
    return SignalResult(r, sig, z, score, adv, ewm, st, live)


def vol_step(close, notional, params: SignalParams, state: SignalState):
    """r, sigma, z, live over the bars; advances ``state`` in place (the `returns` asset's step)."""
    T, N = close.shape
    r, sig, z = np.empty((T, N)), np.empty((T, N)), np.empty((T, N))
    live = np.zeros((T, N), dtype=np.bool_)
    _vol_kernel(
        np.ascontiguousarray(close, dtype=np.float64), np.ascontiguousarray(notional, dtype=np.float64),
        pandas_alpha(params.vol_span), params.vol_span, MAX_GAP_BARS,
        state.started, state.gap, state.prev_close, state.vol_mean, state.vol_cov, state.vol_sum_wt,
        state.vol_sum_wt2, state.vol_old_wt, state.vol_nobs, r, sig, z, live,
    )
    return r, sig, z, live


def score_step(z, live, params: SignalParams, state: SignalState, keep_ewm: bool = False):
    """Score (and optionally the per-span EWMAs) over the bars; advances ``state.ewm`` in place
    (the `momentum_scores` asset's step)."""
    if params.combination not in COMBINATIONS:
        raise ValueError(f"signal_combination {params.combination!r}: expected one of {sorted(COMBINATIONS)}")
    T, N = z.shape
    S = len(params.spans)
    alphas = np.array([pandas_alpha(s) for s in params.spans])
    score = np.empty((T, N))
    ewm_out = np.empty((T, N, S)) if keep_ewm else np.empty((0, 0, 0))
    _ewm_kernel(np.ascontiguousarray(z, dtype=np.float64), np.ascontiguousarray(live), alphas,
                COMBINATIONS[params.combination], state.ewm, score, ewm_out, keep_ewm)
    return score, (ewm_out if keep_ewm else None)


def combine_ewm(ewm: np.ndarray, span_idx, combination: str = "sum") -> np.ndarray:
    """Score from stored per-span EWMAs for a subset of spans (the sweep's span subsets); same order of
    summation as the kernel so the full set reproduces the kernel's score exactly."""
    idx = list(span_idx)
    acc = np.zeros(ewm.shape[:2])
    for s in idx:
        e = ewm[:, :, s]
        acc = acc + (np.sign(e) if combination == "sign_sum" else e)
    if combination == "mean":
        acc = acc / len(idx)
    return acc
