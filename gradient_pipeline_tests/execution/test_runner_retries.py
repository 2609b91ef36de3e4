"""Runner defects found by fault drills, each as its repro: a read failure at the start must not poison the window;
orders that never reached the exchange end `failed` with the error and the same window trades on the next run; a
failed cancel of a post-only order is resolved on the next run."""

from __future__ import annotations

import math

from gradient_pipeline.execution.runner import known_capital
from gradient_pipeline.exchange.hyperliquid.factory import trading_client
from gradient_pipeline_tests.execution.conftest import TARGETS
from gradient_pipeline_tests.execution.test_faults import assert_consistent
from gradient_pipeline_tests.execution.test_runner_paper import assert_at_target, ledger, run


def test_known_capital_never_accepts_nan_none_or_non_positive():
    assert known_capital(10_000.0) == 10_000.0
    for bad in (None, math.nan, float("nan"), math.inf, 0.0, -5.0, "x"):
        assert known_capital(bad) is None


def test_read_failure_at_the_start_lets_the_next_run_retry_the_window(paper):
    # max_retries 3 → four 500s exhaust one clearinghouseState read
    paper.handle.inject_fault("500", count=4, info_type="clearinghouseState")
    first = run(paper.cfg)
    assert first.status == "failed" and "clearinghouseState" in first.reason, first.reason
    assert ledger(paper.cfg, "SELECT capital_usd FROM rebalances")["capital_usd"].isna().all()  # unknown, not 0
    second = run(paper.cfg)
    assert second.rebalance_id == first.rebalance_id
    assert second.status == "complete", second.reason  # was: refused: capital must be positive and finite, got nan
    cap = ledger(paper.cfg, "SELECT capital_usd FROM rebalances")["capital_usd"][0]
    assert cap > 9_000
    assert_at_target(paper.cfg)
    assert_consistent(paper.cfg)


def test_orders_that_never_reached_the_exchange_end_failed_and_the_window_retries(paper):
    # every order round of the first run meets an HTTP 500 before the exchange processes it
    paper.handle.inject_fault("500", count=paper.cfg.execution.max_attempts, action_type="order")
    first = run(paper.cfg)
    assert first.status == "failed", first.reason  # was: partial, "5 order(s) left after 3 attempts"
    assert "never reached the exchange" in first.reason and "HTTP 500" in first.reason
    assert "next run retries" in first.reason
    orders = ledger(paper.cfg, "SELECT * FROM orders")
    assert set(orders["status"]) == {"not_placed"}
    assert trading_client(paper.cfg).fills_since() == []
    second = run(paper.cfg)  # was: "already partial; nothing to do"
    assert second.rebalance_id == first.rebalance_id and second.status == "complete", second.reason
    assert_at_target(paper.cfg)
    assert_consistent(paper.cfg)


def test_failed_cancel_in_passive_mode_is_resolved_on_the_next_run(paper):
    cfg = paper.config(execution={"style": "passive_first", "passive_timeout_s": 0.5})
    client = trading_client(cfg)
    # every cancel of the post-only round fails (HTTP 500, not processed), with its retries
    paper.handle.inject_fault("500", count=1000, action_type="cancelByCloid")
    first = run(cfg)
    assert first.status == "failed" and "unknown fate" in first.reason, first.reason
    resting = client.open_orders()
    assert resting  # the defect's consequence while the exchange refuses cancels: post-only orders still rest
    paper.handle.clear_faults()
    second = run(cfg)
    assert second.rebalance_id == first.rebalance_id and second.status == "complete", second.reason
    assert client.open_orders() == []  # nothing outlives the rebalance
    passive = ledger(cfg, "SELECT status FROM orders WHERE tif = 'Alo'")["status"]
    assert set(passive) <= {"canceled", "filled", "partial"}
    assert_at_target(cfg, tol_usd=15.0)
    assert_consistent(cfg)


def test_while_halted_an_unreadable_exchange_still_ends_refused_not_failed(paper):
    """Found by the seeded simulation (schedule 14 of seed 7): halted, and the account read failed → `failed`."""
    from gradient_pipeline.book import connect
    from gradient_pipeline.book import ledger as ledger_mod
    from gradient_pipeline.monitoring.halt import set_halt

    with connect(paper.db_path) as conn:
        ledger_mod.ensure(conn)
        set_halt(conn, "drill", "operator")
    paper.handle.inject_fault("500", count=4, info_type="clearinghouseState")
    result = run(paper.cfg)
    assert result.status == "refused" and "halted" in result.reason and "could not be read" in result.reason
    assert ledger(paper.cfg, "SELECT count(*) AS n FROM orders")["n"][0] == 0
    assert trading_client(paper.cfg).fills_since() == []
