"""The venue's dead-man switch around a rebalance (execution/dead_man.py), end to end against the local exchange:
armed while the order rounds run, cleared when the run ends, and — when the process is killed — the exchange
itself cancels what the dead run left resting."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time

from gradient_pipeline.execution.dead_man import NOT_ARMED, DeadManSwitch
from gradient_pipeline.exchange.hyperliquid.factory import trading_client
from gradient_pipeline_tests.execution.conftest import ADV, TARGETS, WINDOW
from gradient_pipeline_tests.execution.test_crash_restart import CHILD
from gradient_pipeline_tests.execution.test_runner_paper import run
from gradient_pipeline_tests.monitoring.conftest import alert_receiver  # noqa: F401 - the real HTTP receiver fixture


def test_rebalance_arms_the_switch_during_its_rounds_and_clears_it_at_the_end(paper):
    cfg = paper.config(execution={"style": "passive_first", "passive_timeout_s": 2.0, "dead_man_s": 90.0})
    master = paper.master.address
    box, armed = {}, []
    worker = threading.Thread(target=lambda: box.update(result=run(cfg)))
    worker.start()
    deadline = time.monotonic() + 30
    while worker.is_alive() and time.monotonic() < deadline:
        at = paper.handle.scheduled_cancel_ms(master)
        if at is not None:
            armed.append((at, paper.handle.venue_now_ms()))
        time.sleep(0.05)
    worker.join(30)
    assert box["result"].status == "complete", box["result"].reason
    assert armed, "the switch was never armed while the rebalance ran"
    at, seen = armed[0]
    assert 80_000 <= at - seen <= 90_000  # now + T
    assert len({a for a, _ in armed}) >= 2  # re-armed for the second (IOC) round
    assert paper.handle.scheduled_cancel_ms(master) is None  # cleared at the end
    assert trading_client(cfg).open_orders() == []


def test_a_killed_rebalance_leaves_resting_orders_that_the_exchange_cancels(paper, tmp_path):
    # post-only orders rest for up to 60 s; the process dies while they rest
    cfg = paper.config(execution={"style": "passive_first", "passive_timeout_s": 60.0, "dead_man_s": 20.0})
    cfg_path = tmp_path / "gradient.json"
    cfg_path.write_text(json.dumps(cfg.model_dump()))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(cfg_path), json.dumps(TARGETS), json.dumps(ADV), WINDOW],
        env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    observer = trading_client(cfg)
    try:
        deadline = time.monotonic() + 60
        while len(observer.open_orders()) < len(TARGETS):
            assert child.poll() is None, child.stdout.read().decode()
            assert time.monotonic() < deadline, "the passive orders never rested"
            time.sleep(0.25)
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    resting = observer.open_orders()
    assert len(resting) == len(TARGETS)  # nobody is left to cancel them...
    assert paper.handle.scheduled_cancel_ms(paper.master.address) is not None
    paper.handle.advance_venue_clock(21)  # ...until the venue's clock passes now + T
    assert observer.open_orders() == []
    statuses = {observer.info.query_order_by_oid(paper.master.address, o.oid)["order"]["status"] for o in resting}
    assert statuses == {"scheduledCancel"}


def test_a_refused_switch_is_reported_loudly_and_trading_goes_on(paper_factory, alert_receiver):  # noqa: F811
    # the live $1M traded-volume gate, switched on: arming is refused
    paper = paper_factory(engine_config={"schedule_cancel_min_volume_usd": 1_000_000.0})
    events: list[str] = []
    from gradient_pipeline.execution.runner import Rebalancer

    cfg = paper.config(execution={"style": "passive_first", "passive_timeout_s": 0.5})  # two order rounds
    result = Rebalancer(cfg, trading_client(cfg), paper.db_path, on_event=events.append).run(WINDOW, TARGETS, ADV)
    assert result.status == "complete", result.reason
    assert sum(e.startswith("attempt ") for e in events) == 2
    loud = [e for e in events if e.startswith(NOT_ARMED)]
    assert len(loud) == 1  # said once; a venue refusal is not retried every round
    assert "Cannot set scheduled cancel time until enough volume traded. Required: $1000000. Traded: $0." in loud[0]
    assert paper.handle.scheduled_cancel_ms(paper.master.address) is None
    # in the result (→ the run's metadata), and an alert deduplicated in the book
    assert not result.dead_man_armed and result.dead_man_failures == loud
    from gradient_pipeline import book
    from gradient_pipeline.monitoring.alerts import DEAD_MAN_KEY, dead_man_condition, is_active

    alert_cfg = paper.config(alerts={"min_interval_s": 0})
    with book.connect(paper.db_path) as conn:
        assert dead_man_condition(conn, alert_cfg, result).status == "sent"
        assert dead_man_condition(conn, alert_cfg, result).status == "duplicate"  # the next window: still once
        assert is_active(conn, DEAD_MAN_KEY)
    (post,) = alert_receiver.posts
    assert "dead-man switch NOT ARMED" in post["json"]["title"] and "enough volume traded" in post["json"]["message"]
    # a later rebalance that arms the switch clears the condition (the next refusal alerts again)
    armed = dataclasses.replace(result, dead_man_armed=True, dead_man_failures=[])
    with book.connect(paper.db_path) as conn:
        assert dead_man_condition(conn, alert_cfg, armed) is None
        assert not is_active(conn, DEAD_MAN_KEY)


def test_switch_is_off_for_a_client_that_cannot_sign_or_when_unset():
    class ReadOnly:
        can_sign = False

    assert not DeadManSwitch(ReadOnly(), 120.0).enabled and not DeadManSwitch(ReadOnly(), 120.0).arm()
    assert not DeadManSwitch.off().enabled
