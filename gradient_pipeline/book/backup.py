"""A consistent copy of the operations book while the pipeline runs: SQLite's online-backup API (readers and
writers carry on; the copy is one transaction-consistent snapshot), or `pg_dump -Fc` for PostgreSQL (the password
goes through the environment, never the command line). Restore: docs/DEPLOYMENT.md."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import URL


class BackupError(RuntimeError):
    pass


def backup_book(url: URL, out_dir: str | os.PathLike, now: dt.datetime | None = None) -> Path:
    """Write `gradient-book-<UTC time>.sqlite` (SQLite) or `.dump` (PostgreSQL, custom format) into `out_dir`."""
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%S")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    backend = url.get_backend_name()
    if backend == "sqlite":
        src_path = Path(url.database or "")
        if not src_path.is_file():
            raise BackupError(f"no book file at {src_path}")
        dst_path = out / f"gradient-book-{stamp}.sqlite"
        src = sqlite3.connect(f"file:{src_path}?mode=ro", uri=True)
        dst = sqlite3.connect(dst_path)
        try:
            with dst:
                src.backup(dst)
        finally:
            src.close()
            dst.close()
        return dst_path
    if backend == "postgresql":
        pg_dump = shutil.which("pg_dump")
        if pg_dump is None:
            raise BackupError("pg_dump is not installed (apt-get install postgresql-client)")
        dst_path = out / f"gradient-book-{stamp}.dump"
        env = {**os.environ, "PGPASSWORD": url.password or ""}
        args = [pg_dump, "-Fc", "-f", str(dst_path), "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
                "-U", url.username or "postgres", url.database or "postgres"]
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            dst_path.unlink(missing_ok=True)
            raise BackupError(f"pg_dump failed (exit {done.returncode}): {done.stderr.strip()[:500]}")
        return dst_path
    raise BackupError(f"cannot back up a {backend} book")
