"""Persistent trading halt: once set, no rebalance trades until an operator resumes.

The state lives in DuckDB table `halt_state`, an append-only log (`changed_at, halted, reason, source`); the
newest row is the current state, so a halt survives restarts of every process and leaves an audit trail.

Who calls what:
- the rebalance job (execution) calls `is_halted(conn)` before planning and, if it is True, ends the rebalance
  as **refused** with reason `halt_reason(conn)` and sends nothing (it also passes `halted` to
  `core.risk.check_plan`, which refuses the plan on its own);
- the emergency stop (`monitoring.emergency`) and the drawdown sensor call `set_halt(...)`;
- `gradient-pipeline resume` calls `clear_halt(...)` after the operator confirms.

`is_halted` works on read-only connections and on a file where the table does not exist yet (never halted).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from gradient_pipeline.storage.db import table_exists

HALT_DDL = """
CREATE TABLE IF NOT EXISTS halt_state (
    changed_at TIMESTAMP NOT NULL,  -- naive UTC
    halted     BOOLEAN   NOT NULL,
    reason     VARCHAR   NOT NULL,
    source     VARCHAR   NOT NULL   -- who changed it: emergency_stop, drawdown_sensor, operator, ...
);
"""


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


def ensure_halt_table(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(HALT_DDL)


def halt_status(conn: duckdb.DuckDBPyConnection) -> HaltStatus:
    """The current state (the newest row); never halted if the table is absent."""
    if not table_exists(conn, "halt_state"):
        return HaltStatus(False)
    row = conn.execute(
        "SELECT halted, reason, source, changed_at FROM halt_state ORDER BY changed_at DESC, rowid DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return HaltStatus(False)
    return HaltStatus(bool(row[0]), row[1], row[2], row[3])


def is_halted(conn: duckdb.DuckDBPyConnection) -> bool:
    """True while trading is halted. The rebalance job must call this and refuse (send nothing) when True."""
    return halt_status(conn).halted


def halt_reason(conn: duckdb.DuckDBPyConnection) -> str:
    """A one-line reason for a refused rebalance, e.g. 'halted since … by emergency_stop: drawdown 21.3% …'."""
    return halt_status(conn).describe()


def _append(conn: duckdb.DuckDBPyConnection, halted: bool, reason: str, source: str) -> HaltStatus:
    ensure_halt_table(conn)
    now = utcnow()
    conn.execute("INSERT INTO halt_state VALUES (?, ?, ?, ?)", [now, halted, reason, source])
    return HaltStatus(halted, reason, source, now)


def set_halt(conn: duckdb.DuckDBPyConnection, reason: str, source: str = "operator") -> HaltStatus:
    """Halt trading (idempotent: an already-halted state keeps its original reason and time)."""
    if not reason.strip():
        raise ValueError("a halt needs a reason (it is shown to the operator and in refused rebalances)")
    current = halt_status(conn)
    if current.halted:
        return current
    return _append(conn, True, reason, source)


def clear_halt(conn: duckdb.DuckDBPyConnection, reason: str = "resumed by operator", source: str = "operator") -> HaltStatus:
    """Resume trading. Returns the new state; a no-op (no row) when not halted."""
    current = halt_status(conn)
    if not current.halted:
        return current
    return _append(conn, False, reason, source)


def halt_history(conn: duckdb.DuckDBPyConnection, limit: int = 20) -> list[HaltStatus]:
    if not table_exists(conn, "halt_state"):
        return []
    rows = conn.execute(
        "SELECT halted, reason, source, changed_at FROM halt_state ORDER BY changed_at DESC, rowid DESC LIMIT ?",
        [limit],
    ).fetchall()
    return [HaltStatus(bool(r[0]), r[1], r[2], r[3]) for r in rows]
