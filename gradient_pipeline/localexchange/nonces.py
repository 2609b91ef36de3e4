"""Per-signer nonce rules (nonces-and-api-wallets.md, reference §4.4).

For each signer the 100 highest nonces are kept. A new nonce must be unused, greater than the smallest kept one
(once 100 are kept), and within (T − 2 days, T + 1 day) of the exchange's time T.
"""

from __future__ import annotations

import heapq

KEEP = 100
DAY_MS = 86_400_000
WINDOW_BEFORE_MS = 2 * DAY_MS
WINDOW_AFTER_MS = 1 * DAY_MS


class NonceBook:
    def __init__(self) -> None:
        self._kept: dict[str, list[int]] = {}  # signer -> min-heap of the highest KEEP nonces
        self._sets: dict[str, set[int]] = {}

    def check(self, signer: str, nonce: int, now_ms: int) -> str | None:
        """The live error text if `nonce` is not acceptable for `signer` at `now_ms`, else None."""
        kept = self._sets.get(signer, set())
        if nonce in kept:
            return f"Invalid nonce: duplicate nonce {nonce}"
        heap = self._kept.get(signer, [])
        if len(heap) >= KEEP and nonce <= heap[0]:
            return f"Invalid nonce: nonce too low {nonce} < {heap[0]}"
        low, high = now_ms - WINDOW_BEFORE_MS, now_ms + WINDOW_AFTER_MS
        if nonce <= low:
            return f"Invalid nonce: nonce too low {nonce} < {low}"
        if nonce >= high:
            return f"Invalid nonce: nonce too high {nonce} > {high}"
        return None

    def use(self, signer: str, nonce: int) -> None:
        heap = self._kept.setdefault(signer, [])
        kept = self._sets.setdefault(signer, set())
        heapq.heappush(heap, nonce)
        kept.add(nonce)
        while len(heap) > KEEP:
            kept.discard(heapq.heappop(heap))

    def to_dict(self) -> dict[str, list[int]]:
        return {signer: sorted(heap) for signer, heap in self._kept.items()}

    @classmethod
    def from_dict(cls, data: dict[str, list[int]]) -> NonceBook:
        book = cls()
        for signer, nonces in data.items():
            for n in nonces:
                book.use(signer, int(n))
        return book
