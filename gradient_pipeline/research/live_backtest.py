"""The as-live backtest: the strategy's weights traded bar by bar through the code the live rebalance runs.

`core.backtest.run_backtest` answers "what does the strategy earn" (every weight change traded exactly, costs
from a formula). This module answers "what would the live system have done": at every 4h bar it

1. marks the book (positions in base units) to the bar's close and pays the bar's funding;
2. applies the **drawdown stop** (`emergency_stop_drawdown_pct` from the equity peak, checked at each bar
   close; `backtest.drawdown_stop: false` turns it off): flatten everything and stay halted for the rest of
   the run, as live does until an operator resumes;
3. plans the orders with **`execution.planner.plan_orders`** — the live planner: sizes = weight × account
   value at the rebalance (what the execution runner passes; ``capital_usd`` is the starting account) / price floored to the lot size (the local exchange's ``instrument_for``), the $10 minimum
   plus buffer for opening/increasing orders, dust targets flat, reduce-only closes allowed below $10;
4. checks the plan with **`core.risk.check_plan`** — the live pre-trade risk check (per-order ADV limit
   ``risk.max_order_adv_pct``, ``max_order_notional_usd``, position cap, side gross, leverage, net exposure
   band): a refused plan trades nothing that bar; with ``risk.breach_action: scale`` the book is scaled and
   re-planned exactly as the execution job does (a second scale refuses);
5. fills each order at most up to ``backtest.participation_cap_pct`` % of the coin's USD volume in the bar
   (the rest stays unfilled: a capacity limit), at
   * ``taker`` (IOC): the close ± (``slippage_base_bps`` + ``impact_y`` · σ_daily(coin) · 1e4 · sqrt(order/ADV))
     plus the taker fee — impact from the coin's own volatility (σ_daily = the strategy's 4h σ × √6);
   * ``passive_first``: a post-only order at the touch (close ∓ ``slippage_base_bps``), filled at that price
     with the maker fee only if a 1h candle within ``backtest.passive_wait_hours`` after the decision trades
     through it (low < bid for a buy, high > ask for a sell); otherwise it crosses as IOC at the close of the
     last waited hour, paying the taker fee, spread and impact (the price drift meanwhile is part of its cost).

Eligibility uses the liquidity threshold the configured capital implies (`PortfolioParams.from_config`).
Costs are charged against the decision price (the bar's close): ``shortfall_bps`` = Σ(fees + price paid
beyond the close) / Σ traded notional. Per-bar fields are `core.backtest.BAR_FIELDS` (fractions of the
previous bar's equity) plus the counters in `EXTRA_FIELDS`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gradient_pipeline.core.backtest import BAR_FIELDS, metrics
from gradient_pipeline.core.panel import Panel
from gradient_pipeline.core.risk import check_plan, scale_targets
from gradient_pipeline.core.strategy import StrategyParams, run_strategy
from gradient_pipeline.execution.planner import PlanParams, plan_orders
from gradient_pipeline.localexchange.market import instrument_for
from gradient_pipeline.timegrid import BAR, utc_naive
from gradient_pipeline.venue.model import InstrumentSpec

EXTRA_FIELDS = ("n_orders", "n_skipped_small", "skipped_small_usd", "refused", "scale", "clipped_usd",
                "maker_usd", "taker_usd", "halted")


@dataclass(frozen=True)
class HourlyPrices:
    """1h candles aligned to a panel's coins: ``[hour, coin]`` arrays, NaN where no candle."""

    times: pd.DatetimeIndex
    low: np.ndarray
    high: np.ndarray
    close: np.ndarray


def load_hourly(directory, coins, start=None, end=None) -> HourlyPrices:
    """The 1h freqtrade candles of ``coins`` (for the passive-fill model)."""
    from gradient_pipeline.marketdata.freqtrade import load_candles

    c = load_candles(Path(directory), coins=list(coins), start=start, end=end, timeframe="1h")
    if c.empty:
        raise ValueError(f"no 1h candles in {directory} for the passive-fill model")
    times = pd.date_range(c["ts"].min(), c["ts"].max(), freq="1h")
    col = {k: i for i, k in enumerate(coins)}
    r = times.get_indexer(pd.DatetimeIndex(c["ts"]))
    j = c["coin"].map(col).to_numpy().astype(np.int64)
    out = []
    for f in ("low", "high", "close"):
        a = np.full((len(times), len(coins)), np.nan)
        a[r, j] = c[f].to_numpy(np.float64)
        out.append(a)
    return HourlyPrices(times, *out)


