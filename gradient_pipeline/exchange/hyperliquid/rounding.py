"""Hyperliquid's instrument rules (pure): lot sizes, price precision, the minimum order value.

Size: a multiple of 10^-szDecimals. Price: at most 5 significant figures and at most 6 − szDecimals decimals;
integer prices are always valid. Buys round up and sells down, so a rounded limit is never less aggressive than
asked; sizes floor, so a reduce-only order never exceeds the position it closes. Orders below $10 of notional are
rejected (reduce-only closes of a whole position excepted).

`HyperliquidInstrument` packages these rules per coin as the venue-neutral `InstrumentSpec` the planner asks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from hyperliquid.utils.signing import float_to_wire

PERP_MAX_DECIMALS = 6
PRICE_SIG_FIGS = 5
MIN_NOTIONAL_USD = 10.0


def round_size(sz: float, sz_decimals: int) -> float:
    """Floor |sz| to the coin's lot size (sign kept)."""
    q = Decimal(1).scaleb(-sz_decimals)
    d = Decimal(repr(abs(sz))).quantize(q, rounding=ROUND_FLOOR)
    return float(d) if sz >= 0 else -float(d)


def price_decimals(px: float, sz_decimals: int) -> int:
    """Decimals allowed for a perp price of this magnitude."""
    d = Decimal(repr(px))
    magnitude = d.adjusted()  # floor(log10(px))
    return max(0, min(PERP_MAX_DECIMALS - sz_decimals, PRICE_SIG_FIGS - 1 - magnitude))


def round_price(px: float, sz_decimals: int, is_buy: bool) -> float:
    """A valid perp limit price at or beyond `px` in the order's direction (buys up, sells down)."""
    if not px > 0:
        raise ValueError(f"price must be positive, got {px!r}")
    rounding = ROUND_CEILING if is_buy else ROUND_FLOOR
    decimals = price_decimals(px, sz_decimals)
    out = Decimal(repr(px)).quantize(Decimal(1).scaleb(-decimals), rounding=rounding)
    # Rounding up can add a digit (99999.5 -> 100000): re-check the significant figures at the new magnitude.
    decimals2 = price_decimals(float(out), sz_decimals)
    if decimals2 < decimals:
        out = out.quantize(Decimal(1).scaleb(-decimals2), rounding=rounding)
    if out <= 0:  # a sell rounded down to zero: use the smallest valid tick instead
        out = Decimal(1).scaleb(-decimals)
    return float(out)


def is_valid_price(px: float, sz_decimals: int) -> bool:
    d = Decimal(float_to_wire(px))
    if d == d.to_integral_value():
        return True
    decimals = -d.as_tuple().exponent
    sig = len(d.normalize().as_tuple().digits)
    return decimals <= PERP_MAX_DECIMALS - sz_decimals and sig <= PRICE_SIG_FIGS


def is_valid_size(sz: float, sz_decimals: int) -> bool:
    d = Decimal(float_to_wire(sz))
    return d > 0 and -d.as_tuple().exponent <= sz_decimals


@dataclass(frozen=True)
class HyperliquidInstrument:
    """One perp's rules from `meta` (implements `venue.model.InstrumentSpec`)."""

    coin: str
    sz_decimals: int
    max_leverage: int = 1
    delisted: bool = False
    min_notional_usd: float = MIN_NOTIONAL_USD

    def round_size(self, sz: float) -> float:
        return round_size(sz, self.sz_decimals)

    def round_price(self, px: float, is_buy: bool) -> float:
        return round_price(px, self.sz_decimals, is_buy)

    def is_valid_size(self, sz: float) -> bool:
        return is_valid_size(sz, self.sz_decimals)

    def is_valid_price(self, px: float) -> bool:
        return is_valid_price(px, self.sz_decimals)

    def price_tick(self, px: float) -> float:
        return 10.0 ** -max(0, min(PERP_MAX_DECIMALS - self.sz_decimals, PRICE_SIG_FIGS - 1 - math.floor(math.log10(px))))

    def describe_price_rule(self) -> str:
        return f"{PRICE_SIG_FIGS} significant figures / {PERP_MAX_DECIMALS - self.sz_decimals} decimals"


def instruments_from_meta(meta: dict) -> dict[str, HyperliquidInstrument]:
    """`{"universe": [{"name", "szDecimals", "maxLeverage", "isDelisted"}, …]}` → coin → instrument."""
    return {
        a["name"]: HyperliquidInstrument(a["name"], int(a["szDecimals"]), int(a.get("maxLeverage", 1)),
                                         bool(a.get("isDelisted", False)))
        for a in meta["universe"]
    }
