"""Every alert kind delivered exactly once to a real HTTP receiver through apprise's json:// URL; dedupe,
re-arm, rate limit and secret scrubbing."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd
import pytest

from gradient_pipeline.config import parse_config
from gradient_pipeline import book
from gradient_pipeline.book import alerts as alert_store
from gradient_pipeline.book import ledger
from gradient_pipeline.book.schema import rebalances
from gradient_pipeline.storage.db import connect
from gradient_pipeline.monitoring import messages
from gradient_pipeline.monitoring.alerts import Alert, clear_alert, raise_alert, scrub
from gradient_pipeline.monitoring.review import review_snapshot
from gradient_pipeline_tests.monitoring.conftest import BOOK, open_book, store_backtest
from gradient_pipeline.exchange.hyperliquid.payloads import parse_fill


@pytest.fixture
def conn(book_conn):
    """A fresh operations book, on SQLite and on PostgreSQL."""
    return book_conn


CFG = parse_config({"alerts": {"min_interval_s": 0}})


def test_condition_alerts_once_until_cleared_then_again(conn, alert_receiver):
    a = messages.drawdown_warning(11.2, 8880.0, 10000.0, 10, 20)
    assert raise_alert(conn, a, CFG).status == "sent"
    assert raise_alert(conn, a, CFG).status == "duplicate"
    assert len(alert_receiver.posts) == 1
    body = alert_receiver.posts[0]["json"]
    assert body["title"].startswith("[gradient] drawdown warning: 11.2%")
    assert "$8,880.00" in body["message"] and body["type"] == "warning"
    assert alert_receiver.posts[0]["path"] == "/alerts"
    assert clear_alert(conn, "drawdown_warn")
    assert raise_alert(conn, a, CFG).status == "sent"
    assert len(alert_receiver.posts) == 2


def test_rate_limit_holds_back_same_kind_but_not_failures(conn, alert_receiver):
    cfg = parse_config({"alerts": {"min_interval_s": 3600}})
    rows = [{"coin": "BTC", "side": "buy", "px": 101.0, "ref_px": 100.0, "slippage_pct": 1.0}]
    assert raise_alert(conn, messages.slippage("rb-1", rows, 0.5), cfg).status == "sent"
    limited = raise_alert(conn, messages.slippage("rb-2", rows, 0.5), cfg)
    assert limited.status == "rate_limited"
    # failures are never rate-limited
    assert raise_alert(conn, messages.run_failure("rebalance_job", "r1", "boom"), cfg).status == "sent"
    assert raise_alert(conn, messages.run_failure("rebalance_job", "r2", "boom"), cfg).status == "sent"
    assert len(alert_receiver.posts) == 3
    # the held-back alert was not marked sent: it goes out once the interval allows
    assert raise_alert(conn, messages.slippage("rb-2", rows, 0.5), CFG).status == "sent"
    logged = [(r["key"], r["status"]) for r in alert_store.sent_log(conn)]
    assert ("slippage:rb-2", "rate_limited") in logged and ("slippage:rb-2", "sent") in logged


def test_secrets_never_leave(conn, alert_receiver, monkeypatch):
    key = "0x" + "ab" * 32
    monkeypatch.setenv("GRADIENT_PRIVATE_KEY", key)
    monkeypatch.setenv("SOME_API_TOKEN", "tok-123456789")
    a = Alert("run_failure", "run_failure:x", "failure", f"failed {key}",
              f"error with {key} and {key[2:]} and tok-123456789 and another 0x{'cd' * 32}")
    d = raise_alert(conn, a, CFG)
    assert d.status == "sent"
    posted = str(alert_receiver.posts[0]["json"])
    assert "ab" * 32 not in posted and "tok-123456789" not in posted and "cd" * 32 not in posted
    assert "[redacted]" in posted
    stored = "".join(r["title"] + r["body"] for r in alert_store.sent_log(conn))
    assert "ab" * 32 not in stored
    assert scrub("address 0x" + "1" * 40 + " stays") == "address 0x" + "1" * 40 + " stays"  # addresses are public
    # a destination's token never appears, even on its own
    url = "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/987654321"
    assert scrub("bot 123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw failed", [url]) == "bot 123456789:[redacted] failed"


def test_undelivered_alert_is_logged_and_retried(conn, monkeypatch):
    monkeypatch.setenv("GRADIENT_ALERT_URLS", "json://127.0.0.1:9/nothing-listens-here")
    a = messages.drawdown_warning(12, 8800, 10000, 10, 20)
    assert raise_alert(conn, a, CFG).status == "failed"
    monkeypatch.delenv("GRADIENT_ALERT_URLS")
    assert raise_alert(conn, a, CFG).status == "no_destination"  # still not marked sent
    # one delivery record per destination, keyed by a hash of the URL (never the URL: it may hold a token)
    (rec,) = alert_store.deliveries(conn, "drawdown_warn")
    assert rec["status"] == "failed" and rec["attempts"] == 1 and rec["next_attempt_at"] is not None
    assert rec["destination_id"] == alert_store.destination_id("json://127.0.0.1:9/nothing-listens-here")
    assert "nothing-listens-here" not in str(rec)


def test_run_failure_alert_through_sensor_and_job(tmp_path, alert_receiver, monkeypatch):
    from gradient_pipeline.defs.monitoring.jobs import send_alert_job
    from gradient_pipeline.defs.monitoring.sensors import run_failure_alert_sensor
    from gradient_pipeline.defs.resources import GradientResource

    @dg.op
    def explode():
        raise RuntimeError("exchange said no (secret 0x" + "ef" * 32 + ")")

    @dg.job
    def failing_job():
        explode()

    cfg_path = tmp_path / "c.json"
    cfg_path.write_text('{"alerts": {"min_interval_s": 0}}')
    gradient = GradientResource(config_path=str(cfg_path), duckdb_path=str(tmp_path / "g.duckdb"))
    with dg.instance_for_test() as instance:
        failed = failing_job.execute_in_process(instance=instance, raise_on_error=False)
        assert not failed.success
        ctx = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert_sensor", dagster_instance=instance, dagster_run=failed.dagster_run,
            dagster_event=failed.get_run_failure_event(),
        ).for_run_failure()
        req = run_failure_alert_sensor(ctx)
        assert isinstance(req, dg.RunRequest) and req.run_key == f"alert-{failed.run_id}"
        for _ in range(2):  # the same failure evaluated twice still alerts once
            r = send_alert_job.execute_in_process(run_config=req.run_config, resources={"gradient": gradient},
                                                  instance=instance)
            assert r.success
    assert len(alert_receiver.posts) == 1
    msg = alert_receiver.posts[0]["json"]
    assert msg["title"] == "[gradient] run failed: failing_job" and msg["type"] == "failure"
    assert failed.run_id in msg["message"] and "exchange said no" in msg["message"]
    assert "ef" * 32 not in msg["message"]


def _ledger_rebalance(conn, rid, finished, mid_px_by_coin, fills):
    ledger.start_rebalance(conn, rid, "2025-04-30 20:00", "paper", "local", "0xabc", 10_000.0)
    ledger.record_orders(conn, [
        {"cloid": f"0x{rid}-{c}", "rebalance_id": rid, "coin": c, "leg": "open", "attempt": 0, "side": side,
         "sz": 1.0, "limit_px": mid * 1.01, "mid_px": mid, "reduce_only": False, "tif": "Ioc", "status": "sending",
         "oid": oid}
        for (c, side, mid, oid) in mid_px_by_coin
    ])
    for (c, _side, _mid, oid) in mid_px_by_coin:
        ledger.update_order(conn, f"0x{rid}-{c}", "filled", oid=oid)
    ledger.ingest_fills(conn, [parse_fill(f) for f in fills])
    ledger.finish_rebalance(conn, rid, "complete", None)
    with conn.begin():  # the test pins the finish time (the ledger stamps wall-clock now)
        conn.execute(rebalances.update().where(rebalances.c.rebalance_id == rid).values(finished_at=finished))


def test_slippage_and_drift_alerts_from_the_snapshot_review(conn, alert_receiver):
    from gradient_pipeline.venue.model import AccountState, Position
    from gradient_pipeline.monitoring.equity import EquityState

    fills = [
        {"tid": 1, "oid": 11, "coin": "BTC", "side": "B", "px": "100.9", "sz": "1", "fee": "0.05", "time": 1746057900000,
         "crossed": True},
        {"tid": 2, "oid": 12, "coin": "ETH", "side": "A", "px": "49.9", "sz": "1", "fee": "0.02", "time": 1746057900000,
         "crossed": True},
    ]
    _ledger_rebalance(conn, "rb-a", dt.datetime(2025, 5, 1, 0, 6), [("BTC", "buy", 100.0, 11), ("ETH", "sell", 50.0, 12)],
                      fills)
    # the rebalance's start snapshot records the targets it traded to (as the runner does)
    ledger.snapshot(conn, dt.datetime(2025, 5, 1, 0, 5), "rebalance_start", "rb-a", 10_000.0, 0.0, {},
                    {"BTC": 0.10, "ETH": -0.10})
    # BTC held at target, ETH short drifted to 15% of the account (threshold 3%)
    account = AccountState(10_000.0, 2_500.0, {
        "BTC": Position("BTC", 10.0, 100.0, 1_000.0, 0.0),
        "ETH": Position("ETH", -30.0, 50.0, 1_500.0, 0.0),
    })
    state = EquityState(dt.datetime(2025, 5, 1, 4), 10_000.0, 10_000.0, 0.0, "monitor")
    first = review_snapshot(conn, CFG, account, state)
    assert sorted(d.key for d in first) == ["position_drift", "slippage:rb-a"]
    again = review_snapshot(conn, CFG, account, state)
    assert again == []  # both once
    assert len(alert_receiver.posts) == 2
    by_title = {p["json"]["title"]: p["json"]["message"] for p in alert_receiver.posts}
    slip = next(m for t, m in by_title.items() if "slippage" in t)
    assert "BTC buy: filled at 100.9 vs reference 100 → 0.90%" in slip
    assert "ETH" not in slip  # 0.2% adverse: below the 0.5% threshold
    drift = next(m for t, m in by_title.items() if "drift" in t)
    assert "ETH: target -$1,000.00, held -$1,500.00 → drift 5.00%" in drift and "BTC" not in drift
    # back at target: the drift condition clears; a later drift alerts again
    ok = AccountState(10_000.0, 2_000.0, {"BTC": account.positions["BTC"],
                                          "ETH": Position("ETH", -20.0, 50.0, 1_000.0, 0.0)})
    assert review_snapshot(conn, CFG, ok, state) == []
    assert [d.key for d in review_snapshot(conn, CFG, account, state)] == ["position_drift"]
    assert len(alert_receiver.posts) == 3


def test_daily_summary_and_underperformance(paper_account, alert_receiver):
    from gradient_pipeline.monitoring.daily import run_daily
    from gradient_pipeline.monitoring.equity import record_equity

    trading = paper_account.trading()
    open_book(trading, BOOK)
    ex = paper_account.exchange
    cfg = parse_config({**paper_account.cfg.model_dump(), "alerts": {"min_interval_s": 0}})
    db = str(paper_account.db_path)
    with book.connect(db) as conn:
        ledger.ingest_fills(conn, trading.fills_since())
        for rid, window, status in (("rb-d1", "2025-05-01 04:00", "complete"), ("rb-d2", "2025-05-01 08:00", "refused"),
                                    ("rb-d3", "2025-05-01 20:00", "partial"), ("rb-d4", "2025-05-02 00:00", "complete")):
            ledger.start_rebalance(conn, rid, window, "paper", "local", paper_account.address, 10_000.0)
            ledger.finish_rebalance(conn, rid, status, None)
        # eight 4h bars of live equity while the longs sag
        for _ in range(8):
            st = trading.account_state()
            record_equity(conn, st, pd.Timestamp(ex.now()), "monitor")
            ex.price_shock(0.985, "BTC")
            ex.price_shock(0.985, "SOL")
            ex.advance(4)
    with connect(db) as duck:  # the backtest is analytics (DuckDB)
        # the backtest expected +0.5% a bar with 0.2% bar volatility over the same bars
        store_backtest(duck, START_BAR, 200, lambda i: 0.005 + (0.002 if i % 2 else -0.002))
    deliveries = run_daily(cfg, db, dt.date(2025, 5, 1), trading=trading)
    assert [d.status for d in deliveries] == ["sent", "sent"]
    assert [d.key for d in deliveries] == ["daily_summary:2025-05-01", "underperformance"]
    # once: a second run the same day sends nothing new
    assert [d.status for d in run_daily(cfg, db, dt.date(2025, 5, 1), trading=trading)] == ["duplicate", "duplicate"]
    assert len(alert_receiver.posts) == 2
    summary = alert_receiver.posts[0]["json"]
    assert summary["title"].startswith("[gradient] daily summary 2025-05-01: PnL -$")
    text = summary["message"]
    for part in ("paper mode", "Exposure: long $", "short $", "gross $", "net ", "Fills 4;", "fees $", "funding ", "rebalances 2."):
        assert part in text, part
    # no tracking run stored beside this DuckDB file: the σ fallback is said in the summary, every day
    assert "UNDERPERFORMANCE σ FALLBACK" in text and "research track" in text
    under = alert_receiver.posts[1]["json"]
    assert "below backtest" in under["title"] and "z = " in under["message"]
    assert "σ FALLBACK" in under["message"]


START_BAR = "2025-04-20 00:00"
