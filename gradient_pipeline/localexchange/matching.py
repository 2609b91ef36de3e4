"""Matching against the market's (synthetic) book.

The market side supplies the book at replay-now (`MarketView.book`). Liquidity taken by our fills is remembered
(`Liquidity`) and recovers over replay time at a documented rate, so a second order at the same instant (or soon
after) sees the depleted book instead of the same depth again. Pure functions plus that one small ledger.
"""

from __future__ import annotations

import math

Level = tuple[float, float]  # (px, sz)


def floor_sz(x: float, sz_decimals: int) -> float:
    """Round a size down to `sz_decimals` (a fill never exceeds what is available); tolerant of float noise."""
    scale = 10**sz_decimals
    return math.floor(x * scale + 1e-9) / scale


class Liquidity:
    """Book depth our own fills consumed, per (coin, side, px), recovering over replay time.

    A taker fill removes its size from that price level; the removed size comes back exponentially with a
    half-life of `half_life_ms` of replay time (default 60 s: 50% after a minute, ~0.1% after ten). So two
    sweeps at the same instant — or a split / retried order a few seconds later on a running clock — cannot both
    take the whole visible book at the same prices, and after a 4h window the book is whole again. A rewound
    clock forgets everything. `half_life_ms=0` restores the old rule (a fresh book at every new instant).
    """

    def __init__(self, half_life_ms: float = 60_000.0) -> None:
        if half_life_ms < 0:
            raise ValueError(f"book recovery half-life must be >= 0 ms, got {half_life_ms}")
        self.half_life_ms = float(half_life_ms)
        self._at_ms: int | None = None
        self._taken: dict[tuple[str, str, float], float] = {}

    def reset_if_moved(self, now_ms: int) -> None:
        """Let the consumed depth recover for the replay time elapsed since the last call."""
        if self._at_ms is None or now_ms < self._at_ms or (now_ms != self._at_ms and self.half_life_ms == 0):
            self._taken.clear()
        elif now_ms > self._at_ms and self._taken:
            keep = 0.5 ** ((now_ms - self._at_ms) / self.half_life_ms)
            self._taken = {k: v * keep for k, v in self._taken.items() if v * keep > 1e-12}
        self._at_ms = now_ms

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
