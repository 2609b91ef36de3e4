"""One window (or a range of windows) of each strategy asset, computed from DuckDB (Dagster-free).

Each function reads only what the windows ``[start, end)`` need — the new candles (plus ``adv_bars − 1``
earlier bars for the ADV), and the stored state of the bar before ``start`` — runs the same core kernels as
the backtest, bar by bar, and returns the rows to write. When the previous bar's state is missing (first run,
or the parameters changed) the state is rebuilt once from every stored candle before ``start``: the same
recursion over the same candles, so the numbers are identical to an uninterrupted chain of windows.

Point in time: window ``t`` only reads candles with open time <= t (closed by t + 4h) and state computed from
earlier windows, so rematerialising it gives the same rows whatever arrived later.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gradient_pipeline.core.panel import long_to_wide, panel_from_frames
from gradient_pipeline.core.portfolio import INFO_FIELDS, PortfolioParams, check_weights, rank_order, target_path
from gradient_pipeline.core.signals import SignalParams, SignalState, score_step, trailing_adv, vol_step
from gradient_pipeline.core.strategy import targets_long
from gradient_pipeline.signals import tables
from gradient_pipeline.marketdata import tables as market
from gradient_pipeline.timegrid import BAR, bar_range, now_utc, utc_naive


class TargetInvariantError(ValueError):
    """Computed target weights break an invariant; nothing is written (message names window, coin, rule)."""


class MissingHistoryError(RuntimeError):
    """A path-dependent configuration needs the previous window's targets, and they are not stored."""


@dataclass
class StepOutput:
    rows: pd.DataFrame
    windows: pd.DataFrame  # marker / per-window summary rows
    bootstrapped: bool
    extra: dict


def _bootstrap_state(conn, start, params: SignalParams, with_scores: bool) -> SignalState:
    """State after bar ``start − 4h`` from every stored candle before ``start`` (one-off; see module doc)."""
    hist = market.read_candles(conn, end=start)
    st = SignalState((), len(params.spans))
    if hist.empty:
        return st
    p = panel_from_frames(hist, end=start)
    st = SignalState(p.coins, len(params.spans))
    _, _, z, live = vol_step(p.close, p.notional, params, st)
    if with_scores:
        score_step(z, live, params, st)
    return st


def returns_step(conn, start, end, params: SignalParams) -> StepOutput:
    start, end = utc_naive(start), utc_naive(end)
    key = params.fingerprint()
    st = tables.load_vol_state(conn, start - BAR, key, len(params.spans))
    boot = st is None
    if boot:
        st = _bootstrap_state(conn, start, params, with_scores=False)
    pre = params.adv_bars - 1
    lo = start - pre * BAR
    c = market.read_candles(conn, start=lo, end=end)
    times = bar_range(lo, end)
    coins = tuple(sorted(set(st.coins) | set(c["coin"])))
    st = st.reindex(coins)
    close = long_to_wide(c, "close", times, coins)
    notional = long_to_wide(c, "notional_usd", times, coins)
    adv = trailing_adv(notional, params.adv_bars, pre)
    close, notional = close[pre:], notional[pre:]
    bars = times[pre:]
    T, N = close.shape
    out = {k: np.full((T, N), np.nan) for k in ("r", "sigma", "z", *_ST_FLOAT)}
    gap, nobs, live = np.zeros((T, N), np.int32), np.zeros((T, N), np.int32), np.zeros((T, N), bool)
    for t in range(T):  # bar by bar: the state after every bar is stored (any window can be continued)
        r, sig, z, lv = vol_step(close[t:t + 1], notional[t:t + 1], params, st)
        out["r"][t], out["sigma"][t], out["z"][t], live[t] = r[0], sig[0], z[0], lv[0]
        for col, attr in _ST_FLOAT.items():
            out[col][t] = getattr(st, attr)
        gap[t], nobs[t] = st.gap, st.vol_nobs
    ti, ci = np.nonzero(live)
    z = out["z"][ti, ci]
    rows = pd.DataFrame({
        "ts": bars[ti].astype("datetime64[ns]"), "coin": np.asarray(coins, dtype=object)[ci],
        "r": out["r"][ti, ci], "sigma": out["sigma"][ti, ci], "z": np.where(np.isfinite(z), z, np.nan),
        "adv_usd": adv[ti, ci], "has_candle": np.isfinite(close[ti, ci]), "st_gap": gap[ti, ci],
        **{col: out[col][ti, ci] for col in _ST_FLOAT}, "st_vol_nobs": nobs[ti, ci], "signal_key": key,
    })
    last = rows[rows.ts == bars[-1]] if T else rows
    return StepOutput(rows[tables.RETURNS_COLUMNS], _markers("returns", bars, rows, key), boot,
                      {"coins_with_sigma": int(last["sigma"].notna().sum())})


