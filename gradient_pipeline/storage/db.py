"""DuckDB access for the analytics (market data, signals, research): short connections, one writer at a time,
atomic window replaces. Operational state (ledger, halt, alerts) is not here: see `gradient_pipeline/book`.

DuckDB allows one read-write *process* per file. Dagster runs that open it are serialised by the
`gradient/duckdb` run-tag limit (dagster.yaml); CLI readers use `connect(read_only=True)` and treat
`DuckDBLockedError` as "try later". Connections are opened inside asset/op bodies, never at import.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd


class DuckDBLockedError(RuntimeError):
    """Another process holds the DuckDB file lock."""


def _is_lock_error(err: Exception) -> bool:
    text = str(err)
    return "lock" in text.lower() or "Conflicting" in text


@contextlib.contextmanager
def connect(path: str | Path, read_only: bool = False, wait_s: float = 0.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open a short-lived connection. With `wait_s > 0`, retry a held lock for up to that long."""
    p = Path(path)
    if not read_only:
        p.parent.mkdir(parents=True, exist_ok=True)
    elif not p.exists():
        raise FileNotFoundError(f"DuckDB file {p} does not exist yet (nothing has been materialised)")
    deadline = time.monotonic() + wait_s
    delay = 0.05
    while True:
        try:
            conn = duckdb.connect(str(p), read_only=read_only)
            break
        except (duckdb.IOException, duckdb.ConnectionException) as err:
            if not _is_lock_error(err):
                raise
            if time.monotonic() >= deadline:
                raise DuckDBLockedError(f"DuckDB file {p} is locked by another process: {err}") from err
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    try:
        yield conn
    finally:
        conn.close()


def ensure_tables(conn: duckdb.DuckDBPyConnection, ddl: str) -> None:
    """Run idempotent `CREATE TABLE IF NOT EXISTS …` statements."""
    conn.execute(ddl)


def replace_rows(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    frame: pd.DataFrame,
    where_sql: str,
    params: list | tuple = (),
) -> int:
    """Atomically delete the rows matching `where_sql` and insert `frame` (same columns as the table).

    Either both happen or neither: a failure rolls back and leaves the table as it was. This is how
    every partitioned asset stays idempotent (rematerialising a window replaces exactly that window).
    """
    return replace_many(conn, [(table, frame, where_sql, params)])[0]


def replace_many(
    conn: duckdb.DuckDBPyConnection,
    steps: list[tuple[str, pd.DataFrame, str, list | tuple]],
) -> list[int]:
    """Several `replace_rows` (table, frame, where_sql, params) in ONE transaction: all happen or none does.

    Used where one logical write spans tables or key sets (e.g. a window's candles and the repairs made to them).
    """
    conn.execute("BEGIN TRANSACTION")
    try:
        for table, frame, where_sql, params in steps:
            conn.execute(f"DELETE FROM {table} WHERE {where_sql}", list(params))
            if len(frame):
                cols = ", ".join(f'"{c}"' for c in frame.columns)
                conn.register("_replace_rows_frame", frame)
                try:
                    conn.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _replace_rows_frame")
                finally:
                    conn.unregister("_replace_rows_frame")
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
    return [len(frame) for _, frame, _, _ in steps]


def table_exists(conn: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(
        conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
        ).fetchone()[0]
    )
