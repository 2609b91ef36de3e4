"""The operations book's concurrency contract, with a real rebalance held open mid-round by the local exchange
(an order request that is processed but whose response hangs): status, the drawdown decision, an equity snapshot
and the emergency stop all run meanwhile without waiting on the rebalance, and the rebalance sends nothing more
once the halt is set. On both backends."""

from __future__ import annotations

import threading
import time

import dagster as dg

from gradient_pipeline import book
from gradient_pipeline.book import ledger
from gradient_pipeline.defs.monitoring.sensors import drawdown_decision
from gradient_pipeline.defs.resources import GradientResource
from gradient_pipeline.execution.runner import Rebalancer
from gradient_pipeline.exchange.hyperliquid.factory import trading_client
from gradient_pipeline.monitoring.emergency import emergency_stop
from gradient_pipeline.monitoring.equity import record_equity
from gradient_pipeline.monitoring.halt import is_halted
from gradient_pipeline.monitoring.status import gather_status
from gradient_pipeline_tests.execution.conftest import ADV, TARGETS, WINDOW


def test_rebalance_held_open_blocks_no_reader_and_stops_at_the_halt(paper, book_backend, tmp_path):
    import json

    cfg = paper.config(execution={"batch_size": 1}, rate_limit={"request_timeout_s": 8.0})
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(cfg.model_dump(mode="json")))
    gradient = GradientResource(config_path=str(cfg_path), duckdb_path=paper.db_path)
    client = trading_client(cfg)
    # the first order batch is processed by the exchange, then its response hangs: the rebalance is held mid-round
    paper.handle.inject_fault("lost_response_timeout", count=1, action_type="order", hang_seconds=10.0)

    result = {}
    runner = threading.Thread(target=lambda: result.setdefault(
        "r", Rebalancer(cfg, trading_client(cfg), paper.db_path).run(WINDOW, TARGETS, ADV)))
    runner.start()
    deadline = time.monotonic() + 30
    while not client.fills_since() and time.monotonic() < deadline:  # the held batch has been processed
        time.sleep(0.05)
    assert client.fills_since(), "the first batch never reached the exchange"
    assert runner.is_alive()

    waits = {}

    def timed(name, fn):
        t0 = time.monotonic()
        out = fn()
        waits[name] = time.monotonic() - t0
        return out

    report = timed("status", lambda: gather_status(cfg, paper.db_path, live=False))
    assert report.halt is not None and not report.halt.halted and not report.notes, report.notes
    decision = timed("drawdown_decision", lambda: drawdown_decision(gradient))
    assert isinstance(decision, dg.SkipReason)
    state = client.account_state()
    with book.connect(paper.db_path) as conn:
        timed("equity_snapshot", lambda: record_equity(conn, state, client.server_time(), "monitor"))
    stop = timed("emergency_stop", lambda: emergency_stop(cfg, paper.db_path, "concurrency drill", trading=client,
                                                           lock_wait_s=1.0, second_lock_wait_s=1.0))
    print(f"[{book_backend}] waits while the rebalance was held open:", {k: round(v, 3) for k, v in waits.items()})
    assert runner.is_alive(), "the rebalance must still be held open while all of this ran"
    assert stop.halted and stop.halt_note == "", stop.summary()
    for name in ("status", "drawdown_decision", "equity_snapshot"):
        assert waits[name] < 1.0, waits
    # the emergency stop talks to the exchange (cancel, flatten, re-read); its book writes did not wait either
    assert waits["emergency_stop"] < 8.0, waits

    runner.join(60)
    r = result["r"]
    assert r.status == "failed" and "halted" in r.reason, r.summary()
    with book.connect(paper.db_path) as conn:
        assert is_halted(conn)
        orders = ledger.orders_for(conn, r.rebalance_id)
    sent = orders[orders["status"] != "not_placed"]
    assert len(sent) == 1, orders[["coin", "status"]]  # only the held batch went out; nothing after the halt
    assert (orders["status"] == "not_placed").sum() == len(TARGETS) - 1
    own = {f.oid for f in client.fills_since() if f.cloid in set(orders["cloid"])}
    assert len(own) <= 1
