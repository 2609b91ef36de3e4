"""One drawdown check: read the book (read-only), read equity from the exchange (one account read), decide with
`drawdown.evaluate`, record the heartbeat, and alert if the check is blind. Used by the drawdown sensor (every
tick) and, without recording, by `status`.

Never blind while a writer runs: the operations book is read without waiting for writers (WAL / MVCC); if it
cannot be read at all, the halt state, warning state and high-water mark of the previous evaluation (the
heartbeat) are used — at most one tick old — and equity comes from the exchange, not from snapshots a queued job
would write.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from gradient_pipeline.config import GradientConfig
from gradient_pipeline.monitoring.drawdown import DrawdownDecision, DrawdownLimits, EquityReading, evaluate, read_equity
from gradient_pipeline.monitoring.heartbeat import Heartbeat, read_heartbeat, write_heartbeat

log = logging.getLogger(__name__)


class DrawdownCheckBlind(RuntimeError):
    """The drawdown check cannot evaluate (no account, no book, exchange unreachable, equity too old). Raised from
    the sensor so its tick fails (red in the UI); the alert has already been sent."""


@dataclass
class CheckResult:
    decision: DrawdownDecision
    heartbeat: Heartbeat
    halted: bool | None  # None: unknown (no book and no earlier evaluation)
    halt_text: str
    warned: bool
    open_positions: int | None  # from this tick's account read; None if the read failed
    notes: list[str]


def account_address() -> str | None:
    """The master address reads use (`GRADIENT_ACCOUNT_ADDRESS`, else the key's own address); None if neither."""
    from gradient_pipeline.venue.registry import configured_account

    return configured_account()


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _read_book(db_path: str):
    """(halt status, warned, high-water mark) from the operations book (reads never wait for a writer)."""
    from gradient_pipeline.book import connect
    from gradient_pipeline.monitoring.alerts import is_active
    from gradient_pipeline.monitoring.equity import equity_state
    from gradient_pipeline.monitoring.halt import halt_status

    with connect(db_path) as conn:  # short: released before anything else happens
        st = equity_state(conn)
        halt = halt_status(conn)
        warned = is_active(conn, "drawdown_warn")
    return halt, warned, st.hwm


def check_drawdown(cfg: GradientConfig, db_path: str, *, record: bool = True, now: dt.datetime | None = None,
                   client=None) -> CheckResult:
    """Evaluate the drawdown once (see the module docstring). `record=False` (status) leaves the heartbeat and the
    breaching streak untouched and sends no alert."""
    now = now or _utcnow()
    try:
        prev = read_heartbeat(db_path)
    except Exception as err:  # noqa: BLE001 - no book: judged below like a missing book
        log.error("drawdown heartbeat unreadable: %s", err)
        prev = None
    notes: list[str] = []
    address = account_address()
    book_ok, halted, halt_text, warned, book_hwm = True, None, "unknown", False, None
    try:
        halt, warned, book_hwm = _read_book(db_path)
        halted, halt_text = halt.halted, halt.describe()
    except Exception as err:  # noqa: BLE001 - the book is unreachable (PostgreSQL down, file unreadable)
        if prev is None:
            book_ok = False
            notes.append(f"the operations book cannot be read ({type(err).__name__}: {str(err)[:160]}) and there is "
                         "no earlier evaluation to fall back on")
        else:
            halted, warned = prev.halted, bool(prev.warned)
            halt_text = ("HALTED" if halted else "not halted") + " (last known: the book cannot be read)"
            notes.append(f"the operations book cannot be read ({type(err).__name__}): halt state and high-water mark "
                         f"of the previous evaluation ({prev.evaluated_at:%H:%M:%S} UTC) used")
    reading, read_error, n_positions = None, None, None
    if address:
        try:
            state = read_equity(cfg, address, client)
            reading = EquityReading(state.account_value, now, len(state.positions))
            n_positions = len(state.positions)
        except Exception as err:  # noqa: BLE001 - a failed read is an outcome the decision handles
            read_error = f"{type(err).__name__}: {str(err)[:200]}"
    hwm_candidates = [x for x in (book_hwm, prev.hwm if prev else None) if x is not None]
    hwm = max(hwm_candidates) if hwm_candidates else None
    last_success = now if reading is not None else (prev.last_success_at if prev else None)
    decision = evaluate(reading, hwm, prev.breaching_ticks if prev else 0, DrawdownLimits.from_config(cfg), now,
                        account_configured=bool(address), book_available=book_ok, last_success_at=last_success,
                        read_error=read_error)
    hb = Heartbeat(
        evaluated_at=now, level=decision.level, reason=decision.reason,
        last_ok_at=now if decision.evaluated else (prev.last_ok_at if prev else None),
        last_success_at=last_success,
        equity=reading.value if reading else (prev.equity if prev else None),
        equity_at=reading.received_at if reading else (prev.equity_at if prev else None),
        hwm=decision.hwm if decision.hwm is not None else hwm,
        drawdown_pct=decision.drawdown_pct, breaching_ticks=decision.breaching_ticks,
        halted=halted, warned=warned, alarm_alerted_at=prev.alarm_alerted_at if prev else None,
    )
    if record:
        if decision.alarm:
            _alert_blind(cfg, decision, hb, now)
        try:
            write_heartbeat(db_path, hb)
        except Exception as err:  # noqa: BLE001 - the decision stands; the watchdog notices a stale heartbeat
            log.error("drawdown heartbeat not recorded: %s: %s", type(err).__name__, err)
            notes.append("heartbeat NOT recorded (the book is busy or unreachable)")
    return CheckResult(decision, hb, halted, halt_text, bool(warned), n_positions, notes)


def _alert_blind(cfg: GradientConfig, decision: DrawdownDecision, hb: Heartbeat, now: dt.datetime) -> None:
    """Alert "drawdown check cannot evaluate", at most once per `alerts.min_interval_s` (≥ 5 min), without
    writing the book (sensors never write it); the last alert time is kept in the heartbeat."""
    from gradient_pipeline.monitoring.alerts import Alert, deliver_unrecorded

    every = max(300, cfg.alerts.min_interval_s)
    if hb.alarm_alerted_at is not None and (now - hb.alarm_alerted_at).total_seconds() < every:
        return
    log.error("drawdown check cannot evaluate: %s", decision.reason)
    alert = Alert("drawdown_blind", f"drawdown_blind:{now:%Y%m%dT%H%M}", "failure",
                  "[gradient] drawdown check CANNOT EVALUATE — the stop is blind",
                  f"The drawdown stop cannot evaluate: {decision.reason}.\nUntil this is fixed a drawdown would NOT "
                  f"flatten the book ({cfg.mode} mode). Check the exchange connection, the account configuration and "
                  "the book; `gradient-pipeline status` exits 3 while this lasts.")
    if deliver_unrecorded(alert, cfg):
        hb.alarm_alerted_at = now
