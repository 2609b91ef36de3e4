"""An independent, plain-pandas/numpy re-implementation of the strategy and the backtest, written from the
README's "Strategy rules" section — it imports nothing from `gradient_pipeline.core` (and must not: it exists
to catch errors the core's own kernels would share with any test built on them).

Deliberately naive: frames and per-bar Python loops, names sorted with Python tuples, the water-filling as the
README states it. Slow (seconds on the full history) and meant to be obviously right, not fast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

BAR = pd.Timedelta(hours=4)
BARS_PER_YEAR = 2190
MIN_WEIGHT = 1e-4


@dataclass(frozen=True)
class RefParams:
    spans: tuple = (2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
    vol_span: int = 24
    adv_bars: int = 6
    concentration_pct: float = 35.0
    side_gross: float = 0.35
    cap: float = 0.10
    max_leverage: float = 2.0
    weight_scheme: str = "inverse_vol"
    liquidity_threshold_usd: float = 10_000.0
    liquidity_impact_pct: float = 2.5
    rebalance_hours: int = 4
    band: float = 0.0
    smoothing: float = 1.0
    vol_target: bool = False
    target_vol: float = 0.20
    max_scale: float = 1.0
    taker_fee_bps: float = 4.5
    slippage_base_bps: float = 1.0
    slippage_impact_coef: float = 0.02
    capital_usd: float = 5000.0


def wide(candles: pd.DataFrame, funding: pd.DataFrame):
    """Long freqtrade frames → (close, notional, funding) frames on the 4h grid, columns sorted by coin name."""
    close = candles.pivot(index="ts", columns="coin", values="close")
    close = close.reindex(pd.date_range(close.index.min(), close.index.max(), freq="4h"))
    close = close[sorted(close.columns)]
    notional = (candles.assign(n=candles["volume"] * candles["close"])
                .pivot(index="ts", columns="coin", values="n").reindex(index=close.index, columns=close.columns))
    f = funding[funding["coin"].isin(close.columns)].copy()
    # the rate paid at hour h is for holding over (h − 1h, h]: it belongs to the bar that contains that hour
    f["bar"] = (pd.DatetimeIndex(f["ts"]).floor("h") - pd.Timedelta(hours=1)).floor("4h")
    fund = f.groupby(["bar", "coin"])["rate"].sum().unstack().reindex(index=close.index, columns=close.columns)
    return close, notional, fund.fillna(0.0)


def signals(close: pd.DataFrame, notional: pd.DataFrame, p: RefParams):
    """README: r = log return from each coin's first traded candle; sigma = EWMA std (span vol_span, pandas
    adjust=False, bias-corrected); z = r/sigma (non-finite → 0); score = Σ_span EWMA_span(z); ADV = Σ notional
    of the last adv_bars bars."""
    started = (notional > 0).cummax()
    c = close.where(started)
    r = np.log(c / c.shift(1))
    sigma = r.ewm(span=p.vol_span, adjust=False, min_periods=p.vol_span).std()
    z = (r / sigma).replace([np.inf, -np.inf], np.nan).fillna(0.0).where(started)
    score = sum(z.ewm(span=s, adjust=False).mean() for s in p.spans)
    adv = notional.fillna(0.0).rolling(p.adv_bars, min_periods=1).sum()
    return r, sigma, score, adv


def water_fill(raw: dict, gross: float, cap: float) -> dict:
    """Weights ∝ raw summing to ``gross`` with none above ``cap``: names over the cap are pinned at it and the
    rest re-share what is left, until nobody is over. If the cap makes ``gross`` unreachable, all at the cap."""
    if len(raw) * cap <= gross * (1 + 1e-12):
        return {c: cap for c in raw}
    pinned: set = set()
    while True:
        free = {c: v for c, v in raw.items() if c not in pinned}
        left = gross - cap * len(pinned)
        total = sum(free.values())
        w = {c: left * v / total for c, v in free.items()}
        over = [c for c, v in w.items() if v > cap * (1 + 1e-12)]
        if not over:
            w.update({c: cap for c in pinned})
            return w
        pinned.update(over)


def target_book(t, coins, eligible_row, score_row, sigma_row, r_frame, p: RefParams) -> dict:
    """The target weights of bar t (rank, select, weight, cap, optional vol target) as {coin: weight}."""
    names = [c for c in coins if eligible_row[c]]
    names.sort(key=lambda c: (-score_row[c], c))  # best first; ties by coin name A→Z
    n = len(names)
    k = min(math.ceil(n * p.concentration_pct / 100 - 1e-9), n // 2) if n >= 2 else 0
    if k == 0:
        return {}
    book = {}
    for side, sign in ((names[:k], 1.0), (names[n - k:], -1.0)):
        raw = {c: (1.0 / sigma_row[c] if p.weight_scheme == "inverse_vol" else 1.0) for c in side}
        book.update({c: sign * w for c, w in water_fill(raw, p.side_gross, p.cap).items()})
    if p.vol_target:
        rows = r_frame.iloc[max(0, t - p.vol_span + 1): t + 1][list(book)].fillna(0.0)
        hyp = rows.to_numpy() @ np.array(list(book.values()))
        forecast = math.sqrt(float((hyp ** 2).sum()) / p.vol_span * BARS_PER_YEAR)
        scale = p.max_scale if forecast <= 0 else min(p.max_scale, p.target_vol / forecast)
        scale = min(scale, p.cap / max(abs(v) for v in book.values()))
        scale = min(scale, p.max_leverage / sum(abs(v) for v in book.values()))
        book = {c: v * scale for c, v in book.items()}
    return book


def step(target: float, held: float, p: RefParams) -> float:
    """README turnover controls for one coin on a rebalance bar."""
    if held != 0 and target != 0 and (held > 0) == (target > 0) and abs(target - held) < p.band:
        return held
    new = p.smoothing * target + (1 - p.smoothing) * held if p.smoothing < 1 else target
    if abs(target - new) < (p.band if target != 0 else max(p.band, MIN_WEIGHT)):
        new = target
    return new


def weights(close, notional, p: RefParams, start=None) -> tuple[pd.DataFrame, tuple]:
    r, sigma, score, adv = signals(close, notional, p)
    eligible = (close.notna() & score.notna() & (sigma > 0)
                & (p.liquidity_threshold_usd < p.liquidity_impact_pct / 100 * adv))
    coins = list(close.columns)
    times = close.index if start is None else close.index[close.index >= pd.Timestamp(start)]
    first = close.index.get_loc(times[0])
    held = dict.fromkeys(coins, 0.0)
    out = np.zeros((len(times), len(coins)))
    el_np, score_np, sigma_np = eligible.to_numpy(), score.to_numpy(), sigma.to_numpy()
    for j, ts in enumerate(times):
        t = first + j
        el = dict(zip(coins, el_np[t].tolist()))
        new = dict(held)
        end_hour = int((ts + BAR).value // 3_600_000_000_000)
        if end_hour % p.rebalance_hours == 0:
            book = target_book(t, coins, el, dict(zip(coins, score_np[t])), dict(zip(coins, sigma_np[t])), r, p)
            new = {c: step(book.get(c, 0.0), held[c], p) for c in coins}
        for c in coins:
            if not el[c] or (p.smoothing < 1 and abs(new[c]) < MIN_WEIGHT):
                new[c] = 0.0
        gross = sum(abs(v) for v in new.values())
        if gross > p.max_leverage:
            new = {c: v * p.max_leverage / gross for c, v in new.items()}
        out[j] = [new[c] for c in coins]
        held = new
    return pd.DataFrame(out, index=times, columns=coins), (r, sigma, score, adv)


def backtest(w: pd.DataFrame, close: pd.DataFrame, funding: pd.DataFrame, adv: pd.DataFrame, p: RefParams) -> pd.Series:
    """README accounting: positions (in units of starting capital) earn the bar's simple return and pay its
    funding, then are traded to weight × equity; traded notional pays the taker fee and
    base + coef·1e4·sqrt(min(1, trade_usd/ADV)) bp of slippage. Returns the net return of every bar."""
    c = close.loc[w.index].to_numpy()
    prev_c = close.shift(1).loc[w.index].to_numpy()
    fu = funding.loc[w.index].to_numpy()
    a = adv.loc[w.index].to_numpy()
    eq = 1.0
    pos = np.zeros(w.shape[1])
    net = np.zeros(len(w))
    for t in range(len(w)):
        ok = np.isfinite(c[t]) & np.isfinite(prev_c[t]) & (prev_c[t] > 0) if t else np.zeros(w.shape[1], bool)
        ret = np.where(ok, c[t] / np.where(ok, prev_c[t], 1.0) - 1.0, 0.0)
        pnl = float((pos * ret).sum()) - float((pos * fu[t]).sum())
        pos = pos * (1 + ret)
        mid = eq + pnl
        tgt = w.iloc[t].to_numpy() * mid
        d = np.abs(tgt - pos)
        ratio = np.where((a[t] > 0) & np.isfinite(a[t]), np.minimum(1.0, d * p.capital_usd / np.where(a[t] > 0, a[t], 1)), 1.0)
        bps = p.slippage_base_bps + p.slippage_impact_coef * 1e4 * np.sqrt(ratio)
        cost = float(d.sum()) * p.taker_fee_bps / 1e4 + float((d * bps).sum()) / 1e4
        pos = tgt
        new_eq = mid - cost
        net[t] = new_eq / eq - 1
        eq = new_eq
    return pd.Series(net, index=w.index)
