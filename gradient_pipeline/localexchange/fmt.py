"""Numbers on the Hyperliquid wire: decimal strings with trailing zeros stripped but at least one decimal
(`"2986.3"`, `"113377.0"`, `"0.0"`), the way the live exchange prints prices, sizes and USD amounts."""

from __future__ import annotations

USD_DECIMALS = 6  # account values, margins, fees, PnL: the exchange prints USDC with 6 decimals
PX_DECIMALS = 8  # computed prices (averages, liquidation) are shown at float_to_wire precision


def num(x: float, decimals: int = PX_DECIMALS) -> str:
    """`x` rounded to `decimals`, trailing zeros stripped, always with a decimal point; never `-0.0`."""
    text = f"{round(float(x), decimals):.{decimals}f}"
    if "." in text:
        text = text.rstrip("0")
        if text.endswith("."):
            text += "0"
    if text.lstrip("-").strip("0.") == "":
        return "0.0"
    return text


def usd(x: float) -> str:
    return num(x, USD_DECIMALS)


def sz(x: float, sz_decimals: int) -> str:
    return num(x, sz_decimals)


def px(x: float) -> str:
    return num(x, PX_DECIMALS)
