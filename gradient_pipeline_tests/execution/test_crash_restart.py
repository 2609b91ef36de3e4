"""kill -9 a rebalance between two orders, then run it again: it completes and no order is doubled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from gradient_pipeline.exchange.hyperliquid.factory import trading_client
from gradient_pipeline_tests.execution.conftest import ADV, TARGETS, WINDOW
from gradient_pipeline_tests.execution.test_faults import assert_consistent
from gradient_pipeline_tests.execution.test_runner_paper import (
    assert_at_target,
    ledger,
    run,
)

CHILD = """
import json, sys
from gradient_pipeline.config import load_config
from gradient_pipeline.execution.runner import Rebalancer
from gradient_pipeline.exchange.hyperliquid.factory import trading_client
cfg = load_config(sys.argv[1])
targets, adv = json.loads(sys.argv[2]), json.loads(sys.argv[3])
print("result", Rebalancer(cfg, trading_client(cfg), cfg.duckdb_path).run(sys.argv[4], targets, adv), flush=True)
"""




@pytest.mark.parametrize(
    "where",
    [
        # order 1 accepted, its response lost; the child hangs in the orderStatus lookup before order 2 is sent
        "lookup_after_first_order",
        # order 1 accepted and the child hangs waiting for its response (crash mid-send)
        "first_order_in_flight",
    ],
)
def test_kill_between_orders_then_resume(paper, tmp_path, where):
    cfg = paper.config(execution={"batch_size": 1}, rate_limit={"request_timeout_s": 60.0})
    cfg_path = tmp_path / "gradient.json"
    cfg_path.write_text(json.dumps(cfg.model_dump()))
    if where == "lookup_after_first_order":
        paper.handle.inject_fault("lost_response", count=1, action_type="order")
        paper.handle.inject_fault("timeout", count=1, info_type="orderStatus", hang_seconds=120.0)
    else:
        paper.handle.inject_fault("lost_response_timeout", count=1, action_type="order", hang_seconds=120.0)

    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(cfg_path), json.dumps(TARGETS), json.dumps(ADV), WINDOW],
        env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    observer = trading_client(cfg)  # one client: its meta is fetched once (polling must not burn the rate limit)

    def fills_seen() -> int:
        return len(observer.fills_since())

    try:
        deadline = time.monotonic() + 60
        while fills_seen() < 1:  # the first order has executed on the exchange
            assert child.poll() is None, child.stdout.read().decode()
            assert time.monotonic() < deadline, "first order never executed"
            time.sleep(0.25)
        time.sleep(0.5)  # the child is now blocked on the hung request
        assert child.poll() is None
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    assert child.returncode == -signal.SIGKILL
    assert fills_seen() == 1  # exactly one order went out before the kill

    before = ledger(cfg, "SELECT * FROM orders")
    assert len(before) == len(TARGETS)
    assert set(before["status"]) <= {"sending", "ambiguous"}  # the dead process could not learn the outcome
    assert ledger(cfg, "SELECT status FROM rebalances")["status"].tolist() == ["running"]

    paper.handle.clear_faults()
    result = run(cfg)
    assert result.status == "complete" and result.resumed, result.reason
    assert_at_target(cfg)
    assert_consistent(cfg)  # among others: one exchange order per coin
    after = ledger(cfg, "SELECT * FROM orders ORDER BY attempt, coin")
    first = after[after["attempt"] == 0]
    assert (first["status"] == "filled").sum() == 1  # the order sent before the kill, found by client id
    assert (first["status"] == "not_placed").sum() == len(TARGETS) - 1
    assert set(after[after["attempt"] == 1]["status"]) == {"filled"}
    assert len(after[after["attempt"] == 1]) == len(TARGETS) - 1


def test_a_new_window_first_resolves_what_a_crashed_older_rebalance_left(paper):
    """A rebalance left with an order of unknown fate and never resumed: the next window's rebalance looks that
    order up by client id first (it had executed), closes the old row as failed, and trades from real positions."""
    cfg = paper.config(execution={"batch_size": 1})
    paper.handle.inject_fault("lost_response", count=1, action_type="order")
    paper.handle.inject_fault("500", count=50, info_type="orderStatus")
    first = run(cfg)  # ends failed: the first order's fate could not be learned (the other coins' orders went out)
    assert first.status == "failed" and "1 order(s) with unknown fate" in first.reason
    assert ledger(cfg, "SELECT count(*) AS n FROM orders WHERE status = 'ambiguous'")["n"][0] == 1
    paper.handle.clear_faults()
    paper.handle.advance(4)
    nxt = run(cfg, window="2025-03-01 00:00")
    assert nxt.status == "complete", nxt.reason
    reb = ledger(cfg, "SELECT rebalance_id, status, reason FROM rebalances ORDER BY window_ts")
    assert list(reb["status"]) == ["failed", "complete"]
    old = ledger(cfg, "SELECT status FROM orders WHERE rebalance_id = ?", [first.rebalance_id])["status"]
    assert list(old) == ["filled"] * len(TARGETS)  # the ambiguous one was found filled, never re-sent
    per = ledger(cfg, "SELECT rebalance_id, coin, count(DISTINCT oid) AS n FROM fills GROUP BY rebalance_id, coin")
    assert set(per["n"]) == {1}  # one exchange order per coin per rebalance: nothing doubled
    assert ledger(cfg, "SELECT count(*) AS n FROM orders WHERE status IN ('sending', 'ambiguous')")["n"][0] == 0
    assert_at_target(cfg)
