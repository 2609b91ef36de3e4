"""Persistent trading halt: once set, no rebalance trades until an operator resumes.

The state is table `halt_state`, an append-only log (`id, changed_at, halted, reason, source`); the newest row is
the current state, so a halt survives restarts of every process and leaves an audit trail.

Who calls what:
- the rebalance job (execution) calls `is_halted(conn)` before planning and before every order round, and ends the
  rebalance when it is True — a halt set by another process (emergency stop, operator) stops further sending;
- the emergency stop (`monitoring.emergency`) and the drawdown sensor call `set_halt(...)`;
- `gradient-pipeline resume` calls `clear_halt(...)` after the operator confirms.

Reads never wait for a writer (WAL on SQLite, MVCC on PostgreSQL); `set_halt` waits at most for another writer's
short transaction, never for a rebalance.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gradient_pipeline.book.engine import unit
from gradient_pipeline.book.schema import halt_state


@dataclass(frozen=True)
class HaltStatus:
    halted: bool
    reason: str = ""
    source: str = ""
    since: dt.datetime | None = None  # naive UTC of the last change

    def describe(self) -> str:
        if not self.halted:
            return "not halted" if self.since is None else f"not halted (resumed {self.since:%Y-%m-%d %H:%M} UTC)"
        return f"HALTED since {self.since:%Y-%m-%d %H:%M:%S} UTC by {self.source}: {self.reason}"


def utcnow() -> dt.datetime:
    """Naive UTC now (the project's time convention)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


_NEWEST = sa.select(halt_state.c.halted, halt_state.c.reason, halt_state.c.source, halt_state.c.changed_at).order_by(
    halt_state.c.id.desc())


def halt_status(conn: Connection) -> HaltStatus:
    """The current state (the newest row); never halted if nothing was ever recorded."""
    with unit(conn):
        r = conn.execute(_NEWEST.limit(1)).first()
    return HaltStatus(False) if r is None else HaltStatus(bool(r[0]), r[1], r[2], r[3])


def is_halted(conn: Connection) -> bool:
    """True while trading is halted. The rebalance job must call this and refuse (send nothing) when True."""
    return halt_status(conn).halted


def halt_reason(conn: Connection) -> str:
    """A one-line reason for a refused rebalance, e.g. 'halted since … by emergency_stop: drawdown 21.3% …'."""
    return halt_status(conn).describe()


def _change(conn: Connection, halted: bool, reason: str, source: str) -> HaltStatus:
    with unit(conn, write=True):  # read and append in one write transaction: two stops cannot both append
        r = conn.execute(_NEWEST.limit(1)).first()
        current = HaltStatus(False) if r is None else HaltStatus(bool(r[0]), r[1], r[2], r[3])
        if current.halted == halted:
            return current
        now = utcnow()
        conn.execute(halt_state.insert().values(changed_at=now, halted=halted, reason=reason, source=source))
        return HaltStatus(halted, reason, source, now)


def set_halt(conn: Connection, reason: str, source: str = "operator") -> HaltStatus:
    """Halt trading (idempotent: an already-halted state keeps its original reason and time)."""
    if not reason.strip():
        raise ValueError("a halt needs a reason (it is shown to the operator and in refused rebalances)")
    return _change(conn, True, reason, source)


def clear_halt(conn: Connection, reason: str = "resumed by operator", source: str = "operator") -> HaltStatus:
    """Resume trading. Returns the new state; a no-op (no row) when not halted."""
    return _change(conn, False, reason, source)


def halt_history(conn: Connection, limit: int = 20) -> list[HaltStatus]:
    with unit(conn):
        rows = conn.execute(_NEWEST.limit(limit)).fetchall()
    return [HaltStatus(bool(r[0]), r[1], r[2], r[3]) for r in rows]
