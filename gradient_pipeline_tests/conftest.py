"""Fixtures shared by every domain's tests. Domain-specific fixtures live in `<domain>/conftest.py`."""

from __future__ import annotations

import os
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
