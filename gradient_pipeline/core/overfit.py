"""How much of a sweep's best result is selection luck: deflated Sharpe ratio and PBO (CSCV). Pure numpy.

* **Deflated Sharpe ratio** (Bailey & López de Prado, 2014): the probability that the selected configuration's
  true Sharpe is above zero once we account for having picked the best of ``n_trials``, for the length of its
  track record and for the skew and kurtosis of its returns. The benchmark is the Sharpe the best of
  ``n_trials`` independent zero-edge strategies would show by luck::

      SR* = sqrt(V) · ((1 − γ) Φ⁻¹(1 − 1/N) + γ Φ⁻¹(1 − 1/(N e)))          (γ = Euler–Mascheroni)
      DSR = Φ((SR − SR*) · sqrt(T − 1) / sqrt(1 − skew · SR + (kurt − 1)/4 · SR²))

  with every Sharpe per bar (not annualised), V = variance of the trials' per-bar Sharpes, T = bars.
  DSR ≥ 0.95 is the usual bar for "not explained by the search".
* **Probability of backtest overfitting** (Bailey, Borwein, López de Prado & Zhu, 2017, combinatorially
  symmetric cross-validation): cut the bars into ``S`` blocks; for every way of choosing half the blocks as
  "in-sample", pick the configuration with the best in-sample Sharpe and find its relative rank ω among all
  configurations on the other half. PBO = the share of splits where the pick ranks in the bottom half
  (logit(ω) ≤ 0). 0.5 is what pure noise gives; a real, stable edge gives PBO near 0.
"""

from __future__ import annotations

import itertools
import math
from statistics import NormalDist

import numpy as np

EULER_GAMMA = 0.5772156649015329
_N = NormalDist()


def per_bar_sharpe(x: np.ndarray) -> np.ndarray:
    """Mean / std (ddof 1) along the last axis; NaN where the std is 0."""
    sd = np.std(x, axis=-1, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sd > 0, np.mean(x, axis=-1) / np.where(sd > 0, sd, 1.0), np.nan)


def expected_max_sharpe(n_trials: int, var_sharpe: float) -> float:
    """SR*: the per-bar Sharpe the best of ``n_trials`` zero-edge trials reaches by luck."""
    if n_trials < 2 or not var_sharpe > 0:
        return 0.0
    n = float(n_trials)
    return math.sqrt(var_sharpe) * ((1 - EULER_GAMMA) * _N.inv_cdf(1 - 1 / n) + EULER_GAMMA * _N.inv_cdf(1 - 1 / (n * math.e)))


def deflated_sharpe(returns: np.ndarray, trial_sharpes: np.ndarray) -> dict:
    """DSR of the selected track ``returns`` (per bar) given every trial's per-bar Sharpe (incl. its own)."""
    r = np.asarray(returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    trials = np.asarray(trial_sharpes, dtype=np.float64)
    trials = trials[np.isfinite(trials)]
    T = len(r)
    if T < 3 or np.std(r) == 0:
        return {"dsr": float("nan"), "sr": float("nan"), "sr_star": float("nan"), "n_trials": int(len(trials)), "bars": T}
    sr = float(per_bar_sharpe(r))
    z = (r - r.mean()) / r.std()
    skew = float(np.mean(z ** 3))
    kurt = float(np.mean(z ** 4))
    sr0 = expected_max_sharpe(len(trials), float(np.var(trials, ddof=1)) if len(trials) > 1 else 0.0)
    denom = 1 - skew * sr + (kurt - 1) / 4 * sr ** 2
    dsr = _N.cdf((sr - sr0) * math.sqrt(T - 1) / math.sqrt(denom)) if denom > 0 else float("nan")
    return {"dsr": float(dsr), "sr": sr, "sr_star": sr0, "n_trials": int(len(trials)), "bars": T, "skew": skew,
            "kurtosis": kurt}


def pbo_cscv(returns: np.ndarray, blocks: int = 12) -> dict:
    """PBO of choosing the best in-sample Sharpe among configurations ``returns[config, bar]`` (CSCV)."""
    R = np.asarray(returns, dtype=np.float64)
    C, T = R.shape
    if blocks % 2 or blocks < 2:
        raise ValueError(f"blocks must be even and ≥ 2, got {blocks}")
    if C < 2 or T < 2 * blocks:
        return {"pbo": float("nan"), "splits": 0, "blocks": blocks, "median_logit": float("nan")}
    edges = np.linspace(0, T, blocks + 1).astype(int)
    # per block: count, Σx, Σx² for every configuration → any union of blocks' Sharpe without re-reading bars
    n = np.diff(edges).astype(np.float64)
    s1 = np.stack([R[:, a:b].sum(1) for a, b in zip(edges[:-1], edges[1:])], axis=1)
    s2 = np.stack([(R[:, a:b] ** 2).sum(1) for a, b in zip(edges[:-1], edges[1:])], axis=1)

    def sharpe(mask):
        cnt = n[mask].sum()
        m = s1[:, mask].sum(1) / cnt
        var = (s2[:, mask].sum(1) - cnt * m ** 2) / (cnt - 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(var > 0, m / np.sqrt(np.maximum(var, 1e-300)), -np.inf)

    logits = []
    for train in itertools.combinations(range(blocks), blocks // 2):
        mask = np.zeros(blocks, dtype=bool)
        mask[list(train)] = True
        is_sr, oos_sr = sharpe(mask), sharpe(~mask)
        best = int(np.argmax(is_sr))
        rank = float((oos_sr < oos_sr[best]).sum() + 0.5 * ((oos_sr == oos_sr[best]).sum() - 1) + 1)
        w = rank / (C + 1)
        logits.append(math.log(w / (1 - w)))
    lg = np.array(logits)
    return {"pbo": float((lg <= 0).mean()), "splits": len(lg), "blocks": blocks, "median_logit": float(np.median(lg))}
