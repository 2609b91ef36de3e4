"""Order wire parsing, the exchange's precision rules, the exact error strings, and the order record.

Error strings are the live exchange's (reference §7, `error-responses.md`); per-order errors get the live
` asset=N` suffix via `with_asset`. Strings marked LOCAL have no documented live wording; they are this exchange's
own and clients should match them only loosely.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from gradient_pipeline.localexchange import fmt
from gradient_pipeline.localexchange.market import BadRequest  # answered with HTTP 422 by the app, like live

# --- per-order errors (statuses[i].error) -------------------------------------------------------------------
TICK = "Price must be divisible by tick size."
INVALID_SIZE = "Order has invalid size."
ZERO_SIZE = "Order has zero size."
MIN_NOTIONAL = "Order must have minimum value of $10."
MARGIN = "Insufficient margin to place order."
REDUCE_ONLY = "Reduce only order would increase position."
IOC_CANCEL = "Order could not immediately match against any resting orders."
PRICE_BAND = "Order price cannot be more than 80% away from the reference price"
CANCEL_MISSING = "Order was never placed, already canceled, or filled."
NO_LIQUIDITY = "No liquidity available for market order."
DELISTED = "Trading is halted for this asset."  # LOCAL
UNKNOWN_ASSET = "Unknown asset."  # LOCAL
DUPLICATE_CLOID = "Duplicate cloid: an order with this cloid was already placed."  # LOCAL
TRIGGER_UNSUPPORTED = "Trigger orders are not supported by the local exchange."  # LOCAL


def bad_alo(bid: str, ask: str) -> str:
    return f"Post only order would have immediately matched, bbo was {bid}@{ask}."


def with_asset(message: str, asset: int) -> str:
    return f"{message} asset={asset}"


# historical status names for rejections (reference §2.10)
REJECT_STATUS = {
    TICK: "tickRejected",
    INVALID_SIZE: "rejected",
    ZERO_SIZE: "rejected",
    MIN_NOTIONAL: "minTradeNtlRejected",
    MARGIN: "perpMarginRejected",
    REDUCE_ONLY: "reduceOnlyRejected",
    IOC_CANCEL: "iocCancelRejected",
    PRICE_BAND: "oracleRejected",
    NO_LIQUIDITY: "marketOrderNoLiquidityRejected",
    DELISTED: "rejected",
    DUPLICATE_CLOID: "rejected",
    TRIGGER_UNSUPPORTED: "rejected",
}

TIFS = ("Gtc", "Ioc", "Alo")


def reject_status(message: str) -> str:
    """The orderStatus/historicalOrders status of an order rejected with `message`."""
    if message.startswith("Post only order would have immediately matched"):
        return "badAloPxRejected"
    return REJECT_STATUS.get(message, "rejected")


@dataclass(frozen=True)
class OrderWire:
    """One element of an `order` action's `orders`, as sent (`a b p s r t c`)."""

    asset: int
    is_buy: bool
    px_text: str
    sz_text: str
    reduce_only: bool
    tif: str | None  # None for trigger orders
    cloid: str | None


