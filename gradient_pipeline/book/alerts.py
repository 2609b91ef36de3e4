"""Alert state in the book: dedupe (`alerts_state`), every attempt (`alerts_sent`), and per-destination delivery
records (`alert_deliveries`). The policy (dedupe, rate limit, scrubbing, apprise) lives in monitoring/alerts.py;
this module only stores and reads. A destination is identified by `destination_id(url)` — a hash — because alert
URLs carry bot tokens and passwords; the URL itself is never stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gradient_pipeline.book.engine import insert, unit
from gradient_pipeline.book.halt import utcnow
from gradient_pipeline.book.schema import alert_deliveries, alerts_sent, alerts_state


def destination_id(url: str) -> str:
    """A stable, non-reversible id of an alert destination (sha256 of the URL, 16 hex digits)."""
    return hashlib.sha256(url.strip().encode()).hexdigest()[:16]


def is_active(conn: Connection, key: str) -> bool:
    """Whether the condition `key` has alerted and not cleared."""
    with unit(conn):
        v = conn.execute(sa.select(alerts_state.c.active).where(alerts_state.c.key == key)).scalar()
    return bool(v)


def log_attempt(conn: Connection, key: str, kind: str, severity: str, title: str, body: str, status: str,
                destinations: int) -> None:
    """Append one attempt to `alerts_sent` (title and body already scrubbed)."""
    with unit(conn, write=True):
        conn.execute(alerts_sent.insert().values(sent_at=utcnow(), key=key, kind=kind, severity=severity, title=title,
                                                 body=body, status=status, destinations=int(destinations)))


def last_sent_at(conn: Connection, kind: str) -> dt.datetime | None:
    """When an alert of `kind` was last delivered (rate limit)."""
    with unit(conn):
        return conn.execute(sa.select(sa.func.max(alerts_sent.c.sent_at))
                            .where(alerts_sent.c.kind == kind, alerts_sent.c.status == "sent")).scalar()


def mark_sent(conn: Connection, key: str, kind: str) -> None:
    """The alert `key` went out: active (silent until cleared), sent_count + 1."""
    now = utcnow()
    with unit(conn, write=True):
        stmt = insert(conn, alerts_state).values(key=key, kind=kind, active=True, raised_at=now, last_sent_at=now,
                                                 sent_count=1)
        conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={
            "active": True, "raised_at": stmt.excluded.raised_at, "last_sent_at": stmt.excluded.last_sent_at,
            "sent_count": alerts_state.c.sent_count + 1}))


def clear_alert(conn: Connection, key: str) -> bool:
    """The condition behind `key` has cleared: the next raise alerts again (to every destination: its delivery
    records go, and with them any pending retry). True if it was active."""
    with unit(conn, write=True):
        n = conn.execute(alerts_state.update().where(alerts_state.c.key == key, alerts_state.c.active.is_(True))
                         .values(active=False, cleared_at=utcnow())).rowcount
        conn.execute(alert_deliveries.delete().where(alert_deliveries.c.alert_key == key))
    return bool(n)


def record_delivery(conn: Connection, alert_key: str, url: str, ok: bool, error: str | None = None,
                    retry_after_s: float | None = None, gave_up: bool = False) -> None:
    """Record one delivery attempt of `alert_key` to the destination `url` (stored as its hash). A failure with
    `retry_after_s` schedules `next_attempt_at`; `gave_up` marks a failure that will not be retried;
    `error` must already be scrubbed."""
    now = utcnow()
    status = "sent" if ok else ("gave_up" if gave_up else "failed")
    if gave_up:
        retry_after_s = None
    vals = {"alert_key": alert_key, "destination_id": destination_id(url), "status": status,
            "attempts": 1, "next_attempt_at": (now + dt.timedelta(seconds=retry_after_s)) if (not ok and retry_after_s)
            else None, "last_error": None if ok else (error or "delivery failed")[:500], "created_at": now,
            "updated_at": now}
    with unit(conn, write=True):
        stmt = insert(conn, alert_deliveries).values(**vals)
        conn.execute(stmt.on_conflict_do_update(index_elements=["alert_key", "destination_id"], set_={
            "status": stmt.excluded.status, "attempts": alert_deliveries.c.attempts + 1,
            "next_attempt_at": stmt.excluded.next_attempt_at, "last_error": stmt.excluded.last_error,
            "updated_at": stmt.excluded.updated_at}))


def deliveries(conn: Connection, alert_key: str | None = None) -> list[dict]:
    stmt = sa.select(alert_deliveries).order_by(alert_deliveries.c.alert_key, alert_deliveries.c.destination_id)
    if alert_key is not None:
        stmt = stmt.where(alert_deliveries.c.alert_key == alert_key)
    with unit(conn):
        return [dict(r) for r in conn.execute(stmt).mappings()]


def due_deliveries(conn: Connection, now: dt.datetime | None = None) -> list[dict]:
    """Failed deliveries whose retry time has come (for a retrying sender)."""
    now = now or utcnow()
    with unit(conn):
        return [dict(r) for r in conn.execute(sa.select(alert_deliveries).where(
            alert_deliveries.c.status == "failed", alert_deliveries.c.next_attempt_at <= now)).mappings()]


def undelivered(conn: Connection) -> list[dict]:
    """Delivery records not (yet) delivered — failed (a retry is scheduled) or gave_up — oldest first (status)."""
    with unit(conn):
        return [dict(r) for r in conn.execute(sa.select(alert_deliveries).where(
            alert_deliveries.c.status != "sent").order_by(alert_deliveries.c.created_at)).mappings()]


def last_attempt(conn: Connection, key: str) -> dict | None:
    """The newest `alerts_sent` row of `key` (its scrubbed title and body, kind and severity): what a retry sends."""
    with unit(conn):
        row = conn.execute(sa.select(alerts_sent).where(alerts_sent.c.key == key)
                           .order_by(alerts_sent.c.id.desc()).limit(1)).mappings().first()
    return dict(row) if row else None


def sent_log(conn: Connection, limit: int | None = None) -> list[dict]:
    """`alerts_sent` rows in the order they were attempted."""
    stmt = sa.select(alerts_sent).order_by(alerts_sent.c.id)
    if limit:
        stmt = stmt.limit(limit)
    with unit(conn):
        return [dict(r) for r in conn.execute(stmt).mappings()]
