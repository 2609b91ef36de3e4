"""One per-IP budget across processes: the SQLite rolling ledger admits no more than the capacity per 60 s,
whatever the number of processes spending it, and a process alone may spend all of it."""

from __future__ import annotations

import multiprocessing as mp

from gradient_pipeline.config import RateLimitConfig, parse_config
from gradient_pipeline.exchange.hyperliquid.client import HyperliquidClient, shared_ledger_path
from gradient_pipeline.exchange.hyperliquid.ratelimit import SharedWeightLedger, WeightLimiter
from gradient_pipeline_tests.concurrently import all_at_once


class _BudgetExhausted(Exception):
    pass


def _no_wait(seconds: float) -> None:
    raise _BudgetExhausted  # the limiter would have to wait: the shared budget is spent


def _spend(path: str, n: int, weight: int, out) -> None:
    ledger = SharedWeightLedger(path, "exchange.test:1")
    limiter = WeightLimiter(RateLimitConfig(budget_per_minute=100, safety_fraction=1.0), ledger=ledger, sleep=_no_wait)
    try:
        for _ in range(n):
            limiter.acquire(weight)
    except _BudgetExhausted:
        pass
    out.put(limiter.stats().weight_spent)


def test_processes_share_one_budget(tmp_path):
    path = str(tmp_path / "rate.sqlite")
    q = mp.get_context("spawn").Queue()
    procs = [mp.get_context("spawn").Process(target=_spend, args=(path, 20, 10, q)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    spent = [q.get(timeout=5) for _ in procs]
    # three processes each trying 20 × 10 weight inside one minute: together they got exactly the 100 budget
    assert sum(spent) == 100, spent
    assert SharedWeightLedger(path, "exchange.test:1").used() == 100
    assert SharedWeightLedger(path, "other.host:2").used() == 0  # another exchange has its own budget


def test_acquire_waits_for_the_window_to_roll(tmp_path):
    clock = [1000.0]
    ledger = SharedWeightLedger(tmp_path / "rate.sqlite", "h", clock=lambda: clock[0])
    slept = []

    def sleep(s):
        slept.append(s)
        clock[0] += s

    assert ledger.acquire(60, 100, sleep) == 0.0
    clock[0] += 10
    assert ledger.acquire(30, 100, sleep) == 0.0
    waited = ledger.acquire(50, 100, sleep)  # needs the first charge (t=1000) to leave the window: until 1060
    assert abs(waited - 50.0) < 1e-6 and abs(clock[0] - 1060.0) < 1e-6
    ledger.charge(7)
    assert ledger.used() == 30 + 50 + 7


def test_config_puts_the_ledger_beside_the_duckdb_file(tmp_path, monkeypatch):
    monkeypatch.delenv("GRADIENT_RATE_LEDGER", raising=False)
    monkeypatch.delenv("GRADIENT_DUCKDB_PATH", raising=False)
    cfg = parse_config({"duckdb_path": str(tmp_path / "d" / "g.duckdb")})
    assert shared_ledger_path(cfg) == tmp_path / "d" / "exchange_rate.sqlite"
    client = HyperliquidClient.from_config(parse_config({"duckdb_path": str(tmp_path / "g.duckdb"),
                                                         "exchange_base_url": "http://127.0.0.1:9"}))
    assert client.limiter.ledger is not None and client.limiter.ledger.host == "127.0.0.1:9"
    off = parse_config({"rate_limit": {"shared_ledger": False}})
    assert shared_ledger_path(off) is None


def test_background_work_only_uses_what_the_cycle_leaves(tmp_path):
    """The funding refresh (background) is admitted only below `background_fraction` of the shared window; the
    trading cycle's requests (foreground) still fit up to the full capacity, so they never wait behind it."""
    from gradient_pipeline.marketdata.sources import background_config

    cfg = parse_config({"duckdb_path": str(tmp_path / "g.duckdb"),
                        "rate_limit": {"budget_per_minute": 100, "safety_fraction": 0.9, "background_fraction": 0.5}})
    path = shared_ledger_path(cfg)
    fg = HyperliquidClient.from_config(cfg).limiter
    bg = HyperliquidClient.from_config(background_config(cfg)).limiter
    assert (fg.capacity, bg.capacity) == (90, 50) and fg.ledger.path == bg.ledger.path == path
    fg.ledger._clock = bg.ledger._clock = lambda: 1000.0  # one instant: nothing leaves the window
    fg._sleep = bg._sleep = _no_wait
    for _ in range(4):
        bg.acquire(10)
    try:
        bg.acquire(20)  # 40 + 20 > 50: background waits
        raise AssertionError("background admitted past its share")
    except _BudgetExhausted:
        pass
    fg.acquire(20)  # foreground: 60 ≤ 90, admitted at once
    fg.acquire(30)  # 90 ≤ 90
    try:
        bg.acquire(1)
        raise AssertionError("background admitted while the window is over its share")
    except _BudgetExhausted:
        pass
    assert fg.used() == 90


def test_many_openers_of_a_fresh_ledger_all_get_through(tmp_path):
    """A rebalance run and its observers open the (not yet existing) ledger together: switching a fresh file to WAL
    needs it alone and SQLite refuses at once with `database is locked` rather than waiting. Every opener must get
    through, and the file ends in WAL mode."""
    import sqlite3

    for attempt in range(200):  # a race: each attempt loses it only now and then (~2% on a busy 2-core box)
        path = tmp_path / f"fresh-{attempt}.sqlite"
        errors = all_at_once(8, lambda: SharedWeightLedger(path, "exchange.test:1").charge(1))
        assert not errors, f"attempt {attempt}: {errors!r}"
        assert SharedWeightLedger(path, "exchange.test:1").used() == 8
        assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
