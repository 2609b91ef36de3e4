"""Target weights + live positions + prices + the venue's instrument rules → an order plan (pure; no I/O).

The venue's rules come from its `InstrumentSpec`s (`ExecutionVenue.instruments()`): lot size, price precision,
minimum notional. The planner never knows whose rules they are. Rules (the venue's, plus the strategy's):
- target size = weight × capital / mid; every delta is floored to the instrument's lot size;
- an order that only shrinks or closes a position is **reduce-only**; a sign flip is split into a reduce-only
  close of the whole position and an opening order for the new side;
- opening / increasing orders below `min_order_usd + min_order_buffer_usd` are skipped (`min_order_usd` is at
  least the instrument's `min_notional_usd`: the venue rejects smaller orders); a target whose whole notional is under `min_order_usd` is treated as flat, so the book never keeps
  dust it could not trade; a full close is always allowed (reduce-only, exact position size);
- limit prices are IOC limits at mid × (1 ± slippage cap), rounded by the instrument, buys up and sells down;
- every order is validated before any is sent: `validate_plan` returns every problem, and the runner sends
  nothing if there is one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from gradient_pipeline.venue.model import InstrumentSpec

CLOSE, REDUCE, OPEN = "close", "reduce", "open"


@dataclass(frozen=True)
class PlannedOrder:
    """One order of a rebalance plan: a leg of one coin's move from `current_sz` to `target_sz`, priced at an IOC
    limit around `mid`. The runner turns it into a venue `OrderRequest` (client id, time in force)."""

    coin: str
    leg: str  # close | reduce | open  (a flip is close + open)
    is_buy: bool
    sz: float
    limit_px: float
    reduce_only: bool
    mid: float
    current_sz: float
    target_sz: float

    @property
    def notional_usd(self) -> float:
        return self.sz * self.mid

    @property
    def side(self) -> str:
        return "buy" if self.is_buy else "sell"

    @property
    def signed_sz(self) -> float:
        return self.sz if self.is_buy else -self.sz


@dataclass(frozen=True)
class Skip:
    coin: str
    reason: str
    delta_usd: float


@dataclass(frozen=True)
class Plan:
    capital_usd: float
    orders: list[PlannedOrder] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    target_sz: dict[str, float] = field(default_factory=dict)

    @property
    def gross_usd(self) -> float:
        return sum(o.notional_usd for o in self.orders)

    def residual_usd(self, positions: dict[str, float], mids: dict[str, float]) -> dict[str, float]:
        """|target − position| in USD per coin, for terminal 'partial' reports."""
        coins = set(self.target_sz) | {c for c, s in positions.items() if s}
        return {
            c: abs(self.target_sz.get(c, 0.0) - positions.get(c, 0.0)) * mids.get(c, float("nan")) for c in sorted(coins)
        }


@dataclass(frozen=True)
class PlanParams:
    min_order_usd: float = 10.0
    min_order_buffer_usd: float = 1.0
    slippage_cap_bps: float = 50.0


class PlanValidationError(ValueError):
    """The plan breaks an exchange rule or its inputs are incomplete; nothing may be sent."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("order plan failed validation: " + "; ".join(problems))


def limit_price(mid: float, is_buy: bool, spec: InstrumentSpec, slippage_cap_bps: float) -> float:
    raw = mid * (1 + slippage_cap_bps / 1e4) if is_buy else mid * (1 - slippage_cap_bps / 1e4)
    return spec.round_price(raw, is_buy)


def _order(coin, leg, is_buy, sz, reduce_only, mid, cur, tgt, spec, params) -> PlannedOrder:
    return PlannedOrder(
        coin=coin,
        leg=leg,
        is_buy=is_buy,
        sz=sz,
        limit_px=limit_price(mid, is_buy, spec, params.slippage_cap_bps),
        reduce_only=reduce_only,
        mid=mid,
        current_sz=cur,
        target_sz=tgt,
    )


