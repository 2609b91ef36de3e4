"""Fixtures shared by every domain's tests. Domain-specific fixtures live in `<domain>/conftest.py`."""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

import pytest

os.environ["TZ"] = "UTC"
os.environ.setdefault("DAGSTER_HOME", "")  # tests use ephemeral instances unless they set one

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = Path(os.environ.get("GRADIENT_SHARED_DIR", REPO_ROOT.parent / "shared"))
FREQTRADE_DIR = SHARED_DIR / "data" / "hyperliquid-freqtrade" / "user_data" / "data" / "hyperliquid" / "futures"
CASSETTE_DIR = SHARED_DIR / "fixtures" / "hyperliquid-sdk-cassettes" / "tests" / "cassettes" / "info_test"


@pytest.fixture(scope="session")
def freqtrade_dir() -> Path:
    """The real recorded Hyperliquid data (186 perps, freqtrade layout) beside the project."""
    if not FREQTRADE_DIR.is_dir():
        pytest.fail(f"shared data not found at {FREQTRADE_DIR} (expected ../shared beside the repo)")
    return FREQTRADE_DIR


@pytest.fixture(scope="session")
def cassette_dir() -> Path:
    if not CASSETTE_DIR.is_dir():
        pytest.fail(f"SDK cassettes not found at {CASSETTE_DIR}")
    return CASSETTE_DIR


@pytest.fixture
def local_exchange_factory(freqtrade_dir):
    """Start real local exchanges (HTTP on 127.0.0.1, random port) and stop them after the test.

    Usage: `ex = local_exchange_factory(start_time="2025-03-01 00:05", accounts={addr: 10_000.0})`.
    """
    from gradient_pipeline.localexchange.server import run_in_background

    handles = []

    def start(**kwargs):
        kwargs.setdefault("data_dir", freqtrade_dir)
        handle = run_in_background(**kwargs)
        handles.append(handle)
        return handle

    yield start
    for h in handles:
        h.stop()


@pytest.fixture(autouse=True)
def _fresh_dagster_defs_state_context():
    """Start and end every test with no "current" Dagster definitions-state storage.

    Dagster 1.13 keeps the entered instance's defs-state storage in a ContextVar. An in-process run that fails inside
    `with instance_for_test()` can leave it set after the instance is disposed; the next test's `materialize()` then
    dies with "Attempted to resolve undefined DagsterInstance weakref". Tests must not leak into each other that way.
    """
    from dagster._core.storage.defs_state.base import _current_storage

    token = _current_storage.set(None)
    yield
    try:
        _current_storage.reset(token)
    except ValueError:  # set in another context; make sure nothing stale survives
        _current_storage.set(None)


# ------------------------------------------------------------------------------------------- operations book
# PostgreSQL for the tests that need it: a server at GRADIENT_TEST_PG_URL (default: the local one, trust auth).
# Every test creates its own database and drops it afterwards, so nothing is left behind.
TEST_PG_URL = os.environ.get("GRADIENT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextlib.contextmanager
def pg_database(prefix: str = "gradient_test"):
    """Create a uniquely named database on the test server; yield its SQLAlchemy URL; drop it (forcefully)."""
    import sqlalchemy as sa

    from gradient_pipeline.book.engine import dispose_all

    admin_url = sa.engine.make_url(TEST_PG_URL)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as c:
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as err:
        pytest.fail(f"PostgreSQL test server not reachable at {admin_url.render_as_string(hide_password=True)} "
                    f"(set GRADIENT_TEST_PG_URL): {err}")
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        dispose_all()  # pooled connections of this process would keep the database open
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(autouse=True)
def _no_ambient_book_url(monkeypatch):
    """A GRADIENT_BOOK_URL in the developer's environment must never receive test data: tests that want
    PostgreSQL say so (`book_backend`)."""
    monkeypatch.delenv("GRADIENT_BOOK_URL", raising=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def book_backend(request, monkeypatch):
    """Run the test on both backends of the operations book: SQLite beside the test's DuckDB path, or a fresh
    PostgreSQL database named by GRADIENT_BOOK_URL (as in production)."""
    if request.param == "sqlite":
        yield "sqlite"
        return
    with pg_database() as url:
        monkeypatch.setenv("GRADIENT_BOOK_URL", url)
        yield "postgresql"
        monkeypatch.delenv("GRADIENT_BOOK_URL")


@pytest.fixture
def book_conn(book_backend, tmp_path):
    """A connection to a fresh operations book (both backends)."""
    from gradient_pipeline import book

    with book.connect(tmp_path / "book_test.duckdb") as conn:
        yield conn


def book_frame(where, sql: str, params=()) -> "pd.DataFrame":  # noqa: F821
    """Test helper: a portable SQL query (qmark `?` parameters) over the operations book, as a DataFrame."""
    import re

    import pandas as pd
    import sqlalchemy as sa

    from gradient_pipeline import book

    names = iter(range(10_000))
    named = re.sub(r"\?", lambda _m: f":p{next(names)}", sql)
    with book.connect(where) as conn:
        result = conn.execute(sa.text(named), {f"p{i}": v for i, v in enumerate(params)})
        df = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
        conn.rollback()
    return df