_ST_FLOAT = {"st_prev_close": "prev_close", "st_vol_mean": "vol_mean", "st_vol_cov": "vol_cov",
             "st_vol_sum_wt": "vol_sum_wt", "st_vol_sum_wt2": "vol_sum_wt2", "st_vol_old_wt": "vol_old_wt"}


def scores_step(conn, start, end, params: SignalParams) -> StepOutput:
    start, end = utc_naive(start), utc_naive(end)
    key = params.fingerprint()
    st = tables.load_ewm_state(conn, start - BAR, key, len(params.spans))
    boot = st is None
    if boot:
        st = _bootstrap_state(conn, start, params, with_scores=True)
    ret = tables.read_returns(conn, start, end)
    bars = bar_range(start, end)
    coins = tuple(sorted(set(st.coins) | set(ret["coin"])))
    st = st.reindex(coins)
    z = long_to_wide(ret, "z", bars, coins)
    live = ~np.isnan(long_to_wide(ret.assign(one=1.0), "one", bars, coins))
    T, N = z.shape
    score = np.full((T, N), np.nan)
    ewm = np.full((T, N, len(params.spans)), np.nan)
    for t in range(T):  # bar by bar: the EWMA state after every bar is stored
        score[t] = score_step(z[t:t + 1], live[t:t + 1], params, st)[0][0]
        ewm[t] = st.ewm
    ok = np.isfinite(score)
    order, m = rank_order(score, ok)
    rank = np.zeros((T, N), np.int32)
    rr, pos = np.nonzero(np.arange(N)[None, :] < m[:, None])
    rank[rr, order[rr, pos]] = pos + 1
    ti, ci = np.nonzero(ok)
    rows = pd.DataFrame({
        "ts": bars[ti].astype("datetime64[ns]"), "coin": np.asarray(coins, dtype=object)[ci],
        "score": score[ti, ci], "rank": rank[ti, ci], "ewm": list(ewm[ti, ci]), "signal_key": key,
    })
    return StepOutput(rows[tables.SCORES_COLUMNS], _markers("momentum_scores", bars, rows, key), boot, {})


def _markers(asset, bars, rows, key) -> pd.DataFrame:
    counts = rows.groupby("ts").size() if len(rows) else pd.Series(dtype=int)
    return pd.DataFrame({
        "asset": asset, "ts": pd.DatetimeIndex(bars).astype("datetime64[ns]"), "signal_key": key,
        "n_rows": [int(counts.get(b, 0)) for b in bars], "computed_at": now_utc(),
    })


def config_key(sp: SignalParams, pp: PortfolioParams) -> str:
    return f"{sp.fingerprint()}|{sp.combination}|adv{sp.adv_bars}|{pp!r}"


