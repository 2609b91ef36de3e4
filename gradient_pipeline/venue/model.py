"""The venue-neutral trading model: what the runner, the emergency stop and the book say to and hear from a venue.

No venue is named here and nothing here parses a venue payload: an adapter (`exchange/hyperliquid/`, or a test
double) turns its venue's answers into these types. Sizes are base units (signed where the name says so), prices
USD per unit, times epoch milliseconds of the venue's clock.

Order outcome taxonomy (after nautilus' command-outcome policy):
- definitive: `filled`, `partial` (IOC filled less than sent; the rest is cancelled), `resting`, `rejected`;
- `ambiguous`: timeout, connection error, 5xx, unparseable answer — the order may or may not exist. The caller
  looks it up by client order id (`ExecutionVenue.order_status`) before sending anything for that coin again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

OutcomeKind = Literal["filled", "partial", "resting", "rejected", "ambiguous"]
LookupState = Literal["open", "filled", "canceled", "rejected", "unknown"]
TimeInForce = Literal["Ioc", "Alo", "Gtc"]  # immediate-or-cancel | add-liquidity-only (post-only) | good-til-cancel


def client_order_id(run_id: str, coin: str, leg: str, attempt: int) -> str:
    """Deterministic client order id (`0x` + 32 hex digits = 128 bits): the same (run, coin, leg, attempt) always
    maps to the same id, so a resumed rebalance can find by client id what an earlier process sent."""
    digest = hashlib.sha256(f"{run_id}|{coin}|{leg}|{attempt}".encode()).hexdigest()
    return "0x" + digest[:32]


@dataclass(frozen=True)
class OrderRequest:
    """One limit order as sent to a venue, already rounded to the instrument's rules."""

    coin: str
    is_buy: bool
    sz: float
    limit_px: float
    reduce_only: bool
    cloid: str
    tif: TimeInForce = "Ioc"

    @property
    def side(self) -> str:
        return "buy" if self.is_buy else "sell"


@dataclass(frozen=True)
class OrderOutcome:
    """What the venue (or the transport) said about one order.

    `action_refused`: the venue refused the whole signed request before looking at any order (bad signer, nonce,
    account) — further batches from this signer would be refused too. `unprocessed`: a rejection by the transport
    (rate limit after retries, a failure known not to have executed), not the venue's verdict on the order.
    """

    cloid: str
    kind: OutcomeKind
    oid: int | None = None
    filled_sz: float = 0.0
    avg_px: float | None = None
    error: str | None = None
    action_refused: bool = False
    unprocessed: bool = False

    @property
    def definitive(self) -> bool:
        return self.kind != "ambiguous"


@dataclass(frozen=True)
class OrderLookup:
    """An order looked up by client id. `state` is the neutral fate (`unknown`: the venue never saw it);
    `venue_status` the venue's own word for it (for messages)."""

    cloid: str
    state: LookupState
    venue_status: str = ""
    oid: int | None = None
    orig_sz: float | None = None
    remaining_sz: float | None = None

    @property
    def exists(self) -> bool:
        return self.state != "unknown"

    @property
    def is_open(self) -> bool:
        return self.state == "open"

    @property
    def filled_sz(self) -> float:
        if self.orig_sz is None or self.remaining_sz is None:
            return 0.0
        return self.orig_sz - self.remaining_sz


@dataclass(frozen=True)
class OpenOrder:
    """An order resting on the venue. `cloid` is None for an order placed without one (by hand)."""

    coin: str
    oid: int
    cloid: str | None
    is_buy: bool
    sz: float
    limit_px: float
    time_ms: int | None = None


@dataclass(frozen=True)
class FundingPayment:
    """One funding payment on one position. `usdc` is received (+) or paid (−) by the account (a long pays when the
    rate is positive); `szi` the signed position it was paid on; `rate` the funding rate applied."""

    time_ms: int
    coin: str
    usdc: float
    szi: float | None = None
    rate: float | None = None
    hash: str | None = None


@dataclass(frozen=True)
class Fill:
    """One execution of one of the account's orders. `tid` is the venue's unique trade id (ledger key)."""

    tid: int
    oid: int | None
    cloid: str | None
    coin: str
    is_buy: bool
    px: float
    sz: float
    time_ms: int
    fee_usd: float = 0.0
    fee_token: str = "USDC"
    taker: bool = True
    closed_pnl_usd: float = 0.0
    direction: str | None = None  # the venue's description of the fill's effect ("Open Long", "Close Short", …)
    hash: str | None = None

    @property
    def side(self) -> str:
        return "buy" if self.is_buy else "sell"

    @property
    def notional_usd(self) -> float:
        return self.px * self.sz


@dataclass(frozen=True)
class Position:
    coin: str
    szi: float  # signed size: + long, − short
    entry_px: float | None
    position_value: float  # |notional| at the venue's mark
    unrealized_pnl: float


@dataclass(frozen=True)
class AccountState:
    """Positions and account value. `account_value` is the account's equity, read correctly for the account's
    mode (`mode`, the venue's word for it; `default` for a plain margin account)."""

    account_value: float
    total_ntl_pos: float
    positions: dict[str, Position] = field(default_factory=dict)
    time_ms: int | None = None
    mode: str = "default"


@dataclass(frozen=True)
class AccountEquity:
    """Equity of one account and how it was composed: `equity` = the margin account's value in a standard account,
    or collateral held elsewhere (`spot_collateral`) + `unrealized_pnl` where the venue keeps it there."""

    equity: float
    mode: str
    perp_account_value: float
    spot_collateral: float
    unrealized_pnl: float


@runtime_checkable
class InstrumentSpec(Protocol):
    """One tradable instrument's rules, as the planner needs them (it never knows whose rules they are).

    Rounding is directional: sizes floor (a reduce-only order never exceeds the position it closes), buy prices
    round up and sell prices down (a rounded limit is never less aggressive than asked)."""

    coin: str
    max_leverage: int
    delisted: bool
    min_notional_usd: float  # the venue rejects an opening order below this notional

    def round_size(self, sz: float) -> float: ...

    def round_price(self, px: float, is_buy: bool) -> float: ...

    def is_valid_size(self, sz: float) -> bool: ...

    def is_valid_price(self, px: float) -> bool: ...

    def price_tick(self, px: float) -> float:
        """The price increment at `px`'s magnitude (one rounding step)."""
        ...

    def describe_price_rule(self) -> str:
        """The price rule in words, for validation messages."""
        ...
