"""One rebalance at a time: which lock, and why.

- Book on **PostgreSQL**: a session-level advisory lock (`pg_try_advisory_lock`) on a dedicated connection. It
  works across hosts (every run that can trade talks to the same server), and the server drops it when the
  holding process dies or its connection breaks.
- Book on **SQLite**: an OS file lock (`flock`) on ``<book file>.rebalance.lock``. The kernel drops it if the
  process dies; it only works between processes on the same host — which is all a SQLite book supports anyway.

Both are non-blocking: a second rebalance gets `RebalanceBusy` at once and is skipped visibly.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from pathlib import Path

import sqlalchemy as sa

from gradient_pipeline.book.engine import book_url, engine_for


class RebalanceBusy(RuntimeError):
    """Another rebalance holds the lock for this book."""


def advisory_key(name: str) -> int:
    """A signed 64-bit key for pg advisory locks, stable across processes."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


REBALANCE_KEY = advisory_key("gradient_pipeline.rebalance")


@contextlib.contextmanager
def rebalance_lock(where):
    """Hold the book's rebalance lock for the block, or raise `RebalanceBusy`. `where` as for `book.connect`."""
    url = book_url(where)
    if url.get_backend_name() == "postgresql":
        with engine_for(url).connect() as conn:
            got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": REBALANCE_KEY}).scalar()
            conn.commit()
            if not got:
                holder = conn.execute(sa.text(
                    "SELECT a.pid, a.application_name, a.client_addr FROM pg_locks l JOIN pg_stat_activity a "
                    "USING (pid) WHERE l.locktype = 'advisory' AND l.granted AND "
                    "((l.classid::bigint << 32) | l.objid::bigint) = :k"), {"k": REBALANCE_KEY}).first()
                conn.rollback()
                who = f"backend pid {holder[0]}, {holder[1] or '?'} from {holder[2] or 'local'}" if holder else "?"
                raise RebalanceBusy(f"another rebalance is running (PostgreSQL advisory lock held by {who})")
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": REBALANCE_KEY})
                conn.commit()
        return
    path = Path(str(url.database) + ".rebalance.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise RebalanceBusy(f"another rebalance is running (pid {holder}, lock {path})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
