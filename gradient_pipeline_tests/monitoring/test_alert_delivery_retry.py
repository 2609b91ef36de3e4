"""Alert delivery per destination: a dead destination is retried with capped exponential backoff on later ticks,
the working one is never sent the alert twice, and `status` names the missing destination without its URL."""

from __future__ import annotations

import time

from gradient_pipeline.book import alerts as alert_store
from gradient_pipeline.config import parse_config
from gradient_pipeline.monitoring import messages
from gradient_pipeline.monitoring.alerts import raise_alert, retry_due, undelivered
from gradient_pipeline.monitoring.status import StatusReport, render
from gradient_pipeline_tests.monitoring.conftest import AlertReceiver

CFG = parse_config({"alerts": {"min_interval_s": 0, "retry_backoff_initial_s": 0.3, "retry_backoff_max_s": 0.5,
                               "retry_give_up_after_s": 600}})


def _row(conn, key, url):
    (row,) = [d for d in alert_store.deliveries(conn, key) if d["destination_id"] == alert_store.destination_id(url)]
    return row


def test_dead_destination_is_retried_with_backoff_and_the_working_one_is_not_repeated(book_conn, monkeypatch):
    conn = book_conn
    working = AlertReceiver()
    later = AlertReceiver()
    port = later.port
    later.stop()  # nothing listens on `port` for now: the second destination is dead
    dead_url = f"json://127.0.0.1:{port}/alerts"
    monkeypatch.setenv("GRADIENT_ALERT_URLS", f"{working.url} {dead_url}")
    revived = None
    try:
        alert = messages.run_failure("rebalance_job", "run-1", "boom")
        assert raise_alert(conn, alert, CFG).status == "sent"  # one destination has it
        assert len(working.posts) == 1
        dead = _row(conn, alert.key, dead_url)
        assert dead["status"] == "failed" and dead["attempts"] == 1
        first_delay = (dead["next_attempt_at"] - dead["updated_at"]).total_seconds()
        assert abs(first_delay - 0.3) < 0.05

        # status lists it by position, scheme and hash, never by URL
        (missing,) = undelivered(conn, CFG)
        assert missing["destination"].startswith("destination #2 of 2 (json://") and str(port) not in str(missing)
        text = render(StatusReport("paper", "local", "http://x", True, "db", undelivered_alerts=[missing]))
        assert "ALERT NOT DELIVERED: run_failure:run-1 to destination #2 of 2" in text and str(port) not in text

        assert retry_due(conn, CFG) == []  # still backing off: nothing is tried
        time.sleep(0.35)
        ((key, where, ok),) = retry_due(conn, CFG)
        assert key == alert.key and where.startswith("destination #2") and not ok
        dead = _row(conn, alert.key, dead_url)
        assert dead["attempts"] == 2
        assert abs((dead["next_attempt_at"] - dead["updated_at"]).total_seconds() - 0.5) < 0.05  # 0.6, capped

        revived = AlertReceiver.__new__(AlertReceiver)  # the destination comes back on the same address
        _serve_on(revived, port)
        time.sleep(0.55)
        # any later alert-delivering tick retries it first (here: another alert being raised)
        assert raise_alert(conn, messages.run_failure("rebalance_job", "run-2", "boom 2"), CFG).status == "sent"
        # the revived destination got the retried run-1 alert (first) and run-2, once each
        bodies = [p["json"]["message"] for p in revived.posts]
        assert len(bodies) == 2 and "run-1" in bodies[0] and "run-2" in bodies[1], bodies
        assert _row(conn, alert.key, dead_url)["status"] == "sent"
        assert len(working.posts) == 2  # run-1 once, run-2 once: nothing repeated to the working destination
        assert raise_alert(conn, alert, CFG).status == "duplicate"
        assert undelivered(conn, CFG) == []
    finally:
        working.stop()
        if revived is not None:
            revived.stop()


def test_a_destination_is_given_up_after_the_configured_age(book_conn, monkeypatch):
    cfg = parse_config({"alerts": {"min_interval_s": 0, "retry_backoff_initial_s": 0.1, "retry_backoff_max_s": 0.1,
                                   "retry_give_up_after_s": 0.15}})
    monkeypatch.setenv("GRADIENT_ALERT_URLS", "json://127.0.0.1:9/nothing-listens-here")
    alert = messages.run_failure("rebalance_job", "run-9", "boom")
    assert raise_alert(book_conn, alert, cfg).status == "failed"
    time.sleep(0.2)
    ((_, _, ok),) = retry_due(book_conn, cfg)
    assert not ok
    (row,) = alert_store.deliveries(book_conn, alert.key)
    assert row["status"] == "gave_up" and row["next_attempt_at"] is None
    assert retry_due(book_conn, cfg) == []
    (missing,) = undelivered(book_conn, cfg)
    assert missing["status"] == "gave_up"


def _serve_on(receiver: AlertReceiver, port: int) -> None:
    """An `AlertReceiver` listening on a given port (the test's dead destination coming back)."""
    import threading
    from http.server import ThreadingHTTPServer

    probe = AlertReceiver()  # borrow its request handler class
    handler = probe.server.RequestHandlerClass
    probe.stop()
    receiver.posts = []
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    # the handler appends to the probe's list: point it at this receiver's
    receiver.posts = probe.posts
    receiver.server, receiver.port = server, port
    receiver.thread = threading.Thread(target=server.serve_forever, daemon=True)
    receiver.thread.start()
