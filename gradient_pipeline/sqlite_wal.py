"""SQLite's WAL mode, switched on safely when several processes open the same file at once."""

from __future__ import annotations

import os
import sqlite3
import time


def enable_wal(conn: sqlite3.Connection, path: str | os.PathLike, deadline_s: float = 30.0) -> None:
    """Put the file behind `conn` in WAL mode (persistent: once any process has done it, it stays so).

    Switching the journal mode needs the file to itself, and SQLite answers `database is locked` at once instead of
    waiting out the busy timeout when another connection holds it. That happens when several processes open a fresh
    file together: the rate ledger by a rebalance run and its observer, the book by two Dagster runs. So: skip when
    already WAL, else retry for `deadline_s`.
    """
    start = time.monotonic()
    delay = 0.005
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                return
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() - start > deadline_s:
                raise sqlite3.OperationalError(
                    f"SQLite file {path}: could not switch to WAL mode within {deadline_s:.0f} s ({exc}); "
                    "another process holds it") from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.25)
