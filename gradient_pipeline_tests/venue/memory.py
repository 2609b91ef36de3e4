"""`MemoryVenue`: an in-memory `ExecutionVenue` — a second venue in one file, with its own instrument rules.

A test double of the *venue* (not of the rebalance logic): orders match against a settable mid price, positions,
cash, fees, fills, client-id lookups, open orders, cancels and the dead-man switch behave like a small exchange.
Its instrument rules (a fixed lot size and price tick per coin, a $5 minimum) are deliberately not Hyperliquid's,
so a rebalance that trades here shows the planner and runner never assume Hyperliquid.

Failure knobs: `lose_next_answers(n)` executes the next n order batches but answers `ambiguous` (a lost
response); `refuse_schedule_cancel` makes the dead-man switch unavailable.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import pandas as pd

from gradient_pipeline.venue.errors import ActionRefusedError
from gradient_pipeline.venue.model import (
    AccountEquity,
    AccountState,
    Fill,
    OpenOrder,
    OrderLookup,
    OrderOutcome,
    OrderRequest,
    Position,
)


@dataclass(frozen=True)
class TickInstrument:
    """Fixed lot size and price tick (implements `venue.model.InstrumentSpec`)."""

    coin: str
    lot: float
    tick: float
    max_leverage: int = 5
    delisted: bool = False
    min_notional_usd: float = 5.0

    def _q(self, x: float, step: float, rounding) -> float:
        d = (Decimal(repr(x)) / Decimal(repr(step))).to_integral_value(rounding=rounding)
        return float(d * Decimal(repr(step)))

    def round_size(self, sz: float) -> float:
        return math.copysign(self._q(abs(sz), self.lot, ROUND_FLOOR), sz) if sz else 0.0

    def round_price(self, px: float, is_buy: bool) -> float:
        return max(self.tick, self._q(px, self.tick, ROUND_CEILING if is_buy else ROUND_FLOOR))

    def _on_grid(self, x: float, step: float) -> bool:
        return (Decimal(repr(x)) % Decimal(repr(step))) == 0

    def is_valid_size(self, sz: float) -> bool:
        return sz > 0 and self._on_grid(sz, self.lot)

    def is_valid_price(self, px: float) -> bool:
        return px > 0 and self._on_grid(px, self.tick)

    def price_tick(self, px: float) -> float:
        return self.tick

    def describe_price_rule(self) -> str:
        return f"a multiple of {self.tick:g}"


@dataclass
class _Order:
    req: OrderRequest
    oid: int
    status: str  # open | filled | canceled | rejected
    filled: float = 0.0


@dataclass
class MemoryVenue:
    """One account on an in-memory venue. `mids` may be changed between calls (the market moves)."""

    instruments_: dict[str, TickInstrument]
    mids: dict[str, float]
    cash_usd: float
    account_address: str = "0x" + "ab" * 20
    base_url: str = "memory://venue"
    expires_after_s: float | None = 30.0
    taker_fee_bps: float = 5.0
    now: pd.Timestamp = field(default_factory=lambda: pd.Timestamp("2025-03-01 00:05"))
    refuse_schedule_cancel: bool = False
    # --- state ---
    positions: dict[str, tuple[float, float]] = field(default_factory=dict)  # coin -> (szi, entry px)
    orders: dict[str, _Order] = field(default_factory=dict)  # by cloid
    fills: list[Fill] = field(default_factory=list)
    leverage: dict[str, int] = field(default_factory=dict)
    dead_man_at: int | None = None
    dead_man_log: list[int | None] = field(default_factory=list)  # every arm (ms) and clear (None)
    batches: list[list[OrderRequest]] = field(default_factory=list)
    _lose: int = 0
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def can_sign(self) -> bool:
        return True

    def lose_next_answers(self, n: int = 1) -> None:
        self._lose = n

    # ----------------------------------------------------------------- reference data and clock
    def instruments(self) -> Mapping[str, TickInstrument]:
        return self.instruments_

    def server_time(self) -> pd.Timestamp:
        return self.now

    def all_mids(self) -> dict[str, float]:
        return dict(self.mids)

    def l2_touch(self, coin: str) -> tuple[float | None, float | None]:
        tick = self.instruments_[coin].tick
        return self.mids[coin] - tick, self.mids[coin] + tick

    # ----------------------------------------------------------------- account reads
    def _upnl(self) -> float:
        return sum(szi * (self.mids[c] - px) for c, (szi, px) in self.positions.items())

    def account_state(self) -> AccountState:
        pos = {c: Position(c, szi, px, abs(szi) * self.mids[c], szi * (self.mids[c] - px))
               for c, (szi, px) in self.positions.items() if szi}
        return AccountState(self.cash_usd + self._upnl(), sum(p.position_value for p in pos.values()), pos,
                            int(self.now.value // 1_000_000))

    def account_equity(self) -> AccountEquity:
        upnl = self._upnl()
        return AccountEquity(self.cash_usd + upnl, "default", self.cash_usd + upnl, 0.0, upnl)

    def open_orders(self) -> list[OpenOrder]:
        return [OpenOrder(o.req.coin, o.oid, o.req.cloid, o.req.is_buy, o.req.sz - o.filled, o.req.limit_px)
                for o in self.orders.values() if o.status == "open"]

    def fills_since(self, start_ms: int | None = None) -> list[Fill]:
        return [f for f in self.fills if start_ms is None or f.time_ms >= start_ms]

    def order_status(self, cloid: str) -> OrderLookup:
        o = self.orders.get(cloid)
        if o is None:
            return OrderLookup(cloid, "unknown", "unknown")
        return OrderLookup(cloid, o.status, o.status, o.oid, o.req.sz, o.req.sz - o.filled)  # type: ignore[arg-type]

    def funding_payments(self, start_ms: int, end_ms: int | None = None) -> list:
        return []  # this venue charges no funding

    def funding_usd(self, start_ms: int, end_ms: int) -> float:
        return 0.0

    # ----------------------------------------------------------------- actions
    def _fill(self, o: _Order, sz: float, px: float) -> None:
        coin, sign = o.req.coin, (1.0 if o.req.is_buy else -1.0)
        szi, entry = self.positions.get(coin, (0.0, px))
        closing = min(abs(szi), sz) if szi and (szi > 0) != o.req.is_buy else 0.0
        pnl = closing * (px - entry) * (1.0 if szi > 0 else -1.0)
        new = szi + sign * sz
        if abs(new) < 1e-12:
            self.positions.pop(coin, None)
        elif szi == 0 or (szi > 0) == (new > 0) and abs(new) > abs(szi):
            self.positions[coin] = (new, (abs(szi) * entry + sz * px) / abs(new) if szi else px)
        else:
            self.positions[coin] = (new, entry if (szi > 0) == (new > 0) else px)
        fee = sz * px * self.taker_fee_bps / 1e4
        self.cash_usd += pnl - fee
        o.filled += sz
        if closing:
            direction = "Close Long" if szi > 0 else "Close Short"
        else:
            direction = "Open Long" if o.req.is_buy else "Open Short"
        self.fills.append(Fill(next(self._ids), o.oid, o.req.cloid, coin, o.req.is_buy, px, sz,
                               int(self.now.value // 1_000_000), fee, "USDC", True, pnl, direction))

    def _place(self, r: OrderRequest) -> OrderOutcome:
        spec = self.instruments_.get(r.coin)
        if r.cloid in self.orders:
            return OrderOutcome(r.cloid, "rejected", error="duplicate client order id")
        if spec is None or not spec.is_valid_size(r.sz) or not spec.is_valid_price(r.limit_px):
            return OrderOutcome(r.cloid, "rejected", error=f"{r.coin}: size/price off the instrument's grid")
        szi = self.positions.get(r.coin, (0.0, 0.0))[0]
        if r.reduce_only and (szi == 0 or (szi > 0) == r.is_buy or r.sz > abs(szi) + 1e-12):
            return OrderOutcome(r.cloid, "rejected", error="reduce only would increase the position")
        if not r.reduce_only and r.sz * self.mids[r.coin] < spec.min_notional_usd:
            return OrderOutcome(r.cloid, "rejected", error=f"below the ${spec.min_notional_usd:g} minimum")
        o = _Order(r, next(self._ids), "open")
        self.orders[r.cloid] = o
        mid = self.mids[r.coin]
        crosses = r.limit_px >= mid if r.is_buy else r.limit_px <= mid
        if r.tif == "Alo":
            if crosses:
                o.status = "rejected"
                return OrderOutcome(r.cloid, "rejected", oid=o.oid, error="post only would have matched")
            return OrderOutcome(r.cloid, "resting", oid=o.oid)
        if crosses:
            self._fill(o, r.sz, mid)
            o.status = "filled"
            return OrderOutcome(r.cloid, "filled", oid=o.oid, filled_sz=r.sz, avg_px=mid)
        if r.tif == "Gtc":
            return OrderOutcome(r.cloid, "resting", oid=o.oid)
        o.status = "canceled"
        return OrderOutcome(r.cloid, "rejected", oid=o.oid, error="IOC could not match")

    def bulk_orders(self, orders: list[OrderRequest]) -> list[OrderOutcome]:
        self.batches.append(list(orders))
        outcomes = [self._place(r) for r in orders]
        if self._lose:
            self._lose -= 1
            return [OrderOutcome(r.cloid, "ambiguous", error="timeout waiting for the venue") for r in orders]
        return outcomes

    def cancel_by_cloid(self, coin: str, cloid: str) -> bool:
        o = self.orders.get(cloid)
        if o is None or o.status != "open":
            return False
        o.status = "canceled"
        return True

    def cancel(self, coin: str, oid: int) -> bool:
        o = next((o for o in self.orders.values() if o.oid == oid), None)
        return self.cancel_by_cloid(coin, o.req.cloid) if o else False

    def update_leverage(self, coin: str, leverage: int, is_cross: bool = True) -> None:
        self.leverage[coin] = leverage

    # ----------------------------------------------------------------- safety valves
    def schedule_cancel(self, at) -> int:
        if self.refuse_schedule_cancel:
            raise ActionRefusedError("scheduleCancel: this venue has no dead-man switch", "not supported")
        at_ms = at if isinstance(at, int) else int(pd.Timestamp(at).value // 1_000_000)
        self.dead_man_at = at_ms
        self.dead_man_log.append(at_ms)
        return at_ms

    def clear_schedule_cancel(self) -> None:
        self.dead_man_at = None
        self.dead_man_log.append(None)
