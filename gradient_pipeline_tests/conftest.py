"""Fixtures shared by every domain's tests. Domain-specific fixtures live in `<domain>/conftest.py`."""

from __future__ import annotations

import contextlib
import contextvars
import functools
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


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem):
    """Run every test body in its own copy of the `contextvars` context (stdlib), so a context variable a test
    leaves set cannot reach the next test. Dagster keeps the entered instance's defs-state storage in one: an
    in-process run that fails inside `with instance_for_test()` used to leave it pointing at a disposed instance,
    and the next test's `materialize()` died with "Attempted to resolve undefined DagsterInstance weakref"."""
    original = pyfuncitem.obj
    ctx = contextvars.copy_context()

    @functools.wraps(original)
    def in_own_context(*args, **kwargs):
        return ctx.run(original, *args, **kwargs)

    pyfuncitem.obj = in_own_context
    try:
        return (yield)
    finally:
        pyfuncitem.obj = original


# ------------------------------------------------------------------------------------------------ test tiers
# `unit` (pure code on small inputs, in-process, no server, no Dagster run: `uv run pytest -m unit` is the edit
# loop), `integration` (a real component: the local exchange over HTTP, PostgreSQL, a Dagster instance or run, the
# CLI, the full recorded data set) and `e2e` (gradient_pipeline_tests/e2e: daemons on a replay clock). Every test
# gets exactly one, from where it lives and what it uses (below), so nobody has to remember to mark a new test; an
# explicit `@pytest.mark.integration` / `e2e` on a test wins. `uv run pytest` (no -m) still runs every tier.
TIERS = ("unit", "integration", "e2e")
# A test module that imports one of these (anywhere in the file) drives Dagster, a server or another process.
INTEGRATION_IMPORTS = ("dagster", "gradient_pipeline.definitions", "gradient_pipeline.defs", "subprocess",
                       "gradient_pipeline.localexchange.server", "gradient_pipeline.localexchange.app", "uvicorn",
                       "gradient_pipeline.cli", "gradient_pipeline.app", "multiprocessing")
# A test that uses one of these fixtures (directly or through another fixture) starts a real component or reads
# the full recorded history (`freqtrade_dir`: 186 perps, years of 4h bars — seconds per test, not milliseconds).
INTEGRATION_FIXTURES = frozenset({"local_exchange_factory", "freqtrade_dir"})
E2E_DIR = Path(__file__).resolve().parent / "e2e"


@functools.lru_cache(maxsize=None)
def module_tier(path: Path) -> str:
    """The tier of every test in the file at `path`, read from its source without importing it (so that
    `-m unit` can skip collecting integration modules, whose imports alone cost seconds)."""
    import ast

    if E2E_DIR in path.parents:
        return "e2e"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        if any(n == m or n.startswith(m + ".") for n in names for m in INTEGRATION_IMPORTS):
            return "integration"
    return "unit"


def item_tier(item) -> str:
    explicit = [t for t in TIERS if item.get_closest_marker(t)]
    if explicit:
        return explicit[-1]
    tier = module_tier(Path(str(item.path)))
    if tier == "unit":
        params = getattr(getattr(item, "callspec", None), "params", {})
        if INTEGRATION_FIXTURES & set(getattr(item, "fixturenames", ())) or params.get("book_backend") == "postgresql":
            tier = "integration"
    return tier


def pytest_collection_modifyitems(config, items):
    for item in items:
        tier = item_tier(item)
        if not item.get_closest_marker(tier):
            item.add_marker(getattr(pytest.mark, tier))


def pytest_ignore_collect(collection_path: Path, config):
    """`-m unit`: do not even import the modules whose every test is integration or e2e, nor the conftest of a
    directory that holds no unit module (importing Dagster alone costs seconds)."""
    if (config.getoption("markexpr", "") or "").strip() != "unit":
        return None
    if collection_path.is_dir():
        modules = list(collection_path.rglob("test_*.py"))
        return True if modules and all(module_tier(m) != "unit" for m in modules) else None
    if collection_path.suffix == ".py" and collection_path.name.startswith("test_"):
        return True if module_tier(collection_path) != "unit" else None
    return None


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
