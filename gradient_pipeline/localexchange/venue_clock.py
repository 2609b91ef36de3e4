"""The venue clock: the local exchange's one notion of "now" for signed actions.

The live exchange checks three client timestamps against its own (block) time, and so does this one, against
this clock and nothing else:
- the nonce window (a nonce must lie in (now − 2 days, now + 1 day));
- `expiresAfter` (an action whose `expiresAfter` is before now is refused: `Action already expired`);
- `scheduleCancel` (the time must be ≥ now + 5 s, and the cancel fires once now passes it).

Which clock. The SDK stamps nonces with the wall clock (`get_timestamp_ms()`) and clients compute
`expiresAfter` and `scheduleCancel` times as "wall now + n ms", so the default (`"wall"`) is the UTC wall clock
of the machine running the exchange, i.e. what the live venue's block time is to a client with a correct clock.
The *replay* clock (historical market time that moves when an operator advances it) is deliberately not used
for these checks: after a replay advance of 4 h, an SDK `now + 60 s` would otherwise be 4 h in the past.
Orders, fills and funding keep replay timestamps, as before.

So that tests and simulations need not sleep, an operator may move the venue clock forward (`advance(ms)`,
`POST /_local/venue_clock/advance`): the offset is added to the wall clock from then on (it never moves
backwards). Clients that stamp with their own wall clock then look that much "late" to the venue, exactly as a
client with a slow clock would on the live exchange (its `expiresAfter` horizons shrink by the offset).

`"replay"` mode makes the replay clock the venue clock for all three checks, for a client that stamps its
actions with the exchange's replay time instead of the wall clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable

VENUE_CLOCKS = ("wall", "replay")


class VenueClock:
    def __init__(self, source: str, replay_now_ms: Callable[[], int], wall_s: Callable[[], float] = time.time):
        if source not in VENUE_CLOCKS:
            raise ValueError(f"venue clock must be one of {VENUE_CLOCKS}, got {source!r}")
        self.source = source
        self._replay_now_ms = replay_now_ms
        self._wall_s = wall_s
        self.offset_ms = 0

    def now_ms(self) -> int:
        if self.source == "replay":
            return int(self._replay_now_ms())
        return int(self._wall_s() * 1000) + self.offset_ms

    def advance(self, ms: int) -> int:
        """Move the venue clock forward by `ms` (≥ 0); returns the new venue now. In replay mode the replay clock
        is the venue clock, so move that instead."""
        ms = int(ms)
        if ms < 0:
            raise ValueError(f"the venue clock only moves forward; got {ms} ms")
        if self.source == "replay":
            raise ValueError("the venue clock follows the replay clock (venue_clock='replay'): "
                             "advance the replay clock instead")
        self.offset_ms += ms
        return self.now_ms()