def passive_fill(px: float, buy: bool, half: float, lows, highs, closes) -> tuple[bool, float]:
    """A post-only order at the touch (``px·(1 ∓ half)``) after a decision at price ``px``: (True, touch) when a
    1h candle of the wait trades through it (low < bid for a buy, high > ask for a sell); otherwise (False,
    the close of the last waited hour with a candle — where the remainder crosses as IOC; ``px`` if none)."""
    touch = px * (1 - half) if buy else px * (1 + half)
    ext = np.asarray(lows if buy else highs, dtype=np.float64)
    if (np.any(ext < touch) if buy else np.any(ext > touch)):
        return True, touch
    later = np.asarray(closes, dtype=np.float64)
    later = later[np.isfinite(later)]
    return False, float(later[-1]) if len(later) else px


@dataclass
class LiveBacktest:
    bars: pd.DataFrame
    metrics: dict


def run_as_live(panel: Panel, cfg, start, end=None, capital_usd: float | None = None, style: str | None = None,
                hourly: HourlyPrices | None = None, instruments: Mapping[str, InstrumentSpec] | None = None,
                trace: dict | None = None) -> LiveBacktest:
    """The as-live backtest over bars with open time in ``[start, end)`` (see the module doc).

    ``instruments``: the venue's instrument rules per coin (e.g. the local exchange's `instruments()`; default:
    the local exchange's ``instrument_for`` at each bar's price). ``trace``: a dict to fill with what the paper-vs-backtest
    tracking (`research/tracking.py`) decomposes: ``trace["bars"][t]`` = {equity at the decision (after marking
    and funding, before trading), funding USD, targets, positions before and after (base units), mids, the
    equity the plan was sized from}, and ``trace["fills"]`` = one dict per fill {bar, coin, units (signed),
    decision price, execution reference price (the close, or the passive remainder's later close), fee USD,
    price cost USD beyond the reference, drift cost USD (reference vs decision price), maker}."""
    if capital_usd is not None:
        cfg = cfg.model_copy(update={"capital_usd": float(capital_usd)})
    style = style or cfg.execution.style
    if style not in ("taker", "passive_first"):
        raise ValueError(f"execution style {style!r}: expected 'taker' or 'passive_first'")
    if style == "passive_first" and hourly is None:
        raise ValueError("passive_first needs the 1h candles (hourly=load_hourly(...))")
    if end is not None:
        panel = panel.truncate(utc_naive(end) - BAR)
    run = run_strategy(panel, StrategyParams.from_config(cfg), start=utc_naive(start))
    o = run.offset
    W, times, coins = run.weights.weights, run.times, panel.coins
    close, notional, funding = panel.close[o:], panel.notional[o:], panel.funding[o:]
    sigma_d, adv = run.signals.sigma[o:] * math.sqrt(6.0), run.signals.adv[o:]
    T, N = W.shape
    cap = float(cfg.capital_usd)
    ex, costs, bt = cfg.execution, cfg.costs, cfg.backtest
    pp = PlanParams(ex.min_order_usd, ex.min_order_buffer_usd, ex.slippage_cap_bps)
    half = costs.slippage_base_bps / 1e4
    part = bt.participation_cap_pct / 100
    stop = cfg.emergency_stop_drawdown_pct / 100
    col = {c: i for i, c in enumerate(coins)}
    h_index = None
    if hourly is not None:
        h_index = hourly.times.get_indexer(times + BAR)  # first 1h candle after each decision (bar close)
    if trace is not None:
        trace["bars"], trace["fills"] = [], []

    sz = np.zeros(N)
    mark = np.full(N, np.nan)
    eq = cap
    peak = cap
    halted = False
    out = np.zeros((T, len(BAR_FIELDS)))
    extra = np.zeros((T, len(EXTRA_FIELDS)))
    traded_total = cost_total = 0.0
    halted_at = None

    def fill(i, signed_sz, t, reduce_only):
        """Execute one order (signed base units) at bar t's decision; returns (filled units, fee, price cost,
        maker usd, taker usd, clipped usd)."""
        px = mark[i]
        want = abs(signed_sz) * px
        vol = notional[t, i]
        room = part * vol if vol == vol and vol > 0 else 0.0
        usd = min(want, room)
        clipped = want - usd
        if usd <= 0:
            return 0.0, 0.0, 0.0, 0.0, 0.0, clipped
        buy = signed_sz > 0
        units = signed_sz if clipped == 0 else math.copysign(usd / px, signed_sz)  # exact when filled in full
        a = adv[t, i]
        sd = sigma_d[t, i]
        # unknown ADV (live only lets such an order close a position): charge the impact of trading a whole ADV
        impact = bt.impact_y * sd * math.sqrt(min(usd / a, 1.0) if a > 0 else 1.0) if sd == sd else 0.0
        maker, p_exec, drift = False, px, 0.0
        if style == "passive_first":
            h0 = h_index[t]
            hs = slice(h0, min(h0 + bt.passive_wait_hours, len(hourly.times))) if h0 >= 0 else slice(0, 0)
            maker, p_exec = passive_fill(px, buy, half, hourly.low[hs, i], hourly.high[hs, i], hourly.close[hs, i])
            if not maker:
                drift = (p_exec - px) / px if buy else (px - p_exec) / px
        if maker:
            fee, pcost = usd * costs.maker_fee_bps / 1e4, -half * usd
        else:
            fee, pcost = usd * costs.taker_fee_bps / 1e4, (drift + half + impact) * usd
        if trace is not None:
            trace["fills"].append({"bar": t, "coin": coins[i], "units": float(units), "px": float(px),
                                   "ref_px": float(px if maker else p_exec), "fee": fee, "pcost": pcost,
                                   "drift": drift * usd, "maker": maker})
        return units, fee, pcost, usd if maker else 0.0, 0.0 if maker else usd, clipped

    for t in range(T):
        px = close[t]
        ok = np.isfinite(px)
        e0 = eq
        pnl = fund = 0.0
        if t > 0:
            held = sz != 0
            dp = np.where(ok & np.isfinite(mark), px - mark, 0.0)
            pnl = float((sz[held] * dp[held]).sum())
            fund = float((sz[held] * mark[held] * funding[t, held]).sum())
        mark = np.where(ok, px, mark)
        eq = eq + pnl - fund
        fees = pcost = traded = 0.0
        row = dict.fromkeys(EXTRA_FIELDS, 0.0)
        row["scale"] = 1.0
        if bt.drawdown_stop and not halted and eq <= peak * (1 - stop):
            halted, halted_at = True, times[t]
            for i in np.flatnonzero(sz):  # flatten: reduce-only closes, always allowed
                f, fe, pc, mk, tk, cl = fill(i, -sz[i], t, True)
                sz[i] += f
                fees, pcost, traded = fees + fe, pcost + pc, traded + abs(f) * mark[i]
                row["maker_usd"] += mk
                row["taker_usd"] += tk
                row["clipped_usd"] += cl
        peak = max(peak, eq)
        tr = None
        if trace is not None:
            tr = {"equity": float(eq), "funding_usd": float(fund), "targets": {}, "mids": {},
                  "before": {coins[i]: float(sz[i]) for i in np.flatnonzero(sz)}, "plan_equity": None}
            trace["bars"].append(tr)
        if not halted and eq > 0:
            targets = {coins[i]: float(W[t, i]) for i in np.flatnonzero(W[t])}
            positions = {coins[i]: float(sz[i]) for i in np.flatnonzero(sz)}
            names = set(targets) | set(positions)
            mids = {c: float(mark[col[c]]) for c in names}
            if any(not (m > 0) for m in mids.values()):  # a target without any price yet: cannot plan (live refuses)
                row["refused"] = 1.0
                names = set()
            szd = {c: instruments[c] if instruments and c in instruments else instrument_for(c, mids[c]) for c in names}
            if tr is not None:
                tr.update(targets=dict(targets), mids=dict(mids), plan_equity=float(eq), szd=dict(szd))
            decision = None
            if names:
                plan = plan_orders(targets, positions, mids, szd, float(eq), pp)
                advs = {c: float(adv[t, col[c]]) for c in names}
                cur_usd = {c: positions.get(c, 0.0) * mids[c] for c in names}

                def check(p):
                    tgt_usd = {c: p.target_sz.get(c, positions.get(c, 0.0)) * mids[c] for c in names}
                    return check_plan(p.orders, tgt_usd, eq, advs, False, cfg, current_positions=cur_usd)

                decision = check(plan)
                if decision.approved and decision.scaled:
                    row["scale"] = decision.scale
                    scaled = {c: float(v) for c, v in scale_targets(targets, decision.scale).items()}
                    plan = plan_orders(scaled, positions, mids, szd, float(eq), pp)
                    decision = check(plan)
                    if decision.approved and decision.scaled:
                        decision = None  # rounding defeated the scaling: refuse, as the execution job does
                if decision is None or not decision.approved:
                    row["refused"] = 1.0
                else:
                    row["n_orders"] = len(plan.orders)
                    for s in plan.skipped:
                        row["n_skipped_small"] += 1
                        row["skipped_small_usd"] += abs(s.delta_usd)
                    for od in plan.orders:
                        i = col[od.coin]
                        f, fe, pc, mk, tk, cl = fill(i, od.sz if od.is_buy else -od.sz, t, od.reduce_only)
                        sz[i] += f
                        fees, pcost, traded = fees + fe, pcost + pc, traded + abs(f) * mark[i]
                        row["maker_usd"] += mk
                        row["taker_usd"] += tk
                        row["clipped_usd"] += cl
        row["halted"] = float(halted)
        if tr is not None:
            tr["after"] = {coins[i]: float(sz[i]) for i in np.flatnonzero(sz)}
        eq = eq - fees - pcost
        traded_total += traded
        cost_total += fees + pcost
        gross_usd = float(np.abs(sz * np.where(np.isfinite(mark), mark, 0.0)).sum())
        net_usd = float((sz * np.where(np.isfinite(mark), mark, 0.0)).sum())
        base = e0 if e0 > 0 else 1.0
        out[t] = [pnl / base, fund / base, fees / base, pcost / base, eq / base - 1 if e0 > 0 else 0.0,
                  traded / base, eq / cap, gross_usd / eq if eq > 0 else 0.0, net_usd / eq if eq > 0 else 0.0]
        extra[t] = [row[k] for k in EXTRA_FIELDS]
    bars = pd.DataFrame(np.hstack([out, extra]), index=pd.DatetimeIndex(times, name="ts"),
                        columns=list(BAR_FIELDS) + list(EXTRA_FIELDS))
    m = metrics(bars)
    reb = bars["n_orders"] + bars["refused"] > 0
    m.update({
        "capital_usd": cap,
        "style": style,
        "shortfall_bps": cost_total / traded_total * 1e4 if traded_total > 0 else float("nan"),
        "traded_usd": traded_total,
        "refused_bars": int(bars["refused"].sum()),
        "refused_share": float(bars["refused"].sum() / max(int(reb.sum()), 1)),
        "skipped_small_orders": int(bars["n_skipped_small"].sum()),
        "skipped_small_share": float(bars["n_skipped_small"].sum()
                                     / max(float(bars["n_skipped_small"].sum() + bars["n_orders"].sum()), 1.0)),
        "clipped_share": float(bars["clipped_usd"].sum() / max(traded_total + float(bars["clipped_usd"].sum()), 1e-12)),
        "maker_share": float(bars["maker_usd"].sum() / max(traded_total, 1e-12)),
        "halted_at": str(halted_at) if halted_at is not None else None,
        "avg_target_gross": float(np.abs(W).sum(1).mean()),
    })
    return LiveBacktest(bars, m)