def plan_orders(
    targets: dict[str, float],
    positions: dict[str, float],
    mids: dict[str, float],
    instruments: Mapping[str, InstrumentSpec],
    capital_usd: float,
    params: PlanParams = PlanParams(),
) -> Plan:
    """Orders that move `positions` (signed base units) to `targets` (signed fractions of `capital_usd`).

    Raises PlanValidationError if an input needed for a coin is missing (price, metadata) — a partial plan
    would leave the book unbalanced, so it is all or nothing.
    """
    problems = []
    if not (capital_usd > 0 and math.isfinite(capital_usd)):
        problems.append(f"capital must be positive and finite, got {capital_usd!r}")
    coins = sorted(set(targets) | {c for c, s in positions.items() if s})
    for c in coins:
        if c not in instruments:
            problems.append(f"{c}: not an instrument of the venue")
        mid = mids.get(c)
        if mid is None or not (mid > 0 and math.isfinite(mid)):
            problems.append(f"{c}: no usable mid price ({mid!r})")
        w = targets.get(c, 0.0)
        if not math.isfinite(w):
            problems.append(f"{c}: target weight is not finite ({w!r})")
    if problems:
        raise PlanValidationError(problems)

    orders: list[PlannedOrder] = []
    skipped: list[Skip] = []
    target_sz: dict[str, float] = {}
    for c in coins:
        mid, spec = mids[c], instruments[c]
        min_usd = max(params.min_order_usd, spec.min_notional_usd)
        min_open = min_usd + params.min_order_buffer_usd
        cur = positions.get(c, 0.0)
        w = targets.get(c, 0.0)
        tgt = spec.round_size(w * capital_usd / mid)
        if abs(tgt) * mid < min_usd:
            if tgt != 0 and cur == 0:
                skipped.append(Skip(c, f"target ${abs(tgt) * mid:.2f} below the ${min_usd:g} minimum", abs(tgt) * mid))
            tgt = 0.0  # too small to hold: flat
        target_sz[c] = tgt
        if cur != 0 and (tgt == 0 or (tgt > 0) != (cur > 0)):
            # Close the whole position (allowed below $10 because it is reduce-only and exact), then maybe open.
            orders.append(_order(c, CLOSE, cur < 0, abs(cur), True, mid, cur, tgt, spec, params))
            if tgt != 0:
                if abs(tgt) * mid >= min_open:
                    orders.append(_order(c, OPEN, tgt > 0, abs(tgt), False, mid, 0.0, tgt, spec, params))
                else:
                    skipped.append(Skip(c, f"open leg ${abs(tgt) * mid:.2f} below ${min_open:g}", abs(tgt) * mid))
            continue
        delta = spec.round_size(tgt - cur)
        if delta == 0:
            continue
        usd = abs(delta) * mid
        if usd < min_open:
            skipped.append(Skip(c, f"delta ${usd:.2f} below ${min_open:g} (minimum + buffer)", usd))
            continue
        shrinking = cur != 0 and abs(tgt) < abs(cur)
        orders.append(_order(c, REDUCE if shrinking else OPEN, delta > 0, abs(delta), shrinking, mid, cur, tgt, spec, params))
    # Reduce-only legs first: they free margin for the opening legs in the same batch.
    orders.sort(key=lambda o: (not o.reduce_only, o.coin))
    return Plan(capital_usd=capital_usd, orders=orders, skipped=skipped, target_sz=target_sz)


def validate_plan(
    plan: Plan, positions: dict[str, float], instruments: Mapping[str, InstrumentSpec],
    params: PlanParams = PlanParams(),
) -> list[str]:
    """Every rule each order must satisfy before anything is sent. Returns the problems (empty = valid)."""
    problems = []
    seen: set[tuple[str, str]] = set()
    for o in plan.orders:
        where = f"{o.coin} {o.leg} {o.side} {o.sz:g}@{o.limit_px:g}"
        spec = instruments.get(o.coin)
        if spec is None:
            problems.append(f"{where}: not an instrument of the venue")
            continue
        if (o.coin, o.leg) in seen:
            problems.append(f"{where}: duplicate leg")
        seen.add((o.coin, o.leg))
        try:
            if not spec.is_valid_size(o.sz):
                problems.append(f"{where}: size not a positive multiple of the lot size")
            if not spec.is_valid_price(o.limit_px):
                problems.append(f"{where}: price breaks {spec.describe_price_rule()}")
        except ValueError as err:  # float_to_wire refuses > 8 decimals
            problems.append(f"{where}: not representable on the wire ({err.args[0]})")
        cur = positions.get(o.coin, 0.0)
        if o.reduce_only:
            if cur == 0 or (cur > 0) == o.is_buy or o.sz > abs(cur) + 1e-12:
                problems.append(f"{where}: reduce-only but position is {cur:g}")
        elif o.notional_usd < max(params.min_order_usd, spec.min_notional_usd):
            problems.append(f"{where}: notional ${o.notional_usd:.2f} below "
                            f"${max(params.min_order_usd, spec.min_notional_usd):g}")
        cap = params.slippage_cap_bps / 1e4
        # One rounding tick beyond the cap is tolerated (buys round up); anything more is a bug.
        tick = spec.price_tick(o.limit_px)
        if o.is_buy and o.limit_px > o.mid * (1 + cap) + tick + 1e-12:
            problems.append(f"{where}: limit above mid + slippage cap")
        if not o.is_buy and o.limit_px < o.mid * (1 - cap) - tick - 1e-12:
            problems.append(f"{where}: limit below mid − slippage cap")
    return problems

