"""The venue's dead-man switch around a rebalance: resting orders die on the exchange if this process dies.

The venue's dead-man switch (`ExecutionVenue.schedule_cancel`; Hyperliquid's `scheduleCancel`) cancels every open order of the account at a given time unless that time is moved
or cleared first. A rebalance arms it at *now + T* before each order round (`DeadManSwitch.arm`), so at any
moment of the run the orders it may have left resting are at most T seconds from being cancelled by the venue
itself — even after kill -9, a power cut or a hung process that never reaches its own cleanup. The context
manager (`dead_man_switch`) disarms it when the run ends, whatever the ending, so a normal finish leaves nothing
scheduled.

Rules the venue applies (reference §10): the time must be ≥ venue now + 5 s (T is ≥ 10 s by config); the switch
may *fire* at most 10 times per UTC day (arming and clearing do not count); on mainnet it needs $1M of traded
volume first. It cancels orders, never positions.

When the switch cannot be armed (refused by the venue, or the request failed) the rebalance goes on — IOC orders
never rest, and post-only orders are cancelled by the run itself after `passive_timeout_s` — but it says so
loudly, never silently: a warning in the log, a run event starting "DEAD-MAN SWITCH NOT ARMED", the failures in
the rebalance's result (`RebalanceResult.dead_man_failures`, shown in the run's metadata) and an alert
(`monitoring/alerts.py` `dead_man_condition`, raised by the caller: deduplicated in the book until a later
rebalance arms the switch again).

T should exceed the longest order round (sending + `passive_timeout_s`); the default 120 s does.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator

from gradient_pipeline.venue.errors import ActionRefusedError

log = logging.getLogger(__name__)


def get_timestamp_ms() -> int:
    """The local wall clock in epoch ms (what the venue compares the switch time with, ± its clock skew)."""
    return int(time.time() * 1000)

NOT_ARMED = "DEAD-MAN SWITCH NOT ARMED"


class DeadManSwitch:
    """Arms/disarms the venue's scheduleCancel for one run. `seconds=None` (or a client that cannot sign, e.g.
    dry_run) makes every call a no-op."""

    def __init__(self, client, seconds: float | None, say: Callable[[str], None] | None = None,
                 now_ms: Callable[[], int] = get_timestamp_ms):
        self.client = client
        self.seconds = seconds if (seconds is not None and getattr(client, "can_sign", False)) else None
        self._say = say or log.info
        self._now_ms = now_ms
        self.armed_until_ms: int | None = None  # what the venue last accepted (None: not armed)
        self.failures: list[str] = []
        self.ever_armed = False  # the venue accepted at least one arm in this run
        self._refused = False  # the venue said no (volume gate, daily limit, clock): it will say no again this run
        self._maybe_armed = False  # armed, or a request whose fate is unknown went out

    @classmethod
    def off(cls) -> DeadManSwitch:
        return cls(None, None)

    @property
    def enabled(self) -> bool:
        return self.seconds is not None

    def arm(self) -> bool:
        """(Re-)arm at now + T. True if the venue accepted it; False (said loudly) if it did not."""
        if not self.enabled or self._refused:
            return False
        at = self._now_ms() + int(self.seconds * 1000)
        try:
            self.armed_until_ms = self.client.schedule_cancel(at)
            self._maybe_armed = True
            self.ever_armed = True
        except Exception as err:  # noqa: BLE001 - trading goes on; the failure is reported, not hidden
            if isinstance(err, ActionRefusedError):
                self._refused = True  # not retried in this run: the same refusal would only repeat
            else:
                self._maybe_armed = True  # a timeout or 5xx: it may have been armed after all
            msg = f"{NOT_ARMED}: scheduleCancel at now+{self.seconds:g}s failed ({type(err).__name__}: {err}); " \
                  "orders left resting by a dying process will not be cancelled by the exchange"
            self.failures.append(msg)
            log.warning(msg)
            self._say(msg)
            return False
        return True

    def clear(self) -> None:
        """Disarm (only if this run armed it, or tried to: a failed arm may still have reached the venue)."""
        if not self.enabled or not self._maybe_armed:
            return
        try:
            self.client.clear_schedule_cancel()
            self.armed_until_ms = None
            self._maybe_armed = False
        except Exception as err:  # noqa: BLE001 - the switch then fires at its time: open orders (none expected) die
            msg = (f"dead-man switch could not be cleared ({type(err).__name__}: {err}); the exchange will cancel "
                   f"all open orders of the account at {self.armed_until_ms} ms")
            log.warning(msg)
            self._say(msg)


@contextlib.contextmanager
def dead_man_switch(client, seconds: float | None, say: Callable[[str], None] | None = None
                    ) -> Iterator[DeadManSwitch]:
    """`with dead_man_switch(client, T, say) as switch:` — call `switch.arm()` before each order round; the switch
    is cleared on the way out (normal return, exception, KeyboardInterrupt). Only a process that dies without
    running this `finally` leaves it armed — which is the point."""
    switch = DeadManSwitch(client, seconds, say)
    try:
        yield switch
    finally:
        switch.clear()
