"""Bench: operations-book write and read latency, p50/p99, with a concurrent writer — SQLite (WAL) vs PostgreSQL.

    uv run python bench/bench_book.py [--seconds 5] [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test]

Per backend, a fresh book (SQLite file in a temp dir; PostgreSQL: a database created and dropped by the bench).
A background *process* writes continuously like a busy rebalance (record_orders + update_order + equity snapshot,
one unit each) while the measuring process times, one call at a time:
- write: `record_equity`-style snapshot (`ledger.snapshot` of 10 positions + high-water mark catch-up),
- halt write: `set_halt` / `clear_halt` alternately (the emergency stop's first book write),
- read: what the drawdown sensor reads (`equity_state`, `is_halted`, `is_active`, `latest_positions`).
The measuring loop pauses 20 ms between iterations (back to back, it would starve SQLite's busy-polling background
writer and measure no contention at all). Prints p50/p99/max in milliseconds and the background writer's
throughput.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class Pos:
    def __init__(self, i):
        self.szi, self.entry_px, self.position_value, self.unrealized_pnl = (1.0 if i % 2 else -1.0), 100.0, 100.0, 0.5


POSITIONS = {f"C{i}": Pos(i) for i in range(10)}


def background_writer(where: str, url: str | None, stop, counter) -> None:
    if url:
        os.environ["GRADIENT_BOOK_URL"] = url
    from gradient_pipeline import book
    from gradient_pipeline.book import ledger

    n = 0
    with book.connect(where) as conn:
        ledger.start_rebalance(conn, "bg", "2025-01-01", "paper", "local", "0xbg", 1e4)
        while not stop.is_set():
            cloid = f"bg-{n}"
            ledger.record_orders(conn, [{"cloid": cloid, "rebalance_id": "bg", "coin": "C1", "status": "sending"}])
            ledger.update_order(conn, cloid, "filled", oid=n, filled_sz=1.0, avg_px=100.0)
            ledger.snapshot(conn, f"2030-01-01 00:00:{n % 60:02d}", "bg", "bg", 1e4, 1e3, POSITIONS)
            n += 1
            counter.value = n


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def measure(label: str, where: str, url: str | None, seconds: float) -> None:
    from gradient_pipeline import book
    from gradient_pipeline.book import alerts, equity, halt, ledger

    ctx = mp.get_context("spawn")
    stop, counter = ctx.Event(), ctx.Value("i", 0)
    with book.connect(where):
        pass  # migrate before the writer starts
    proc = ctx.Process(target=background_writer, args=(where, url, stop, counter))
    proc.start()
    t_wait = time.monotonic() + 120
    while counter.value == 0 and time.monotonic() < t_wait:  # the writer has imported, opened and written once
        time.sleep(0.05)
    n0 = counter.value
    w, h, r = [], [], []
    t_end = time.monotonic() + seconds
    i = 0
    with book.connect(where) as conn:
        while time.monotonic() < t_end:
            t = time.perf_counter()
            ledger.snapshot(conn, f"2031-01-01 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}", "monitor", None,
                            1e4 + i, 1e3, POSITIONS)
            equity.catch_up_high_water_mark(conn)
            w.append(time.perf_counter() - t)
            t = time.perf_counter()
            (halt.set_halt if i % 2 == 0 else halt.clear_halt)(conn, "bench", "bench")
            h.append(time.perf_counter() - t)
            t = time.perf_counter()
            equity.equity_state(conn)
            halt.is_halted(conn)
            alerts.is_active(conn, "drawdown_warn")
            equity.latest_positions(conn)
            r.append(time.perf_counter() - t)
            i += 1
            time.sleep(0.02)  # a reader/writer that paces itself (sensors tick); back-to-back writers would starve
            #                   SQLite's busy-polling writer instead of measuring contention
    stop.set()
    proc.join(30)
    bg_rate = (counter.value - n0) / seconds
    print(f"\n{label}: {i} iterations in {seconds:g}s; background writer {bg_rate:,.0f} order+update+snapshot/s")
    for name, xs in (("write (snapshot + hwm)", w), ("halt write", h), ("sensor read (4 queries)", r)):
        ms = [x * 1000 for x in xs]
        print(f"  {name:24} p50 {statistics.median(ms):7.2f} ms   p99 {pct(ms, 0.99):7.2f} ms   max {max(ms):7.2f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--pg-url", default=os.environ.get("GRADIENT_TEST_PG_URL",
                                                       "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--skip-pg", action="store_true")
    args = ap.parse_args()
    os.environ.pop("GRADIENT_BOOK_URL", None)
    with tempfile.TemporaryDirectory() as d:
        measure("SQLite (WAL)", str(Path(d) / "bench.duckdb"), None, args.seconds)
    if args.skip_pg:
        return 0
    import sqlalchemy as sa

    from gradient_pipeline.book.engine import dispose_all

    admin_url = sa.engine.make_url(args.pg_url)
    name = f"gradient_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    try:
        os.environ["GRADIENT_BOOK_URL"] = url
        measure(f"PostgreSQL ({admin_url.host})", "unused.duckdb", url, args.seconds)
    finally:
        os.environ.pop("GRADIENT_BOOK_URL", None)
        dispose_all()
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
