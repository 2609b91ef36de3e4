"""The emergency stop retries until flat: through failed account reads (HTTP 500), through an order outage much
longer than the old 5 × 0.2 s rounds, alerting STILL OPEN after its deadline; Ctrl-C stops it and says what is
open. Against the real local exchange and its fault injection."""

from __future__ import annotations

import threading
import time

import duckdb
import pytest

from gradient_pipeline.monitoring.emergency import emergency_stop
from gradient_pipeline.backoff import Backoff
from gradient_pipeline.monitoring.halt import is_halted
from gradient_pipeline_tests.monitoring.conftest import BOOK, open_book, write_config
from gradient_pipeline_tests.monitoring.test_cli import run_cli

# short delays so the tests take seconds; the loop's logic is the same as with the defaults
FAST = {
    "rate_limit": {"max_retries": 3, "backoff_base_s": 0.01, "backoff_max_s": 0.05},
    "risk": {"flatten_backoff_initial_s": 0.05, "flatten_backoff_max_s": 0.3, "flatten_deadline_s": 1.0,
             "flatten_still_open_alert_interval_s": 1.0},
}


def _fast_cfg(paper_account, tmp_path):
    path = tmp_path / "fast.json"
    cfg = write_config(path, paper_account.exchange.base_url, paper_account.db_path, **FAST)
    return path, cfg


def test_backoff_is_capped_exponential():
    b = Backoff(initial_s=0.5, max_s=30.0)
    assert [b.delay(n) for n in range(0, 9)] == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    # a loop that keeps trying through a long outage: past failure ~1,025 factor ** n would overflow a float
    # (found by the 2,000-schedule simulation bench: OverflowError at schedule 1945)
    assert b.delay(5_000) == 30.0 and Backoff(initial_s=0.001, max_s=0.05).delay(10**6) == 0.05
    from gradient_pipeline.monitoring.alerts import retry_delay_s

    assert retry_delay_s(1, None) == 60.0 and retry_delay_s(3, None) == 240.0 and retry_delay_s(5_000, None) == 3600.0


