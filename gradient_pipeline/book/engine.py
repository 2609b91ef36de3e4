"""Opening the operations book: which database, how it is configured, migrations on open, units of work.

Where the book lives
- `GRADIENT_BOOK_URL` (a SQLAlchemy URL, read from the environment like every secret; e.g.
  ``postgresql+psycopg://gradient:…@db.internal:5432/gradient``) when set — PostgreSQL in production;
- otherwise a SQLite file beside the DuckDB file: ``data/gradient.duckdb`` → ``data/gradient.book.sqlite``.
  Nothing to install, and a test's own DuckDB path gets its own book.
A URL is printed only through `redact_url` (the password is never shown).

Opening a book applies the Alembic migrations shipped in `book/migrations/` (`upgrade head`) once per process and
URL, under a lock (PostgreSQL advisory lock / SQLite write transaction) so concurrent first opens are safe.

SQLite is configured for many small concurrent transactions: WAL (readers never block the writer and are never
blocked by it), `busy_timeout` (a writer waits for another writer instead of failing), `synchronous=FULL` (an order
recorded before it is sent survives a power cut), and writes start with `BEGIN IMMEDIATE` so a read-then-write unit
never fails half-way on a lock upgrade.

Units of work: every function of the book runs inside `unit(conn)` / `unit(conn, write=True)`, which commits at
its end (commit-as-you-go), so no transaction — and no SQLite read snapshot or PostgreSQL "idle in transaction" —
outlives one call. A caller that needs several calls to be atomic wraps them in `with conn.begin():` and the
units join that transaction. Consequently: use a book connection only through book functions or inside an explicit
`with conn.begin():` — a bare `conn.execute(...)` starts an implicit transaction that later units would join
(and nothing would be committed until the caller commits).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url

from gradient_pipeline.sqlite_wal import enable_wal

BOOK_URL_ENV = "GRADIENT_BOOK_URL"
SQLITE_BUSY_TIMEOUT_MS = 30_000
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK_KEY = 0x6772616469656E74  # pg_advisory_xact_lock key for migrations ("gradient")

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


class BookConfigError(ValueError):
    """`GRADIENT_BOOK_URL` (or a given URL) is not a usable database URL."""


def sqlite_path_for(duckdb_path: str | os.PathLike) -> Path:
    """The default book file beside a DuckDB file: `<dir>/<stem>.book.sqlite`."""
    p = Path(duckdb_path)
    return p.with_name(p.stem + ".book.sqlite")


def book_url(where: str | os.PathLike | None = None) -> URL:
    """The book's URL: `where` if it is a URL, else `GRADIENT_BOOK_URL`, else SQLite beside the DuckDB file `where`
    (default: the configured DuckDB file)."""
    raw = str(where) if where is not None and "://" in str(where) else os.environ.get(BOOK_URL_ENV, "").strip()
    if raw:
        try:
            url = make_url(raw)
        except Exception as err:  # noqa: BLE001 - the message must not echo a password
            raise BookConfigError(f"{BOOK_URL_ENV} is not a SQLAlchemy URL ({type(err).__name__}); expected e.g. "
                                  "postgresql+psycopg://user:password@host:5432/dbname") from None
        if url.drivername in ("postgresql", "postgres"):  # psycopg 3 is the driver this project ships
            url = url.set(drivername="postgresql+psycopg")
        if url.get_backend_name() not in ("postgresql", "sqlite"):
            raise BookConfigError(f"{BOOK_URL_ENV}: backend {url.get_backend_name()!r} is not supported "
                                  "(postgresql+psycopg or sqlite)")
        return url
    if where is None:
        from gradient_pipeline.config import load_config

        where = os.environ.get("GRADIENT_DUCKDB_PATH") or load_config().resolved_duckdb_path
    return URL.create("sqlite", database=str(sqlite_path_for(where).resolve()))


def redact_url(url: str | URL) -> str:
    """The URL with its password hidden (for logs, status and errors)."""
    return (url if isinstance(url, URL) else make_url(str(url))).render_as_string(hide_password=True)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (below), the driver must not
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous = FULL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()
        enable_wal(dbapi_conn, engine.url.database)

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.pop("book_write", False) else "BEGIN")


def create_book_engine(url: str | URL) -> Engine:
    """A new engine for `url` (not migrated, not cached: see `engine_for`)."""
    url = make_url(str(url)) if not isinstance(url, URL) else url
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5,
                            connect_args={"connect_timeout": 10, "application_name": "gradient-pipeline"})


def alembic_config(connection: Connection):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    cfg = alembic_config(None)  # type: ignore[arg-type]
    return ScriptDirectory.from_config(cfg).get_current_head()


def current_revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with unit(conn):
        return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: Engine, revision: str = "head") -> None:
    """`alembic upgrade <revision>` under a lock; a no-op when the book is already there."""
    from alembic import command

    with engine.connect() as conn:
        if revision == "head" and current_revision(conn) == head_revision():
            return
        conn.info["book_write"] = True
        with conn.begin():  # one transaction: DDL is transactional on both backends
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
            command.upgrade(alembic_config(conn), revision)


def engine_for(where: str | os.PathLike | URL | None = None) -> Engine:
    """The process-wide engine of the book at `where` (see `book_url`), migrated to head on first use."""
    url = where if isinstance(where, URL) else book_url(where)
    key = url.render_as_string(hide_password=False)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = create_book_engine(url)
            try:
                migrate(engine)
            except Exception as err:
                engine.dispose()
                raise RuntimeError(f"cannot open the operations book at {redact_url(url)}: "
                                   f"{type(err).__name__}: {err}") from err
            _engines[key] = engine
        return engine


def dispose(where: str | os.PathLike | URL | None = None) -> None:
    """Close the cached engine of one book (its pooled connections and file handles); the next `connect` opens it
    again. For processes that go through many short-lived books (a fault simulation, one book per schedule)."""
    url = where if isinstance(where, URL) else book_url(where)
    with _engines_lock:
        engine = _engines.pop(url.render_as_string(hide_password=False), None)
    if engine is not None:
        engine.dispose()


def dispose_all() -> None:
    """Close every cached engine (tests that drop their database; forked processes)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


