"""The operations book: the ledger and every piece of safety state in one transactional store.

DuckDB keeps the analytics (candles → returns → momentum scores → target weights, backtests, sweeps); everything
operational lives here: rebalances, orders, fills, positions, equity snapshots, the high-water mark, the halt,
alert state and delivery records, heartbeats and cycle latency. One schema (`schema.py`, SQLAlchemy Core), Alembic
migrations applied on open (`migrations/`), two backends with the same code: SQLite (WAL) beside the DuckDB file by
default, PostgreSQL (psycopg 3) when `GRADIENT_BOOK_URL` says so. No other module holds SQL for these tables.

    from gradient_pipeline import book
    from gradient_pipeline.book import ledger, halt

    with book.connect(db_path) as conn:      # db_path: the DuckDB file (the book sits beside it) or a URL
        halt.set_halt(conn, "manual", "operator")

Modules: `engine` (URL, engine, migrations, units of work), `ledger`, `halt`, `equity`, `alerts`, `heartbeats`,
`reports`, `locks` (one rebalance at a time), `migrate_duckdb` (old DuckDB layout → book).
"""

from gradient_pipeline.book.engine import (
    BOOK_URL_ENV,
    book_url,
    connect,
    engine_for,
    redact_url,
    unit,
)

__all__ = ["BOOK_URL_ENV", "book_url", "connect", "engine_for", "redact_url", "unit"]