def test_cli_flattens_through_12_failed_account_reads(paper_account, alert_receiver, tmp_path):
    """The repro: 12 × HTTP 500 on clearinghouseState used to end the stop with ExchangeUnavailableError after 4
    reads, halted but with every position open."""
    trading = paper_account.trading()
    open_book(trading, BOOK)
    path, _ = _fast_cfg(paper_account, tmp_path)
    paper_account.exchange.inject_fault("500", count=12, info_type="clearinghouseState")
    env = {**paper_account.env(), "GRADIENT_CONFIG": str(path), "GRADIENT_ALERT_URLS": alert_receiver.url,
           "DAGSTER_HOME": str(tmp_path / "no_dagster")}
    done = run_cli(["emergency-stop", "--flatten-all", "--yes", "--reason", "read outage drill"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert paper_account.exchange.exchange.faults.pending() == []  # all 12 failures were met
    assert "not flat yet" in done.stdout and "HTTP 500" in done.stdout  # progress names the failure
    assert "account is FLAT" in done.stdout and "halt set" in done.stdout
    assert trading.account_state().positions == {} and trading.open_orders() == []
    from gradient_pipeline import book

    with book.connect(paper_account.db_path) as conn:
        assert is_halted(conn)


def test_flat_through_an_order_outage_with_still_open_alerts(paper_account, alert_receiver, tmp_path):
    """Every order batch fails (HTTP 500) for a few seconds — far beyond the old 5 rounds ~0.2 s apart. The loop
    keeps going past its deadline, alerts STILL OPEN, and ends flat once orders go through again."""
    trading = paper_account.trading()
    open_book(trading, BOOK)
    _, cfg = _fast_cfg(paper_account, tmp_path)
    ex = paper_account.exchange
    ex.inject_fault("500", count=100_000, action_type="order")  # an outage: cleared by the timer below
    outage_s = 4.0
    timer = threading.Timer(outage_s, ex.clear_faults)
    timer.start()
    lines: list[str] = []
    t0 = time.monotonic()
    try:
        report = emergency_stop(cfg, str(paper_account.db_path), "order outage drill", trading=trading,
                                say=lines.append)
    finally:
        timer.cancel()
    elapsed = time.monotonic() - t0
    assert report.flat and report.halted, report.summary()
    assert elapsed >= outage_s and report.error_count >= 2, report.errors
    assert report.still_open_alerts >= 1
    still_open = [t for t in alert_receiver.titles() if "STILL OPEN" in t]
    assert still_open and all(c in still_open[0] for c in BOOK), alert_receiver.titles()
    assert any("halt set" in line for line in lines) and any("HTTP 500" in line for line in lines)
    assert trading.account_state().positions == {}
    # never reversed: each coin was closed exactly once in size
    closed: dict[str, float] = {}
    for f in trading.fills_since():
        if (f.direction or "").startswith("Close"):
            closed[f.coin] = closed.get(f.coin, 0.0) + f.sz
    assert set(closed) == set(BOOK)


def test_flat_through_a_60s_order_outage_on_the_flatten_clock(paper_account, alert_receiver, tmp_path):
    """The done-when case: every order batch fails for 60 s. Measured on the flatten's own clock (its backoff waits
    advance it; the production default is the monotonic wall clock), with the default backoff (0.5 s doubling to
    30 s): it keeps trying through the whole minute, alerts STILL OPEN at its deadline, and ends flat."""
    trading = paper_account.trading()
    open_book(trading, BOOK)
    cfg = write_config(tmp_path / "outage.json", paper_account.exchange.base_url, paper_account.db_path,
                       risk={"flatten_deadline_s": 30.0})
    ex = paper_account.exchange
    ex.inject_fault("500", count=100_000, action_type="order")
    clock = {"t": 0.0, "waits": []}

    def sleep(seconds: float) -> None:
        clock["waits"].append(seconds)
        clock["t"] += seconds
        if clock["t"] >= 60.0:
            ex.clear_faults()  # the outage ends a minute after it began

    report = emergency_stop(cfg, str(paper_account.db_path), "60 s order outage", trading=trading,
                            say=lambda m: None, sleep=sleep, clock=lambda: clock["t"])
    assert report.flat and report.halted, report.summary()
    assert clock["t"] >= 60.0 and report.error_count >= 5, (clock, report.errors)
    assert max(clock["waits"]) <= cfg.risk.flatten_backoff_max_s  # capped backoff, never a give-up
    assert report.still_open_alerts >= 1
    assert any("STILL OPEN" in t for t in alert_receiver.titles()), alert_receiver.titles()
    assert trading.account_state().positions == {}


def test_flat_through_more_failed_order_rounds_than_the_old_limit(paper_account, tmp_path):
    """Eight order batches in a row refused with HTTP 500 (the old loop gave up after 5 rounds)."""
    trading = paper_account.trading()
    open_book(trading, BOOK)
    _, cfg = _fast_cfg(paper_account, tmp_path)
    paper_account.exchange.inject_fault("500", count=8, action_type="order")
    report = emergency_stop(cfg, str(paper_account.db_path), "8 failed rounds", trading=trading, say=lambda m: None)
    assert paper_account.exchange.exchange.faults.pending() == []
    assert report.flat and report.halted and report.rounds == 9, report.summary()
    assert trading.account_state().positions == {}


def test_ctrl_c_stops_the_loop_and_reports_what_is_open(paper_account, tmp_path):
    trading = paper_account.trading()
    open_book(trading, BOOK)
    _, cfg = _fast_cfg(paper_account, tmp_path)
    paper_account.exchange.inject_fault("500", count=100_000, action_type="order")
    lines: list[str] = []

    def say(msg: str) -> None:  # the operator presses Ctrl-C while the outage lasts
        lines.append(msg)
        if sum("not flat yet" in x for x in lines) >= 3:
            raise KeyboardInterrupt

    report = emergency_stop(cfg, str(paper_account.db_path), "ctrl-c drill", trading=trading, say=say)
    paper_account.exchange.clear_faults()
    assert report.interrupted and not report.flat and report.halted
    assert set(report.remaining) == set(BOOK)
    assert "INTERRUPTED" in report.summary() and "STILL OPEN" in report.summary()
    assert "halt set" in report.summary()
    assert set(trading.account_state().positions) == set(BOOK)


@pytest.mark.parametrize("kind", ["timeout"])
def test_flat_through_timeouts_on_reads_and_orders(paper_account, tmp_path, kind):
    trading = paper_account.trading()
    open_book(trading, BOOK)
    path = tmp_path / "fast_timeout.json"
    cfg = write_config(path, paper_account.exchange.base_url, paper_account.db_path,
                       **{**FAST, "rate_limit": {**FAST["rate_limit"], "request_timeout_s": 0.5}})
    ex = paper_account.exchange
    ex.inject_fault(kind, count=6, info_type="clearinghouseState", hang_seconds=2.0)
    ex.inject_fault(kind, count=2, action_type="order", hang_seconds=2.0)
    from gradient_pipeline.monitoring.account import open_trading

    report = emergency_stop(cfg, str(paper_account.db_path), "timeout drill", trading=open_trading(cfg, signer=True),
                            say=lambda m: None)
    assert report.flat and report.halted, report.summary()
    assert trading.account_state().positions == {}


def test_drawdown_drill_with_a_dead_alert_url_ends_flat_halted_exit_0(tmp_path):
    """One unreachable destination beside the drill's working webhook used to make every alert count as failed, so
    the warning went out again at every evaluation and the drill never finished."""
    env = {"DAGSTER_HOME": str(tmp_path / "dagster_home"), "GRADIENT_ALERT_URLS": "json://127.0.0.1:9/x"}
    import os
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "gradient_pipeline.cli", "drawdown-drill", "--workdir",
                          str(tmp_path / "drill")], env={**os.environ, **env, "TZ": "UTC"}, capture_output=True,
                         text=True, timeout=600)  # ~20 s alone; generous for a busy shared machine
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "account is FLAT" in out.stdout and "halt:           HALTED" in out.stdout
    assert "positions:      0" in out.stdout
    assert out.stdout.count("launch drawdown_warning_job") == 1  # warned once, not at every evaluation
    assert "ALERT NOT DELIVERED to destination #2 of 2" in out.stderr  # the dead one is logged loudly
