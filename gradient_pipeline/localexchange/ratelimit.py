"""Per-IP request weight budget, as Hyperliquid enforces it (docs `rate-limits-and-user-limits.md`, reference §5.9).

A token bucket per client IP: capacity = the per-minute budget (default 1200), refilled continuously at
budget/60 per second of *wall* time (`time.monotonic`; the replay clock does not affect it). A request is admitted
if its base weight fits in the bucket; the extra weight that depends on the response size (candles, funding rows,
fills) is charged afterwards and may drive the bucket negative, which delays the next requests. An over-budget
request gets HTTP 429 with body `null`, exactly like the exchange.
"""

from __future__ import annotations

import threading
import time

DEFAULT_BUDGET_PER_MINUTE = 1200

_INFO_WEIGHT_2 = {"l2Book", "allMids", "clearinghouseState", "orderStatus", "spotClearinghouseState", "exchangeStatus"}
_INFO_WEIGHT_60 = {"userRole"}
_PER_20_ITEMS = {
    "recentTrades", "historicalOrders", "userFills", "userFillsByTime", "fundingHistory", "userFunding",
    "nonUserFundingUpdates", "twapHistory", "userTwapSliceFills", "userTwapSliceFillsByTime", "delegatorHistory",
    "delegatorRewards", "validatorStats",
}


def info_base_weight(info_type: str) -> int:
    if info_type in _INFO_WEIGHT_2:
        return 2
    if info_type in _INFO_WEIGHT_60:
        return 60
    return 20


def info_extra_weight(info_type: str, response) -> int:
    """Weight charged per item returned: +1 per 60 candles, +1 per 20 items for the history types."""
    if not isinstance(response, list):
        return 0
    if info_type == "candleSnapshot":
        return len(response) // 60
    if info_type in _PER_20_ITEMS:
        return len(response) // 20
    return 0


def exchange_weight(action: dict) -> int:
    """1 + floor(batch_length / 40) for batched actions (orders, cancels, modifies); 1 otherwise."""
    n = 0
    if isinstance(action, dict):
        for key in ("orders", "cancels", "modifies"):
            if isinstance(action.get(key), list):
                n = len(action[key])
                break
    return 1 + n // 40


class WeightLimiter:
    def __init__(self, budget_per_minute: float = DEFAULT_BUDGET_PER_MINUTE, clock=time.monotonic):
        if budget_per_minute <= 0:
            raise ValueError(f"rate limit budget must be > 0 weight/minute, got {budget_per_minute}")
        self.budget = float(budget_per_minute)
        self._rate = self.budget / 60.0
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # ip -> (tokens, last refill time)
        self.rejected = 0  # requests answered with HTTP 429 since start (all IPs; `reset` keeps it)

    def _refill(self, ip: str) -> float:
        now = self._clock()
        tokens, last = self._buckets.get(ip, (self.budget, now))
        tokens = min(self.budget, tokens + (now - last) * self._rate)
        self._buckets[ip] = (tokens, now)
        return tokens

    def try_acquire(self, ip: str, weight: int) -> bool:
        """Charge `weight` if it fits in the bucket; False (nothing charged) if the request is over budget."""
        with self._lock:
            tokens = self._refill(ip)
            if tokens < weight:
                self.rejected += 1
                return False
            self._buckets[ip] = (tokens - weight, self._buckets[ip][1])
            return True

    def charge(self, ip: str, weight: int) -> None:
        """Charge weight known only after the response (may go negative)."""
        if weight <= 0:
            return
        with self._lock:
            tokens = self._refill(ip)
            self._buckets[ip] = (tokens - weight, self._buckets[ip][1])

    def remaining(self, ip: str) -> float:
        with self._lock:
            return self._refill(ip)

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()