def targets_step(conn, start, end, sp: SignalParams, pp: PortfolioParams, inception) -> StepOutput:
    """Target weights for the windows; starts from the stored targets of the window before ``start``
    (flat at ``inception``, or for a configuration without path dependence)."""
    start, end, inception = utc_naive(start), utc_naive(end), utc_naive(inception)
    ckey = config_key(sp, pp)
    prev_row = tables.target_window(conn, start - BAR)
    if prev_row is not None and prev_row["config_key"] == ckey:
        prev = tables.read_targets(conn, start - BAR, start)
    elif start <= inception or not pp.path_dependent:
        prev = pd.DataFrame(columns=["coin", "weight"])
    else:
        why = "was computed with other parameters" if prev_row is not None else "is not stored"
        raise MissingHistoryError(
            f"target_weights for window {start - BAR} {why}; this configuration (band/smoothing/rebalance "
            f"interval) depends on the previous window: materialise target_weights from {inception} (or the first "
            f"missing window) onwards in one range"
        )
    L = pp.vol_window
    bars = bar_range(start, end)
    ret = tables.read_returns(conn, start - (L - 1) * BAR, end)
    sc = tables.read_scores(conn, start, end)
    uni = market.read_universe(conn, start, end) if _has(conn, "universe") else pd.DataFrame(columns=["ts", "coin", "is_delisted"])
    coins = tuple(sorted(set(sc["coin"]) | set(prev["coin"]) | set(ret.loc[ret.ts >= start, "coin"])))
    hist_times = bar_range(start - (L - 1) * BAR, end)
    r_hist = long_to_wide(ret, "r", hist_times, coins)
    cur = ret[ret.ts >= start]
    sigma = long_to_wide(cur, "sigma", bars, coins)
    adv = long_to_wide(cur, "adv_usd", bars, coins)
    close = long_to_wide(cur[cur.has_candle.astype(bool)].assign(one=1.0), "one", bars, coins)
    score = long_to_wide(sc, "score", bars, coins)
    delisted = long_to_wide(uni[uni.is_delisted.astype(bool)].assign(one=1.0), "one", bars, coins) == 1.0
    p0 = np.zeros(len(coins))
    if len(prev):
        pos = {c: i for i, c in enumerate(coins)}
        p0[[pos[c] for c in prev["coin"]]] = prev["weight"].to_numpy(np.float64)
    res = target_path(bars, score, sigma, adv, close, delisted, pp, p0, r_hist)
    problems = []
    for t in range(len(bars)):
        problems += check_weights(res.weights[t], res.eligible[t], res.info[t], pp, coins, bars[t] + BAR)
    if problems:
        raise TargetInvariantError("target weights failed validation (nothing written): " + "; ".join(problems[:10]))
    rows = targets_long(bars, coins, res.weights, score, sigma, adv, res.rank)
    w_prev = np.vstack([p0, res.weights[:-1]]) if len(bars) else np.zeros((0, len(coins)))
    info = res.info_frame(bars)
    windows = pd.DataFrame({
        "rebalance_time": (bars + BAR).astype("datetime64[ns]"), "ts": bars.astype("datetime64[ns]"),
        "is_rebalance": info["is_rebalance"].to_numpy() > 0, "n_eligible": info["n_eligible"].astype(int).to_numpy(),
        "k": info["k"].astype(int).to_numpy(), "n_long": info["n_long"].astype(int).to_numpy(),
        "n_short": info["n_short"].astype(int).to_numpy(), "long_gross": info["long_gross"].to_numpy(),
        "short_gross": info["short_gross"].to_numpy(), "net": res.weights.sum(1),
        "turnover": np.abs(res.weights - w_prev).sum(1), "n_capped": info["n_capped"].astype(int).to_numpy(),
        "shrunk": info["shrunk"].to_numpy() > 0, "vol_scale": info["vol_scale"].to_numpy(), "config_key": ckey,
        "computed_at": now_utc(),
    })
    return StepOutput(rows, windows[tables.TARGET_WINDOW_COLUMNS], False,
                      {"weights": res.weights, "coins": coins, "info": info, "prev": p0})


def _has(conn, table: str) -> bool:
    from gradient_pipeline.storage.db import table_exists

    return table_exists(conn, table)


__all__ = ["returns_step", "scores_step", "targets_step", "TargetInvariantError", "MissingHistoryError", "INFO_FIELDS"]
