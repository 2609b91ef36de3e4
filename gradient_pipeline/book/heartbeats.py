"""Liveness and timing records: `heartbeats` (name → last time, e.g. `drawdown_evaluation`, for a watchdog that
alerts when a safety loop stops running) and `cycle_latency` (window, stage → seconds)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gradient_pipeline.book._values import ts as _ts
from gradient_pipeline.book.engine import insert, unit
from gradient_pipeline.book.halt import utcnow
from gradient_pipeline.book.schema import cycle_latency, heartbeats


def beat(conn: Connection, name: str, detail: str | None = None, at: dt.datetime | None = None,
         wait_s: float | None = None) -> None:
    """Record that `name` ran now (or at `at`, naive UTC). `wait_s` bounds the wait for another writer (raises
    `sqlalchemy.exc.OperationalError` beyond it)."""
    vals = {"name": name, "ts": _ts(at) or utcnow(), "detail": detail}
    with unit(conn, write=True, wait_s=wait_s):
        stmt = insert(conn, heartbeats).values(**vals)
        conn.execute(stmt.on_conflict_do_update(index_elements=["name"],
                                                set_={"ts": stmt.excluded.ts, "detail": stmt.excluded.detail}))


def last_beat(conn: Connection, name: str) -> tuple[dt.datetime, str | None] | None:
    with unit(conn):
        r = conn.execute(sa.select(heartbeats.c.ts, heartbeats.c.detail).where(heartbeats.c.name == name)).first()
    return (r[0], r[1]) if r else None


def record_latency(conn: Connection, window_ts, stage: str, seconds: float) -> None:
    """How long `stage` of the cycle for `window_ts` took (replaces an earlier record of the same stage)."""
    vals = {"window_ts": _ts(window_ts), "stage": stage, "seconds": float(seconds), "recorded_at": utcnow()}
    with unit(conn, write=True):
        stmt = insert(conn, cycle_latency).values(**vals)
        conn.execute(stmt.on_conflict_do_update(index_elements=["window_ts", "stage"], set_={
            "seconds": stmt.excluded.seconds, "recorded_at": stmt.excluded.recorded_at}))


def latencies(conn: Connection, window_ts) -> dict[str, float]:
    with unit(conn):
        rows = conn.execute(sa.select(cycle_latency.c.stage, cycle_latency.c.seconds)
                            .where(cycle_latency.c.window_ts == _ts(window_ts))).fetchall()
    return {s: float(v) for s, v in rows}
