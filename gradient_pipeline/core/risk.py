"""Pre-trade risk manager: one pure function that approves, scales or refuses a whole rebalance plan.

Called by the rebalance job (execution) **after** planning and **before anything is sent**. It never talks to
the exchange or DuckDB; the caller gathers the inputs. Interface (stable; the execution job depends on it)::

    from gradient_pipeline.core.risk import check_plan, RiskOrder

    decision = check_plan(
        plan_orders,          # the orders the plan would send (see "Orders" below)
        target_positions,     # coin -> signed USD notional the account will hold after the plan (see below)
        account_value,        # mark-to-market account value in USD (clearinghouseState marginSummary.accountValue)
        adv_usd_by_coin,      # coin -> average daily traded notional, USD (target_weights.adv_usd)
        halted,               # gradient_pipeline.monitoring.halt.is_halted(conn) — read it in the job, pass it here
        cfg,                  # GradientConfig
        current_positions=None,  # optional coin -> signed USD notional held now (default: targets − order deltas)
    )
    if not decision.approved:
        # record the rebalance as status "refused", reason=decision.summary(); SEND NOTHING
    elif decision.scaled:
        # multiply every target by decision.scale (scale_targets), re-plan the orders, record decision.summary()
        # in the rebalance row, and call check_plan again on the new plan: it must come back approved and unscaled
        # (a second scale means rounding defeated the scaling: refuse).

Orders (`plan_orders`) may be a `pandas.DataFrame` or any sequence of `RiskOrder`, dicts or objects with the
fields ``coin, is_buy, sz, limit_px`` and optionally ``reduce_only`` (the SDK's order-request names). An order's
notional is ``sz × limit_px`` (the limit is mid ± slippage cap, so this slightly overstates — the safe side).

Targets (`target_positions`): a mapping or `pandas.Series` coin → signed USD notional (long > 0, short < 0), or a
DataFrame with columns ``coin, notional_usd``. Coins absent from the targets are taken as 0 (to be flat).

Rules (limits from the configuration; a breach refuses the WHOLE rebalance and names the rule, coin and figures):

==================  ==============================================================  ==========
rule                limit                                                           scalable
==================  ==============================================================  ==========
halted              `halt_state` is set (emergency stop / operator)                 never
account_value       account value ≥ risk.min_account_value_usd (and finite, > 0)    never
invalid_plan        sizes > 0, prices > 0 and finite, targets finite                never
position_cap        |target_i| ≤ max_position_pct % of account value                yes
side_gross          Σ longs and Σ |shorts| each ≤ side_gross_pct % of account value  yes
leverage            Σ |target_i| ≤ max_total_leverage × account value                yes
net_exposure        |Σ target_i| ≤ risk.net_exposure_band_pct % of account value    yes
order_notional      every order ≤ risk.max_order_notional_usd                       yes*
liquidity           every order ≤ risk.max_order_adv_pct % of the coin's ADV        yes*
                    (an opening order in a coin with no known ADV is a breach)
==================  ==============================================================  ==========

With ``cfg.risk.breach_action == "scale"`` the scalable breaches are resolved by shrinking the whole target book
by one factor ``scale`` in (0, 1): the largest factor that satisfies every rule at once (order-level rules*
are solved exactly from ``order_i(s) = s·target_i − current_i``). If no factor in (0, 1] fixes it (e.g. closing
a position larger than the order cap), or any non-scalable rule is breached, the rebalance is refused.

Limits carry a small relative tolerance (`LIMIT_TOLERANCE`, 0.5 % of the limit) because the planner rounds sizes
to the coin's szDecimals and prices move between planning and checking; anything beyond it is a breach.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from gradient_pipeline.config import GradientConfig

LIMIT_TOLERANCE = 0.005  # relative slack on every limit: szDecimals rounding, mid drift between plan and check
SCALE_SAFETY = 0.995  # scaled books aim slightly inside the limits so the re-planned (rounded) book passes

NEVER_SCALABLE = ("halted", "account_value", "invalid_plan")


@dataclass(frozen=True)
class RiskOrder:
    """One order as the pre-trade risk check sees it (any object with these fields will do, e.g. the planner's
    `execution.planner.PlannedOrder`)."""

    coin: str
    is_buy: bool
    sz: float  # base units, > 0
    limit_px: float  # USD per unit, > 0
    reduce_only: bool = False

    @property
    def notional_usd(self) -> float:
        return abs(self.sz) * self.limit_px


@dataclass(frozen=True)
class Breach:
    """One violated limit: which rule, on which coin (None for book-level rules), the value and the limit."""

    rule: str
    message: str
    value: float = float("nan")
    limit: float = float("nan")
    coin: str | None = None
    scalable: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "coin": self.coin, "value": self.value, "limit": self.limit,
                "scalable": self.scalable, "message": self.message}


@dataclass(frozen=True)
class RiskDecision:
    """The verdict on a plan. `approved` False ⇒ send nothing. `scaled` ⇒ multiply targets by `scale` and re-plan."""

    approved: bool
    scaled: bool
    scale: float
    reasons: list[str]
    breaches: list[Breach]
    exposure: dict[str, float] = field(default_factory=dict)  # figures of the checked book, for the ledger / UI

    def summary(self) -> str:
        """One line for the `rebalances.reason` column."""
        if self.approved and not self.scaled:
            return "risk checks passed"
        head = "refused by risk checks" if not self.approved else f"scaled to {self.scale:.4f} by risk checks"
        return head + ": " + "; ".join(self.reasons)


# ----------------------------------------------------------------------------------------------------------
# input normalisation
# ----------------------------------------------------------------------------------------------------------

ORDER_COLUMNS = ("coin", "is_buy", "sz", "limit_px", "reduce_only")


def orders_frame(plan_orders: Any) -> pd.DataFrame:
    """Normalise `plan_orders` to a frame with ORDER_COLUMNS plus `notional_usd` and `signed_usd`."""
    if plan_orders is None:
        rows: list[dict] = []
        frame = pd.DataFrame(columns=list(ORDER_COLUMNS))
    elif isinstance(plan_orders, pd.DataFrame):
        missing = [c for c in ORDER_COLUMNS[:4] if c not in plan_orders.columns]
        if missing:
            raise ValueError(f"plan_orders frame lacks column(s) {missing}; needs {list(ORDER_COLUMNS)}")
        frame = plan_orders.copy()
        if "reduce_only" not in frame.columns:
            frame["reduce_only"] = False
    else:
        rows = []
        for i, o in enumerate(plan_orders):
            get = o.get if isinstance(o, Mapping) else (lambda k, d=None, _o=o: getattr(_o, k, d))
            row = {k: get(k) for k in ORDER_COLUMNS}
            if any(row[k] is None for k in ORDER_COLUMNS[:4]):
                raise ValueError(f"plan_orders[{i}] lacks one of {list(ORDER_COLUMNS[:4])}: {o!r}")
            row["reduce_only"] = bool(row["reduce_only"] or False)
            rows.append(row)
        frame = pd.DataFrame(rows, columns=list(ORDER_COLUMNS))
    frame = frame[list(ORDER_COLUMNS)].reset_index(drop=True)
    frame["coin"] = frame["coin"].astype(str)
    frame["sz"] = pd.to_numeric(frame["sz"], errors="coerce").astype(float)
    frame["limit_px"] = pd.to_numeric(frame["limit_px"], errors="coerce").astype(float)
    frame["is_buy"] = frame["is_buy"].astype(bool)
    frame["reduce_only"] = frame["reduce_only"].astype(bool)
    frame["notional_usd"] = frame["sz"].abs() * frame["limit_px"]
    frame["signed_usd"] = frame["notional_usd"].where(frame["is_buy"], -frame["notional_usd"])
    return frame


def positions_series(positions: Any, name: str = "target_positions") -> pd.Series:
    """Normalise coin → signed USD notional (mapping, Series or frame with coin, notional_usd) to a float Series."""
    if positions is None:
        return pd.Series(dtype=float)
    if isinstance(positions, pd.DataFrame):
        if not {"coin", "notional_usd"} <= set(positions.columns):
            raise ValueError(f"{name} frame needs columns coin, notional_usd (got {list(positions.columns)})")
        s = positions.groupby("coin")["notional_usd"].sum()
    elif isinstance(positions, pd.Series):
        s = positions.groupby(level=0).sum()
    elif isinstance(positions, Mapping):
        s = pd.Series(dict(positions), dtype=float)
    else:
        raise TypeError(f"{name} must be a mapping, Series or DataFrame, got {type(positions).__name__}")
    s = pd.to_numeric(s, errors="coerce").astype(float)
    s.index = s.index.astype(str)
    return s


def scale_targets(target_positions: Mapping[str, float] | pd.Series, scale: float) -> pd.Series:
    """The targets multiplied by `scale` (what the caller re-plans from after a scaled decision)."""
    return positions_series(target_positions) * float(scale)


# ----------------------------------------------------------------------------------------------------------
# the check
# ----------------------------------------------------------------------------------------------------------


def _over(value: float, limit: float) -> bool:
    return value > limit * (1 + LIMIT_TOLERANCE) + 1e-9


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _interval_abs_le(t: float, c: float, limit: float) -> tuple[float, float]:
    """The s-interval where |s·t − c| ≤ limit (may be empty: lo > hi)."""
    if abs(t) < 1e-12:
        return (-math.inf, math.inf) if abs(c) <= limit else (1.0, 0.0)
    a, b = (c - limit) / t, (c + limit) / t
    return (min(a, b), max(a, b))


def check_plan(
    plan_orders: Any,
    target_positions: Any,
    account_value: float,
    adv_usd_by_coin: Mapping[str, float] | pd.Series | None,
    halted: bool,
    cfg: GradientConfig,
    current_positions: Any = None,
) -> RiskDecision:
    """Check a rebalance plan against every pre-trade limit; see the module docstring for inputs and rules."""
    breaches: list[Breach] = []
    risk = cfg.risk

    if halted:
        breaches.append(Breach("halted", "trading is halted (emergency stop or operator); run "
                               "`gradient-pipeline resume` after reviewing"))

    av = float(account_value) if account_value is not None else float("nan")
    if not math.isfinite(av) or av <= 0:
        breaches.append(Breach("account_value", f"account value {av!r} is not a positive number", av,
                               risk.min_account_value_usd))
    elif av < risk.min_account_value_usd:
        breaches.append(Breach("account_value", f"account value ${av:,.2f} is below the minimum "
                               f"${risk.min_account_value_usd:,.2f}", av, risk.min_account_value_usd))

    orders = orders_frame(plan_orders)
    targets = positions_series(target_positions)
    adv = positions_series(adv_usd_by_coin, "adv_usd_by_coin") if adv_usd_by_coin is not None else pd.Series(dtype=float)

    bad_orders = orders[~((orders["sz"] > 0) & (orders["limit_px"] > 0) & orders["notional_usd"].map(math.isfinite))]
    for o in bad_orders.itertuples():
        breaches.append(Breach("invalid_plan", f"{o.coin}: order size {o.sz!r} at price {o.limit_px!r} is not "
                               "a positive finite order", coin=o.coin))
    bad_targets = targets[~targets.map(math.isfinite)]
    for coin in bad_targets.index:
        breaches.append(Breach("invalid_plan", f"{coin}: target notional is not a finite number", coin=coin))

    if not math.isfinite(av) or av <= 0 or len(bad_orders) or len(bad_targets):
        return _decide(breaches, cfg, 1.0, {})  # the figures below would be meaningless on invalid inputs

    targets = targets.fillna(0.0)
    delta = orders.groupby("coin")["signed_usd"].sum()
    coins = sorted(set(targets.index) | set(delta.index))
    t = targets.reindex(coins, fill_value=0.0)
    d = delta.reindex(coins, fill_value=0.0)
    if current_positions is not None:
        current = positions_series(current_positions, "current_positions").reindex(coins, fill_value=0.0).fillna(0.0)
    else:
        current = t - d

    longs, shorts = float(t[t > 0].sum()), float(-t[t < 0].sum())
    gross, net = longs + shorts, longs - shorts
    exposure = {
        "account_value": av, "long_usd": longs, "short_usd": shorts, "gross_usd": gross, "net_usd": net,
        "leverage": gross / av, "n_orders": float(len(orders)), "order_notional_usd": float(orders["notional_usd"].sum()),
        "max_order_usd": float(orders["notional_usd"].max()) if len(orders) else 0.0,
    }

    max_scale = 1.0  # the largest uniform target scale satisfying the book-level rules
    lo, hi = 0.0, 1.0  # the feasible s-interval for order-level rules

    cap = cfg.max_position_pct / 100 * av
    for coin, v in t.items():
        if _over(abs(v), cap):
            breaches.append(Breach("position_cap", f"{coin}: target ${abs(v):,.0f} = {_pct(abs(v) / av)} of account "
                                   f"value > max_position_pct {cfg.max_position_pct:g}%", abs(v), cap, coin, True))
            max_scale = min(max_scale, cap / abs(v))

    side_cap = cfg.side_gross_pct / 100 * av
    for side, v in (("long", longs), ("short", shorts)):
        if _over(v, side_cap):
            breaches.append(Breach("side_gross", f"gross {side} ${v:,.0f} = {_pct(v / av)} of account value > "
                                   f"side_gross_pct {cfg.side_gross_pct:g}%", v, side_cap, None, True))
            max_scale = min(max_scale, side_cap / v)

    lev_cap = cfg.max_total_leverage * av
    if _over(gross, lev_cap):
        breaches.append(Breach("leverage", f"total leverage {gross / av:.2f}x (gross ${gross:,.0f}) > "
                               f"max_total_leverage {cfg.max_total_leverage:g}x", gross, lev_cap, None, True))
        max_scale = min(max_scale, lev_cap / gross)

    band = risk.net_exposure_band_pct / 100 * av
    if _over(abs(net), band):
        breaches.append(Breach("net_exposure", f"net exposure ${net:,.0f} = {_pct(net / av)} of account value "
                               f"outside ±{risk.net_exposure_band_pct:g}%", abs(net), band, None, True))
        max_scale = min(max_scale, band / abs(net))

    order_cap = risk.max_order_notional_usd
    adv_frac = risk.max_order_adv_pct / 100
    for o in orders.itertuples():
        if _over(o.notional_usd, order_cap):
            breaches.append(Breach("order_notional", f"{o.coin}: order ${o.notional_usd:,.0f} > "
                                   f"max_order_notional_usd ${order_cap:,.0f}", o.notional_usd, order_cap, o.coin, True))
        a = float(adv.get(o.coin, float("nan")))
        if not (math.isfinite(a) and a > 0):
            if o.reduce_only:
                continue  # closing risk in a coin without volume data is allowed; opening it is not
            breaches.append(Breach("liquidity", f"{o.coin}: no ADV known for a coin with an order "
                                   "(cannot check liquidity)", o.notional_usd, float("nan"), o.coin, False))
        elif _over(o.notional_usd, adv_frac * a):
            breaches.append(Breach("liquidity", f"{o.coin}: order ${o.notional_usd:,.0f} = {_pct(o.notional_usd / a)} "
                                   f"of ADV ${a:,.0f} > max_order_adv_pct {risk.max_order_adv_pct:g}%",
                                   o.notional_usd, adv_frac * a, o.coin, True))

    if breaches and cfg.risk.breach_action == "scale":
        # after scaling, coin i trades order_i(s) = s·t_i − c_i: it must fit under both order-level limits
        for coin in coins:
            if abs(t[coin]) < 1e-12 and abs(current[coin]) < 1e-12:
                continue
            limit = order_cap
            a = float(adv.get(coin, float("nan")))
            if math.isfinite(a) and a > 0:
                limit = min(limit, adv_frac * a)
            i_lo, i_hi = _interval_abs_le(float(t[coin]), float(current[coin]), limit * SCALE_SAFETY)
            lo, hi = max(lo, i_lo), min(hi, i_hi)
    scale = min(max_scale * SCALE_SAFETY if max_scale < 1 else 1.0, hi)
    if scale < lo:
        scale = float("nan")  # no single factor satisfies every order-level rule
    return _decide(breaches, cfg, scale, exposure)


def _decide(breaches: list[Breach], cfg: GradientConfig, scale: float, exposure: dict[str, float]) -> RiskDecision:
    reasons = [f"{b.rule}: {b.message}" for b in breaches]
    if not breaches:
        return RiskDecision(True, False, 1.0, [], [], exposure)
    can_scale = (
        cfg.risk.breach_action == "scale"
        and all(b.scalable for b in breaches)
        and math.isfinite(scale)
        and 0 < scale < 1
    )
    if can_scale:
        return RiskDecision(True, True, float(scale), reasons, breaches, exposure)
    if cfg.risk.breach_action == "scale" and all(b.scalable for b in breaches):
        reasons.append("no single scale factor in (0, 1) satisfies every limit")
    return RiskDecision(False, False, 0.0, reasons, breaches, exposure)

