"""The drawdown decision: one pure function used by the drawdown sensor, `status` and the watchdog.

Given this tick's equity reading (or the fact that the read failed), the high-water mark and how many consecutive
ticks before this one were at or past the stop level, `evaluate` says:

- ``ok``      below `risk.drawdown_warn_pct`;
- ``warn``    at or past the warning level — or past the stop level on fewer than `risk.drawdown_stop_ticks`
              consecutive ticks (one bad tick must not flatten the book; `pending_stop` says so);
- ``stop``    past `emergency_stop_drawdown_pct` on K consecutive ticks: flatten and halt;
- ``cannot_evaluate`` the check is blind: a mode that trades with no account configured, no book (operational
              store) to read the high-water mark from, the exchange unreachable for longer than
              `risk.drawdown_unreachable_max_s`, or the last equity reading older than `risk.drawdown_max_equity_age_s`.
              `alarm` is True then: the sensor tick fails (red in the UI) and alerts. A single failed read within the
              tolerance is ``cannot_evaluate`` with `alarm` False (the next tick tries again; the streak is kept).

Nothing here does I/O; `read_equity` (the one account read per tick) is kept beside it so every caller reads equity
the same way.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass

from gradient_pipeline.config import GradientConfig

LEVELS = ("ok", "warn", "stop", "cannot_evaluate")


@dataclass(frozen=True)
class EquityReading:
    """Mark-to-market account value and when it was received (wall clock, naive UTC)."""

    value: float
    received_at: dt.datetime
    n_positions: int = 0


@dataclass(frozen=True)
class DrawdownLimits:
    warn_pct: float
    stop_pct: float
    stop_ticks: int = 2
    unreachable_max_s: float = 600.0
    max_equity_age_s: float = 900.0

    @classmethod
    def from_config(cls, cfg: GradientConfig) -> DrawdownLimits:
        r = cfg.risk
        return cls(r.drawdown_warn_pct, cfg.emergency_stop_drawdown_pct, r.drawdown_stop_ticks,
                   r.drawdown_unreachable_max_s, r.drawdown_max_equity_age_s)


@dataclass(frozen=True)
class DrawdownDecision:
    level: str  # ok | warn | stop | cannot_evaluate
    reason: str
    drawdown_pct: float | None = None
    equity: float | None = None
    hwm: float | None = None  # the mark after this reading (a new high raises it)
    breaching_ticks: int = 0  # consecutive ticks at/past the stop level, this one included
    pending_stop: bool = False  # past the stop level, but fewer than K consecutive ticks so far
    alarm: bool = False  # cannot_evaluate that must fail the tick and alert

    @property
    def at_stop_level(self) -> bool:
        return self.level == "stop" or self.pending_stop

    @property
    def evaluated(self) -> bool:
        return self.level != "cannot_evaluate"

    def as_dict(self) -> dict:
        return asdict(self)


def drawdown_pct(equity: float, hwm: float | None) -> float:
    """Percent below the high-water mark (0 at or above it)."""
    if hwm is None or hwm <= 0:
        return 0.0
    return max(0.0, (hwm - equity) / hwm * 100.0)


def evaluate(
    reading: EquityReading | None,
    hwm: float | None,
    breaching_ticks: int,
    limits: DrawdownLimits,
    now: dt.datetime,
    *,
    account_configured: bool = True,
    book_available: bool = True,
    last_success_at: dt.datetime | None = None,
    read_error: str | None = None,
) -> DrawdownDecision:
    """Decide ok / warn / stop / cannot_evaluate (see the module docstring). Pure.

    `reading` None means this tick's account read failed (`read_error` says why); `last_success_at` is when the
    last read succeeded (None: never). `breaching_ticks` is the streak *before* this tick.
    """
    if not account_configured:
        return DrawdownDecision("cannot_evaluate", "the mode trades but no account is configured "
                                "(GRADIENT_ACCOUNT_ADDRESS / GRADIENT_PRIVATE_KEY unset)", alarm=True)
    if not book_available:
        return DrawdownDecision("cannot_evaluate", "no book: the high-water mark and halt state cannot be read",
                                alarm=True)
    if reading is None:
        since = None if last_success_at is None else (now - last_success_at).total_seconds()
        what = f"account read failed ({read_error or 'unknown error'})"
        if since is None or since > limits.unreachable_max_s:
            for_how_long = "no successful read yet" if since is None else f"no successful read for {since:.0f}s"
            return DrawdownDecision("cannot_evaluate", f"exchange unreachable: {what}; {for_how_long} "
                                    f"(limit {limits.unreachable_max_s:g}s)", breaching_ticks=breaching_ticks,
                                    hwm=hwm, alarm=True)
        return DrawdownDecision("cannot_evaluate", f"{what}; tolerated: last good read {since:.0f}s ago "
                                f"(limit {limits.unreachable_max_s:g}s)", breaching_ticks=breaching_ticks, hwm=hwm)
    age = (now - reading.received_at).total_seconds()
    if age > limits.max_equity_age_s:
        return DrawdownDecision("cannot_evaluate", f"last equity reading is {age:.0f}s old (limit "
                                f"{limits.max_equity_age_s:g}s)", equity=reading.value, hwm=hwm,
                                breaching_ticks=breaching_ticks, alarm=True)
    value = reading.value
    if value is None or not math.isfinite(value):
        return DrawdownDecision("cannot_evaluate", f"account value is not a number ({value!r})", hwm=hwm,
                                breaching_ticks=breaching_ticks, alarm=True)
    mark = max(x for x in (hwm, value) if x is not None)
    dd = drawdown_pct(value, mark)
    base = dict(drawdown_pct=dd, equity=value, hwm=mark)
    if dd >= limits.stop_pct:
        ticks = breaching_ticks + 1
        if ticks >= limits.stop_ticks:
            return DrawdownDecision("stop", f"drawdown {dd:.2f}% ≥ stop {limits.stop_pct:g}% on {ticks} consecutive "
                                    "tick(s)", breaching_ticks=ticks, **base)
        return DrawdownDecision("warn", f"drawdown {dd:.2f}% ≥ stop {limits.stop_pct:g}% (tick {ticks} of "
                                f"{limits.stop_ticks}: the stop fires if the next tick confirms it)",
                                breaching_ticks=ticks, pending_stop=True, **base)
    if dd >= limits.warn_pct:
        return DrawdownDecision("warn", f"drawdown {dd:.2f}% ≥ warning {limits.warn_pct:g}%", **base)
    return DrawdownDecision("ok", f"drawdown {dd:.2f}% below the warning level {limits.warn_pct:g}%", **base)


def read_equity(cfg: GradientConfig, account_address: str, client=None):
    """The account read per tick → `AccountState` whose `account_value` is the equity in every account mode (the
    venue adapter's cheap read: no metadata, the account mode cached for an hour)."""
    from gradient_pipeline.venue.registry import read_account

    return read_account(cfg, account_address, client)
