"""Matching against the market's (synthetic) book.

The market side supplies the book at replay-now (`MarketView.book`). Liquidity taken by our fills is remembered
(`Liquidity`) until the replay clock moves, so a second order in the same instant sees the depleted book instead of
the same depth again; a new instant brings a fresh book. Pure functions plus that one small ledger.
"""

from __future__ import annotations

import math

Level = tuple[float, float]  # (px, sz)


def floor_sz(x: float, sz_decimals: int) -> float:
    """Round a size down to `sz_decimals` (a fill never exceeds what is available); tolerant of float noise."""
    scale = 10**sz_decimals
    return math.floor(x * scale + 1e-9) / scale


class Liquidity:
    """Book depth consumed at the current instant, per (coin, side, px)."""

    def __init__(self) -> None:
        self._at_ms: int | None = None
        self._taken: dict[tuple[str, str, float], float] = {}

    def reset_if_moved(self, now_ms: int) -> None:
        if now_ms != self._at_ms:
            self._at_ms = now_ms
            self._taken.clear()

    def remaining(self, coin: str, side: str, levels: list[Level]) -> list[Level]:
        """`levels` (side "bid"/"ask", best first) minus what was taken; empty levels dropped."""
        out = []
        for px, sz in levels:
            left = sz - self._taken.get((coin, side, px), 0.0)
            if left > 1e-12:
                out.append((px, left))
        return out

    def take(self, coin: str, side: str, px: float, sz: float) -> None:
        key = (coin, side, px)
        self._taken[key] = self._taken.get(key, 0.0) + sz


def crosses(is_buy: bool, limit_px: float, level_px: float) -> bool:
    """Would an order at `limit_px` trade against a level priced `level_px` on the other side?"""
    return level_px <= limit_px if is_buy else level_px >= limit_px


def walk(levels: list[Level], is_buy: bool, limit_px: float, qty: float, sz_decimals: int) -> list[Level]:
    """Taker fills (px, sz) for `qty` walking opposite-side `levels` (best first) up to `limit_px`."""
    fills: list[Level] = []
    left = qty
    for px, avail in levels:
        if left <= 0 or not crosses(is_buy, limit_px, px):
            break
        take = floor_sz(min(left, avail), sz_decimals)
        if take <= 0:
            continue
        fills.append((px, take))
        left = round(left - take, sz_decimals)
    return fills


def crossing_depth(levels: list[Level], is_buy: bool, limit_px: float) -> float:
    """Opposite-side size priced at or through `limit_px` (what a resting order at that price would meet)."""
    return sum(sz for px, sz in levels if crosses(is_buy, limit_px, px))
