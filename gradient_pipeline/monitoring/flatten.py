"""The emergency flatten loop: cancel, read, close — retried with capped exponential backoff until the account is
flat. It never gives up on its own.

Why a loop that never stops: an emergency stop runs exactly when things are going wrong (exchange 5xx, timeouts,
an order outage). A stop that gives up after a few failures leaves the book open at the worst moment, silently. So:

- every step (the open-orders read and cancels, the `clearinghouseState` read, the mids read, the order batch)
  may fail; a failed pass is retried after `Backoff.delay(n)` (n = consecutive failed passes), capped at
  `risk.flatten_backoff_max_s`; a pass that made progress resets the backoff;
- every pass prints one progress line (`say`) naming what failed, what is still open and whether the halt is set;
- after `risk.flatten_deadline_s` it keeps trying and calls `on_still_open` (an alert "STILL OPEN: …") every
  `risk.flatten_still_open_alert_interval_s`;
- while the halt is not set (its store was locked) `try_halt` is retried on every pass;
- Ctrl-C (KeyboardInterrupt) or a Dagster run termination stops it: the last known open positions are said and the
  exception propagates (the caller prints the report).

Reduce-only IOC orders cannot overshoot, so re-sending after an ambiguous batch is safe: every pass re-reads the
positions from the exchange first. The IOC limit widens each order round (mid ± slippage_cap × 2^round, capped).
In `dry_run` nothing is sent: one successful read reports what would be closed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from gradient_pipeline.backoff import Backoff
from gradient_pipeline.config import GradientConfig

log = logging.getLogger(__name__)

PROGRESS_PAUSE_S = 0.2  # after an order round that went through: let fills settle before re-reading positions
MAX_KEPT_ERRORS = 50  # a long outage must not grow the report without bound; the count is kept separately


def open_text(remaining: dict[str, float] | None) -> str:
    if remaining is None:
        return "unknown (no successful account read yet)"
    if not remaining:
        return "nothing"
    return ", ".join(f"{c} {s:+g}" for c, s in sorted(remaining.items()))


def halt_text(report) -> str:
    return "halt set" if report.halted else f"HALT NOT SET ({report.halt_note or 'pending'})"


def retry_until_flat(
    trading,
    cfg: GradientConfig,
    report,
    db_path: str | None = None,
    *,
    say: Callable[[str], None] | None = None,
    on_still_open: Callable[[object, float], None] | None = None,
    try_halt: Callable[[], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Cancel every open order and close every position until flat (see the module docstring). Updates `report`
    (a `monitoring.emergency.FlattenReport`) in place; returns only when flat (or after one read in dry_run)."""
    from gradient_pipeline.monitoring.emergency import (
        DUST_USD,
        MAX_FLATTEN_SLIPPAGE_BPS,
        _record_orders,
        _record_outcomes,
        cancel_all,
        flatten_orders,
    )

    say = say or log.warning
    policy = Backoff.from_config(cfg)
    deadline_s = cfg.risk.flatten_deadline_s
    alert_every_s = cfg.risk.flatten_still_open_alert_interval_s
    send = cfg.sends_orders
    started = clock()
    next_alert = started + deadline_s
    failures = 0
    order_round = 0
    last_known: dict[str, float] | None = None
    bps = cfg.execution.slippage_cap_bps

    def note(msg: str) -> None:
        report.error_count += 1
        if len(report.errors) < MAX_KEPT_ERRORS:
            report.errors.append(msg)

    try:
        while True:
            problem = None
            try:
                if send:
                    before = len(report.cancel_errors)
                    cancel_all(trading, report)
                    if len(report.cancel_errors) > before:
                        problem = f"{len(report.cancel_errors) - before} cancel(s) failed"
                state = trading.account_state()
                report.account_value = state.account_value
                open_pos = {c: p for c, p in state.positions.items() if abs(p.position_value) > DUST_USD or p.szi != 0}
                last_known = {c: p.szi for c, p in open_pos.items()}
                report.remaining = dict(last_known)
                report.positions_read = True
                if not report.closed and open_pos:
                    report.closed = dict(last_known)
                if not open_pos and problem is None:
                    say(f"[{clock() - started:.0f}s] {report.stop_id}: account is FLAT; {halt_text(report)}")
                    return
                if open_pos:
                    mids = trading.all_mids()
                    slip = min(bps * 2**order_round, MAX_FLATTEN_SLIPPAGE_BPS)
                    orders = flatten_orders(open_pos, mids, trading.instruments(), slip, report.stop_id,
                                            order_round)
                    report.rounds += 1
                    report.orders_sent += len(orders)
                    if not send:
                        return
                    priced = {o.coin for o in orders}
                    unpriced = sorted(c for c in open_pos if c not in priced)
                    if unpriced:  # no mid and no position value to price a closing order: retry, say so
                        problem = f"no price to close {', '.join(unpriced)}"
                    _record_orders(db_path, report.stop_id, orders, mids, order_round, "sending")
                    outcomes = trading.bulk_orders(orders)
                    _record_outcomes(db_path, outcomes)
                    bad = [o for o in outcomes if o.kind in ("rejected", "ambiguous")]
                    for o in bad:
                        note(f"round {order_round} {o.cloid[:10]}…: {o.kind}: {o.error}")
                    say(f"[{clock() - started:.0f}s] {report.stop_id}: round {order_round}: {len(orders)} reduce-only "
                        f"IOC order(s) at ±{slip:g} bp, {len(orders) - len(bad)} accepted"
                        + (f", {len(bad)} failed ({bad[0].error})" if bad else "")
                        + f"; open before: {open_text(last_known)}; {halt_text(report)}")
                    order_round += 1 if orders else 0
                    if bad:
                        problem = problem or f"{len(bad)} of {len(orders)} order(s) failed: {bad[0].error}"
            except Exception as err:  # noqa: BLE001 - every failure is retried; the message names it
                problem = f"{type(err).__name__}: {str(err)[:300]}"
                note(problem)
            if try_halt is not None and not report.halted:
                try_halt()
            if problem is None:  # progress (orders went through): re-read soon, with a fresh backoff
                failures = 0
                sleep(PROGRESS_PAUSE_S)
                continue
            failures += 1
            delay = policy.delay(failures)
            elapsed = clock() - started
            say(f"[{elapsed:.0f}s] {report.stop_id}: not flat yet — {problem}; open: {open_text(last_known)}; "
                f"{halt_text(report)}; retry {failures} in {delay:.1f}s (Ctrl-C stops and reports)")
            if not send and elapsed >= deadline_s:
                raise RuntimeError(f"dry_run flatten could not read the account within {deadline_s:g}s: {problem}")
            if send and clock() >= next_alert:
                report.still_open_alerts += 1
                if on_still_open is not None:
                    try:
                        on_still_open(report, elapsed)
                    except Exception as err:  # noqa: BLE001 - an alert problem must never stop the flatten
                        log.error("STILL OPEN alert failed: %s: %s", type(err).__name__, err)
                next_alert = clock() + alert_every_s
            sleep(delay)
    except BaseException as err:  # Ctrl-C, SystemExit, a Dagster run termination: say what is open, then stop
        if isinstance(err, Exception):
            raise
        report.interrupted = True
        say(f"{report.stop_id}: flatten STOPPED ({type(err).__name__}) after {clock() - started:.0f}s; "
            f"STILL OPEN (last read): {open_text(last_known)}; {halt_text(report)}")
        raise


def still_open_alert(report, elapsed_s: float):
    """The "STILL OPEN" alert (a failure: never rate-limited; one key per stop and elapsed minute)."""
    from gradient_pipeline.monitoring.alerts import Alert

    body = (f"Emergency stop {report.stop_id} is still trying after {elapsed_s:.0f}s and the account is NOT flat.\n"
            f"STILL OPEN: {open_text(report.remaining)}\n{halt_text(report)}.\n"
            f"Last errors: {'; '.join(report.errors[-3:]) or 'none'}\n"
            "It keeps retrying. Check the exchange; close the positions in the exchange UI if this persists.")
    return Alert("still_open", f"still_open:{report.stop_id}:{int(elapsed_s // 60)}", "failure",
                 f"[gradient] STILL OPEN: {open_text(report.remaining)}", body)
