"""The operations book itself: migrations (from empty and from the previous version) produce exactly the schema
module's tables; orders.updated_at moves only for rows a call changed; the rebalance lock. Both backends."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from gradient_pipeline import book
from gradient_pipeline.book import engine as book_engine
from gradient_pipeline.book import halt, ledger
from gradient_pipeline.book.locks import RebalanceBusy, rebalance_lock
from gradient_pipeline.book.schema import OPERATIONAL_TABLES, metadata
from gradient_pipeline.exchange.hyperliquid.payloads import parse_fill
from gradient_pipeline_tests.concurrently import all_at_once


def _diff(conn) -> list:
    return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)


def test_migrations_from_empty_build_exactly_the_schema(book_conn):
    assert book_engine.current_revision(book_conn) == book_engine.head_revision()
    assert set(sa.inspect(book_conn).get_table_names()) >= set(OPERATIONAL_TABLES)
    assert _diff(book_conn) == []
    book_conn.rollback()


def test_upgrade_from_the_previous_version_keeps_the_data(book_backend, tmp_path):
    url = book.book_url(tmp_path / "old.duckdb")
    engine = book_engine.create_book_engine(url)
    try:
        book_engine.migrate(engine, "0001")  # a book written by the previous release
        with engine.connect() as conn:
            assert book_engine.current_revision(conn) == "0001"
            assert "heartbeats" not in sa.inspect(conn).get_table_names()
            conn.rollback()  # end the inspector's implicit transaction (book functions would join it)
            halt.set_halt(conn, "set by the old release", "operator")
            ledger.start_rebalance(conn, "r-old", "2025-03-01 00:00", "paper", "local", "0xabc", 1000.0)
        book_engine.migrate(engine)  # what opening the book does
        with engine.connect() as conn:
            assert book_engine.current_revision(conn) == book_engine.head_revision()
            assert halt.halt_status(conn).reason == "set by the old release"
            assert ledger.get_rebalance(conn, "r-old")["capital_usd"] == 1000.0
            assert _diff(conn) == []
            conn.rollback()
        book_engine.migrate(engine)  # idempotent
    finally:
        engine.dispose()


def test_updated_at_moves_only_for_orders_that_changed(book_conn):
    rows = [{"cloid": f"c{i}", "rebalance_id": "r1", "coin": c, "status": "sending"} for i, c in enumerate("AB")]
    ledger.record_orders(book_conn, rows)
    ledger.update_order(book_conn, "c0", "filled", oid=10, filled_sz=1.0, avg_px=5.0)
    ledger.update_order(book_conn, "c1", "filled", oid=11, filled_sz=2.0, avg_px=6.0)
    before = ledger.orders_for(book_conn, "r1").set_index("cloid")["updated_at"]
    ledger.update_order(book_conn, "c0", "filled", oid=10, filled_sz=1.0, avg_px=5.0)  # same facts again
    ledger.ingest_fills(book_conn, [parse_fill({"tid": 1, "oid": 11, "coin": "B", "px": "7", "sz": "2",
                                                "side": "B", "time": 1740787500000})])
    assert ledger.refresh_order_fills(book_conn) == 1  # only c1's average price changed
    after = ledger.orders_for(book_conn, "r1").set_index("cloid")
    assert after.loc["c0", "updated_at"] == before["c0"]
    assert after.loc["c1", "updated_at"] > before["c1"] and after.loc["c1", "avg_px"] == 7.0
    assert ledger.refresh_order_fills(book_conn) == 0


def test_one_rebalance_at_a_time(book_backend, tmp_path):
    where = tmp_path / "g.duckdb"
    with rebalance_lock(where):
        with pytest.raises(RebalanceBusy, match="another rebalance is running"):
            with rebalance_lock(where):
                pass
    with rebalance_lock(where):  # released
        pass


def test_url_from_environment_is_never_shown_with_its_password(monkeypatch):
    monkeypatch.setenv("GRADIENT_BOOK_URL", "postgresql://gradient:s3cret-pw@db.internal:5432/book")
    url = book.book_url()
    assert url.drivername == "postgresql+psycopg"
    assert "s3cret-pw" not in book.redact_url(url)
    monkeypatch.setenv("GRADIENT_BOOK_URL", "mysql://u:p@h/db")
    with pytest.raises(book_engine.BookConfigError, match="not supported"):
        book.book_url()


def test_halt_history_is_append_only(book_conn):
    halt.set_halt(book_conn, "first", "operator")
    halt.set_halt(book_conn, "second (ignored: already halted)", "operator")
    halt.clear_halt(book_conn)
    hist = halt.halt_history(book_conn)
    assert [(h.halted, h.reason) for h in hist] == [(False, "resumed by operator"), (True, "first")]
    assert all(isinstance(h.since, dt.datetime) for h in hist)


def test_snapshots_at_one_exchange_time_the_last_written_wins(book_conn):
    """A replay clock (demo, drill) or a stop right after a monitor run writes several snapshots at one exchange
    time: the dashboard must show the newest — flat after a flatten — and the history keeps them in write order."""
    from gradient_pipeline.book.equity import equity_history, latest_equity, latest_positions
    from gradient_pipeline.book.trades import latest_positions_snapshot
    from gradient_pipeline.venue.model import Position

    t = "2025-04-20 00:05"
    held = {"BTC": Position("BTC", 0.01, 80_000.0, 800.0, -5.0), "ETH": Position("ETH", -0.5, 1_600.0, 800.0, 3.0)}
    ledger.snapshot(book_conn, t, "monitor", None, 9_000.0, 1_600.0, held)
    ledger.snapshot(book_conn, t, "emergency_stop", None, 8_990.0, 0.0, {})  # alphabetically first, written last
    assert latest_equity(book_conn)[1:] == (8_990.0, "emergency_stop")
    assert latest_positions(book_conn).empty
    assert latest_positions_snapshot(book_conn)[2].empty
    assert list(equity_history(book_conn)["source"]) == ["monitor", "emergency_stop"]
    ledger.snapshot(book_conn, t, "monitor", None, 8_989.0, 0.0, {})  # the monitor after the stop: flat
    assert latest_equity(book_conn)[1:] == (8_989.0, "monitor")
    assert list(equity_history(book_conn)["source"]) == ["emergency_stop", "monitor"]


def test_several_engines_open_a_fresh_sqlite_book_at_once(tmp_path):
    """Two Dagster runs opening a book file nobody has opened yet: each connection switches the file to WAL, which
    SQLite refuses at once (`database is locked`) while another holds it. Every opener gets through; the file is WAL."""
    for attempt in range(150):  # a race: each attempt loses it only now and then
        url = f"sqlite:///{tmp_path / f'book-{attempt}.sqlite'}"

        engines = [book_engine.create_book_engine(url) for _ in range(6)]  # one per "run"; none connected yet

        def open_and_read() -> None:
            engine = engines.pop()
            try:
                with engine.connect() as conn:
                    conn.exec_driver_sql("SELECT 1").fetchone()
            finally:
                engine.dispose()

        errors = all_at_once(len(engines), open_and_read)
        assert not errors, f"attempt {attempt}: {errors!r}"
        engine = book_engine.create_book_engine(url)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        engine.dispose()