@contextlib.contextmanager
def connect(where: str | os.PathLike | URL | None = None) -> Iterator[Connection]:
    """A short-lived connection to the book. `where`: a DuckDB path (the book beside it, unless
    `GRADIENT_BOOK_URL` is set), a URL, or None (the configured one). Book functions commit their own work."""
    with engine_for(where).connect() as conn:
        yield conn


@contextlib.contextmanager
def unit(conn: Connection, write: bool = False, wait_s: float | None = None) -> Iterator[Connection]:
    """One unit of work on `conn`: committed at the end (rolled back on error), unless the caller already opened a
    transaction (`with conn.begin():`), which then owns it. `write=True` takes SQLite's write lock up front.
    `wait_s` bounds how long this unit waits for another writer's lock (default: SQLite's busy timeout, 30 s;
    PostgreSQL: no bound) — for best-effort writes from loops that must never stall, like a sensor's heartbeat."""
    if conn.in_transaction():
        yield conn
        return
    sqlite = conn.dialect.name == "sqlite"
    if write:
        conn.info["book_write"] = True
    if wait_s is not None and sqlite:  # on the driver connection: through SQLAlchemy it would begin a transaction
        conn.connection.driver_connection.execute(f"PRAGMA busy_timeout = {int(wait_s * 1000)}")
    try:
        with conn.begin():
            if wait_s is not None and not sqlite:
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(wait_s * 1000)}ms'")
            yield conn
    finally:
        conn.info.pop("book_write", None)
        if wait_s is not None and sqlite:
            conn.connection.driver_connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")


def insert(conn: Connection, table: sa.Table):
    """The dialect's INSERT (both support ON CONFLICT … DO NOTHING / DO UPDATE)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(table)


def backend(conn: Connection) -> str:
    return conn.dialect.name