def parse_address(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 42:
        raise BadRequest(f"{what} is not a 0x-prefixed 20-byte address: {value!r}")
    try:
        int(value[2:], 16)
    except ValueError as err:
        raise BadRequest(f"{what} is not hex: {value!r}") from err
    return value.lower()


def parse_int(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRequest(f"{what} must be an integer, got {value!r}")
    return value


def _require(cond: bool, what: str) -> None:
    if not cond:
        raise BadRequest(what)


def parse_order_wire(wire: object, index: int) -> OrderWire:
    """Shape-check one order wire; a shape error is a whole-request 422 like the live exchange's."""
    where = f"orders[{index}]"
    _require(isinstance(wire, dict), f"{where} is not an object")
    assert isinstance(wire, dict)
    for key in ("a", "b", "p", "s", "r", "t"):
        _require(key in wire, f"{where} lacks '{key}'")
    _require(isinstance(wire["a"], int) and not isinstance(wire["a"], bool), f"{where}.a is not an integer")
    _require(isinstance(wire["b"], bool), f"{where}.b is not a boolean")
    _require(isinstance(wire["p"], str), f"{where}.p is not a string")
    _require(isinstance(wire["s"], str), f"{where}.s is not a string")
    _require(isinstance(wire["r"], bool), f"{where}.r is not a boolean")
    t = wire["t"]
    _require(isinstance(t, dict) and len(t) == 1, f"{where}.t must be {{'limit':...}} or {{'trigger':...}}")
    tif = None
    if "limit" in t:
        _require(isinstance(t["limit"], dict) and t["limit"].get("tif") in TIFS, f"{where}.t.limit.tif invalid")
        tif = t["limit"]["tif"]
    else:
        _require("trigger" in t, f"{where}.t must be limit or trigger")
    cloid = wire.get("c")
    if cloid is not None:
        _require(is_cloid(cloid), f"{where}.c is not a 0x-prefixed 16-byte hex string")
        cloid = cloid.lower()
    return OrderWire(wire["a"], wire["b"], wire["p"], wire["s"], wire["r"], tif, cloid)


def is_cloid(value: object) -> bool:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 34:
        return False
    try:
        int(value[2:], 16)
    except ValueError:
        return False
    return True


def _decimal(text: str) -> Decimal | None:
    try:
        d = Decimal(text)
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def check_price(px_text: str, sz_decimals: int, max_decimals: int = 6) -> tuple[float | None, str | None]:
    """(price, None) if the price is valid; (None, error) otherwise.

    Rule (tick-and-lot-size.md): at most 5 significant figures and at most `6 - szDecimals` decimals; integer
    prices are always valid."""
    d = _decimal(px_text)
    if d is None or d <= 0:
        return None, TICK
    d = d.normalize()
    if d == d.to_integral_value():
        return float(d), None
    _, digits, exponent = d.as_tuple()
    decimals = -exponent
    significant = len(digits)
    if decimals > max_decimals - sz_decimals or significant > 5:
        return None, TICK
    return float(d), None


def check_size(sz_text: str, sz_decimals: int) -> tuple[float | None, str | None]:
    d = _decimal(sz_text)
    if d is None or d < 0:
        return None, INVALID_SIZE
    if d == 0:
        return None, ZERO_SIZE
    if d != round(d, sz_decimals):
        return None, INVALID_SIZE
    return float(d), None


@dataclass
class OrderRecord:
    """One order as the exchange remembers it (open, finished or rejected), for openOrders/orderStatus."""

    oid: int
    user: str
    coin: str
    asset: int
    sz_decimals: int
    is_buy: bool
    limit_px: float
    orig_sz: float
    remaining: float
    reduce_only: bool
    tif: str
    cloid: str | None
    timestamp: int
    status: str = "open"
    status_timestamp: int = 0
    filled: float = 0.0
    fills_notional: float = field(default=0.0, repr=False)

    @property
    def side(self) -> str:
        return "B" if self.is_buy else "A"

    def wire(self) -> dict:
        """The `order` object of orderStatus/historicalOrders (reference §2.10)."""
        return {
            "coin": self.coin,
            "side": self.side,
            "limitPx": fmt.px(self.limit_px),
            "sz": fmt.sz(self.remaining, self.sz_decimals),
            "oid": self.oid,
            "timestamp": self.timestamp,
            "triggerCondition": "N/A",
            "isTrigger": False,
            "triggerPx": "0.0",
            "children": [],
            "isPositionTpsl": False,
            "reduceOnly": self.reduce_only,
            "orderType": "Limit",
            "origSz": fmt.sz(self.orig_sz, self.sz_decimals),
            "tif": self.tif,
            "cloid": self.cloid,
        }

    def open_wire(self) -> dict:
        """An `openOrders` row (cassette `test_get_open_orders.yaml`), plus `cloid` when one was sent."""
        row = {
            "coin": self.coin,
            "limitPx": fmt.px(self.limit_px),
            "oid": self.oid,
            "side": self.side,
            "sz": fmt.sz(self.remaining, self.sz_decimals),
            "timestamp": self.timestamp,
        }
        if self.cloid is not None:
            row["cloid"] = self.cloid
        return row
