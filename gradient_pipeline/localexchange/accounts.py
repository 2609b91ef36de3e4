"""Accounts: USDC balance, one-way positions, fills, funding payments, per-coin leverage; cross-margin maths.

Accounting model (cross margin, one position per coin):
- `balance` is cash: deposits + realised PnL − fees − funding paid.
- unrealised PnL = szi × (mark − entryPx); account value = balance + Σ unrealised PnL.
- margin used by a position = |szi| × mark / leverage; open orders that could increase a position reserve
  their remaining notional / leverage at the limit price.
- `closedPnl` on a fill excludes the fee (the live exchange's convention); the fee is charged separately.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gradient_pipeline.localexchange.orders import OrderRecord

MAINTENANCE_FRACTION = 0.5  # maintenance margin = half the initial margin at max leverage (margining.md)


@dataclass
class Position:
    szi: float = 0.0
    entry_px: float = 0.0
    funding_all_time: float = 0.0  # funding paid (+) / received (−), the live cumFunding sign
    funding_since_open: float = 0.0
    funding_since_change: float = 0.0


@dataclass
class FillEffect:
    start_position: float
    closed_pnl: float
    direction: str


def direction(start: float, is_buy: bool, sz: float) -> str:
    """The fill's `dir` text as the live exchange writes it."""
    if start == 0 or (start > 0) == is_buy:
        return "Open Long" if is_buy else "Open Short"
    if sz > abs(start) + 1e-12:
        return "Short > Long" if is_buy else "Long > Short"
    return "Close Short" if is_buy else "Close Long"


def apply_fill(pos: Position, is_buy: bool, px: float, sz: float, sz_decimals: int) -> FillEffect:
    """Update `pos` for a fill and return what the fill row needs (start position, closed PnL, dir)."""
    start = pos.szi
    text = direction(start, is_buy, sz)
    signed = sz if is_buy else -sz
    closed = 0.0
    if start == 0 or (start > 0) == is_buy:
        new = abs(start) + sz
        pos.entry_px = (abs(start) * pos.entry_px + sz * px) / new
        if start == 0:
            pos.funding_since_open = 0.0
    else:
        closing = min(sz, abs(start))
        closed = closing * (px - pos.entry_px) * (1 if start > 0 else -1)
        if sz > abs(start) + 1e-12:  # flip: the rest opens at this price
            pos.entry_px = px
            pos.funding_since_open = 0.0
    pos.szi = round(start + signed, sz_decimals)
    if pos.szi == 0:
        pos.szi = 0.0
        pos.entry_px = 0.0
    pos.funding_since_change = 0.0
    return FillEffect(start, closed, text)


@dataclass
class Account:
    address: str  # lower-case master address
    balance: float = 0.0
    positions: dict[str, Position] = field(default_factory=dict)
    leverage: dict[str, int] = field(default_factory=dict)
    orders: dict[int, OrderRecord] = field(default_factory=dict)  # every order ever placed, by oid
    open_oids: list[int] = field(default_factory=list)  # resting orders, in placement (time) priority
    cloids: dict[str, int] = field(default_factory=dict)  # cloid -> oid of the latest order carrying it
    fills: list[dict] = field(default_factory=list)  # wire rows, oldest first
    funding: list[dict] = field(default_factory=list)  # userFunding wire rows, oldest first
    ledger: list[dict] = field(default_factory=list)  # userNonFundingLedgerUpdates rows (deposits), oldest first
    cum_volume: float = 0.0  # traded notional, for userRateLimit
    requests_used: int = 0
    scheduled_cancel_ms: int | None = None
    scheduled_cancel_days: dict[int, int] = field(default_factory=dict)  # UTC day -> switches fired
    mode: str = "default"  # userAbstraction: default (standard) | unifiedAccount | portfolioMargin
    builders: dict[str, int] = field(default_factory=dict)  # approved builder -> max fee, tenths of a bp

    def position(self, coin: str) -> Position:
        return self.positions.setdefault(coin, Position())

    def szi(self, coin: str) -> float:
        pos = self.positions.get(coin)
        return pos.szi if pos else 0.0

    def open_orders(self) -> list[OrderRecord]:
        return [self.orders[oid] for oid in self.open_oids]


def increase_size(szi: float, is_buy: bool, sz: float) -> float:
    """The part of an order of `sz` that would increase |position| (all of it when opening or adding; the
    excess over the position when flipping; zero when only reducing)."""
    if szi == 0 or (szi > 0) == is_buy:
        return sz
    return max(0.0, sz - abs(szi))


@dataclass
class MarginSummary:
    account_value: float
    total_ntl_pos: float
    total_margin_used: float  # positions only
    order_margin: float  # reserved by resting orders
    unrealized_pnl: float
    total_raw_usd: float
    maintenance_margin: float

    @property
    def available(self) -> float:
        return self.account_value - self.total_margin_used - self.order_margin

    @property
    def withdrawable(self) -> float:
        # withdrawals need max(initial margin, 10% of position value) to stay (margining.md)
        return max(0.0, self.account_value - max(self.total_margin_used, 0.1 * self.total_ntl_pos) - self.order_margin)


def margin_summary(account: Account, mark, leverage_of, max_leverage_of) -> MarginSummary:
    """Cross-margin totals. `mark(coin)`, `leverage_of(coin)`, `max_leverage_of(coin)` are lookups."""
    upnl = ntl = used = maint = signed_ntl = 0.0
    for coin, pos in account.positions.items():
        if pos.szi == 0:
            continue
        m = mark(coin)
        if m is None:
            m = pos.entry_px
        upnl += pos.szi * (m - pos.entry_px)
        value = abs(pos.szi) * m
        ntl += value
        signed_ntl += pos.szi * m
        used += value / leverage_of(coin)
        maint += MAINTENANCE_FRACTION * value / max_leverage_of(coin)
    reserved = 0.0
    for order in account.open_orders():
        if order.reduce_only:
            continue
        inc = increase_size(account.szi(order.coin), order.is_buy, order.remaining)
        reserved += inc * order.limit_px / leverage_of(order.coin)
    value = account.balance + upnl
    return MarginSummary(value, ntl, used, reserved, upnl, value - signed_ntl, maint)


def liquidation_px(account_value: float, maintenance_other: float, szi: float, mark: float, max_leverage: int):
    """Price of this coin at which account value meets maintenance margin, other positions held at their marks;
    None if there is none (e.g. a long whose margin would hold even at zero)."""
    if szi == 0:
        return None
    k = MAINTENANCE_FRACTION / max_leverage
    # account_value + szi * (P - mark) = maintenance_other + |szi| * P * k
    denom = szi - abs(szi) * k
    if denom == 0:
        return None
    p = (maintenance_other - account_value + szi * mark) / denom
    return p if p > 0 else None
