"""The sweep's selection statistics: in-sample / out-of-sample metrics per configuration, per-period Sharpes,
the walk-forward re-pick, and the overfitting report (rank correlation, phase spread, deflated Sharpe, PBO)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from gradient_pipeline.core.overfit import deflated_sharpe, pbo_cscv, per_bar_sharpe
from gradient_pipeline.core.portfolio import BARS_PER_YEAR

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


def _config_metrics(out: np.ndarray, k_split: int) -> list[dict]:
    """In-sample / out-of-sample summary of each configuration's per-bar fields ``out[config, bar, field]``
    (see `SweepResult.table`): `_stats` and the max drawdown row-wise over all configurations at once."""
    C, T = out.shape[:2]
    cols: dict[str, np.ndarray] = {}
    for tag, sl in (("is", slice(1, k_split)), ("oos", slice(max(k_split, 1), T))):
        n = np.ascontiguousarray(out[:, sl, 4])
        g = np.ascontiguousarray(out[:, sl, 0])
        gf = g - out[:, sl, 1]  # gross after funding (before fees and slippage)
        L = n.shape[1]
        nan = np.full(C, np.nan)
        if L >= 2:
            sd, sd_g = np.std(n, axis=1, ddof=1), np.std(g, axis=1, ddof=1)
            growth = np.prod(1.0 + n, axis=1)
            years = L / BARS_PER_YEAR
            with np.errstate(invalid="ignore", divide="ignore"):
                ann = np.where(growth > 0, np.abs(growth) ** (1 / years) - 1, -1.0)
                sh = np.where(sd > 0, np.mean(n, axis=1) / sd * math.sqrt(BARS_PER_YEAR), np.nan)
                sh_g = np.where(sd_g > 0, np.mean(g, axis=1) / sd_g * math.sqrt(BARS_PER_YEAR), np.nan)
                sd_gf = np.std(gf, axis=1, ddof=1)
                sh_gf = np.where(sd_gf > 0, np.mean(gf, axis=1) / sd_gf * math.sqrt(BARS_PER_YEAR), np.nan)
            vol = sd * math.sqrt(BARS_PER_YEAR)
        else:
            sh = ann = vol = sh_g = sh_gf = nan
        if L:
            eq = np.cumprod(1.0 + n, axis=1)
            dd = (eq / np.maximum.accumulate(np.maximum(eq, 1.0), axis=1) - 1.0).min(axis=1)
            turnover = out[:, sl, 5].mean(axis=1)
            avg_gross = out[:, sl, 7].mean(axis=1)
        else:
            dd = turnover = avg_gross = nan
        cols.update({
            f"{tag}_sharpe": sh, f"{tag}_annual_return": ann, f"{tag}_annual_vol": vol, f"{tag}_sharpe_gross": sh_g,
            f"{tag}_sharpe_gross_after_funding": sh_gf, f"{tag}_avg_gross_exposure": avg_gross,
            f"{tag}_max_drawdown": dd, f"{tag}_turnover": turnover, f"{tag}_fees": out[:, sl, 2].sum(axis=1),
            f"{tag}_funding": out[:, sl, 1].sum(axis=1), f"{tag}_slippage": out[:, sl, 3].sum(axis=1),
        })
    return [{k: float(v[c]) for k, v in cols.items()} for c in range(C)]


def _period_sharpes(net_all: np.ndarray, times, k_split: int) -> pd.DataFrame:
    """Annualised net Sharpe of every configuration per calendar half-year (``h_2024H1``) and per
    out-of-sample calendar quarter (``q_2025Q1``); periods shorter than 30 bars are left out."""
    t = pd.DatetimeIndex(times)
    cols = {}
    half = t.year.astype(str) + "H" + np.where(t.month <= 6, "1", "2")
    for label in pd.unique(half):
        sel = np.flatnonzero(half == label)
        sel = sel[sel >= 1]
        if len(sel) >= 30:
            cols[f"h_{label}_sharpe"] = _row_sharpe(net_all[:, sel])
    quarter = t.year.astype(str) + "Q" + ((t.month - 1) // 3 + 1).astype(str)
    for label in pd.unique(quarter[k_split:]):
        sel = np.flatnonzero(quarter == label)
        sel = sel[sel >= k_split]
        if len(sel) >= 30:
            cols[f"q_{label}_sharpe"] = _row_sharpe(net_all[:, sel])
    return pd.DataFrame(cols)


def _row_sharpe(x: np.ndarray) -> np.ndarray:
    sd = np.std(x, axis=1, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sd > 0, x.mean(1) / np.where(sd > 0, sd, 1) * math.sqrt(BARS_PER_YEAR), np.nan)


def _spearman(a: pd.Series, b: pd.Series) -> float:
    """Spearman rank correlation (Pearson on average ranks; pandas' own needs scipy)."""
    ok = a.notna() & b.notna()
    return float(a[ok].rank().corr(b[ok].rank())) if ok.sum() > 2 else float("nan")


def overfit_report(res) -> dict:
    """Selection diagnostics: IS/OOS Spearman rank correlation (net, gross), the winner's phase spread, its
    deflated Sharpe ratio over all configurations tried, and the PBO of picking the best in-sample net Sharpe.
    ``res``: a `sweep.SweepResult` (its table, per-bar net returns, times and split)."""
    t = res.table
    k = int(res.times.searchsorted(res.split))
    w = res.winner()
    base = ["span_set", "concentration_pct", "rebalance_hours", "weight_scheme", "band_pct", "smoothing"]
    same = t
    for c in base:
        same = same[same[c] == w[c]]
    is_net = res.net[:, 1:k]
    rep = {
        "n_configs": int(len(t)),
        "spearman_is_oos_net": _spearman(t["is_sharpe"], t["oos_sharpe"]),
        "spearman_is_oos_gross": _spearman(t["is_sharpe_gross"], t["oos_sharpe_gross"]),
        "winner_config_id": int(w.config_id),
        "winner_phases": int(len(same)),
        "winner_phase_is_mean": float(same["is_sharpe"].mean()),
        "winner_phase_is_std": float(same["is_sharpe"].std(ddof=0)),
        "winner_phase_oos_mean": float(same["oos_sharpe"].mean()),
        "winner_phase_oos_std": float(same["oos_sharpe"].std(ddof=0)),
        "winner_phase_oos_min": float(same["oos_sharpe"].min()),
        "winner_phase_oos_max": float(same["oos_sharpe"].max()),
    }
    if is_net.shape[1] >= 3:
        d = deflated_sharpe(res.net[int(w.config_id), 1:k], per_bar_sharpe(is_net))
        rep.update({f"dsr_{key}" if key != "dsr" else "dsr": v for key, v in d.items()})
    if res.net.shape[1] > 48:
        p = pbo_cscv(res.net[:, 1:], blocks=12)
        rep.update({"pbo": p["pbo"], "pbo_splits": p["splits"], "pbo_median_logit": p["median_logit"]})
    oos_ok = w.oos_sharpe > 0
    rep["reliable_net_edge"] = bool(rep.get("dsr", 0) >= 0.95 and rep.get("pbo", 1) < 0.5 and oos_ok)
    return rep


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
