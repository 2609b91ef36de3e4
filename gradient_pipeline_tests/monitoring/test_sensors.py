"""Sensors never wait for a writer (DuckDB or the operations book), respect the configured interval, and the daily
schedule fires only at its hour."""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import time

import dagster as dg
import duckdb
import pytest

from gradient_pipeline.defs.monitoring.sensors import daily_summary_schedule, drawdown_sensor, equity_sensor
from gradient_pipeline.defs.resources import GradientResource


def _gradient(tmp_path, **cfg):
    import json

    p = tmp_path / "c.json"
    p.write_text(json.dumps(cfg))
    return GradientResource(config_path=str(p), duckdb_path=str(tmp_path / "g.duckdb"))


def _hold(path, ready, go):
    """Another process writes: it holds the DuckDB file's write lock (a backfill, a rebalance) and an open write
    transaction on the operations book (an uncommitted equity snapshot), until told to stop."""
    import datetime as _dt

    from gradient_pipeline import book
    from gradient_pipeline.book.schema import equity

    duck = duckdb.connect(path)
    duck.execute("CREATE TABLE IF NOT EXISTS lock_holder (x INT)")
    with book.connect(path) as conn, book.unit(conn, write=True):
        conn.execute(equity.insert().values(ts=_dt.datetime(2000, 1, 1), source="uncommitted", account_value_usd=1.0))
        ready.set()
        go.wait(60)
    duck.close()


def test_drawdown_sensor_is_red_and_alerts_when_blind_never_a_green_skip(paper_account, alert_receiver, monkeypatch,
                                                                          tmp_path):
    """Book unreachable, no account, exchange unreachable too long: the tick raises (red in the UI) and alerts. A
    writer holding DuckDB and the book is no blind spot: the tick reads the book without waiting for it."""
    import json

    from gradient_pipeline.monitoring.drawdown_check import DrawdownCheckBlind
    from gradient_pipeline.monitoring.equity import record_equity
    from gradient_pipeline_tests.monitoring.conftest import BOOK, open_book

    trading = paper_account.trading()
    open_book(trading, BOOK)
    cfg_path = tmp_path / "blind.json"
    cfg_path.write_text(json.dumps({
        "mode": "paper", "exchange_base_url": paper_account.exchange.base_url,
        "duckdb_path": str(paper_account.db_path),
        "rate_limit": {"max_retries": 1, "backoff_base_s": 0.01, "backoff_max_s": 0.02},
        "risk": {"drawdown_unreachable_max_s": 2.0}}))
    g = GradientResource(config_path=str(cfg_path), duckdb_path=str(paper_account.db_path))

    def tick(instance):
        return drawdown_sensor(dg.build_sensor_context(instance=instance, resources={"gradient": g}))

    with dg.instance_for_test() as instance:
        # 1) the operations book cannot be opened (a PostgreSQL book whose server is down): red + alert
        monkeypatch.setenv("GRADIENT_BOOK_URL", "postgresql+psycopg://postgres@127.0.0.1:9/nobook?connect_timeout=2")
        with pytest.raises(DrawdownCheckBlind, match="operations book cannot be read"):
            tick(instance)
        assert any("CANNOT EVALUATE" in t for t in alert_receiver.titles())
        monkeypatch.delenv("GRADIENT_BOOK_URL")
        # 2) a book with a snapshot: evaluated, green
        from gradient_pipeline import book

        with book.connect(paper_account.db_path) as conn:
            record_equity(conn, trading.account_state(), paper_account.exchange.now(), "monitor")
        ok = tick(instance)
        assert isinstance(ok, dg.SkipReason) and "below the warning level" in ok.skip_message
        # 3) the exchange stops answering: one failed read is tolerated (said so), beyond the limit it is red
        paper_account.exchange.inject_fault("500", count=1000, info_type="clearinghouseState")
        tolerated = tick(instance)
        assert isinstance(tolerated, dg.SkipReason) and "NOT evaluated" in tolerated.skip_message
        import time

        time.sleep(2.2)
        with pytest.raises(DrawdownCheckBlind, match="exchange unreachable"):
            tick(instance)
        paper_account.exchange.clear_faults()
        # 4) a writer holds the book: still evaluated from the exchange, with the last known mark
        ctx_mp = mp.get_context("spawn")
        ready, go = ctx_mp.Event(), ctx_mp.Event()
        proc = ctx_mp.Process(target=_hold, args=(g.duckdb_path, ready, go))
        proc.start()
        try:
            assert ready.wait(60)
            t0 = time.monotonic()
            locked = tick(instance)
            waited = time.monotonic() - t0
        finally:
            go.set()
            proc.join(30)
        assert isinstance(locked, dg.SkipReason) and "below the warning level" in locked.skip_message
        assert waited < 5.0, waited  # one account read and a book read; never the writer's transaction
        from gradient_pipeline.book.heartbeats import last_beat

        with book.connect(paper_account.db_path) as conn:
            assert last_beat(conn, "drawdown_evaluation") is not None  # the watchdog can see the sensor runs
        # 5) a mode that trades with no account configured: red
        monkeypatch.delenv("GRADIENT_ACCOUNT_ADDRESS")
        monkeypatch.delenv("GRADIENT_PRIVATE_KEY")
        with pytest.raises(DrawdownCheckBlind, match="no account"):
            tick(instance)


def test_equity_sensor_interval_and_account(tmp_path, monkeypatch):
    g = _gradient(tmp_path, risk={"equity_sensor_interval_s": 600})
    monkeypatch.delenv("GRADIENT_ACCOUNT_ADDRESS", raising=False)
    monkeypatch.delenv("GRADIENT_PRIVATE_KEY", raising=False)
    with dg.instance_for_test() as instance:
        skip = equity_sensor(dg.build_sensor_context(instance=instance, resources={"gradient": g}))
        assert isinstance(skip, dg.SkipReason) and "no account configured" in skip.skip_message
        monkeypatch.setenv("GRADIENT_ACCOUNT_ADDRESS", "0x" + "1" * 40)
        first = equity_sensor(dg.build_sensor_context(instance=instance, resources={"gradient": g}))
        assert isinstance(first, dg.SensorResult) and len(first.run_requests) == 1
        again = equity_sensor(dg.build_sensor_context(instance=instance, resources={"gradient": g}, cursor=first.cursor))
        assert isinstance(again, dg.SkipReason) and "next snapshot in" in again.skip_message
        later = equity_sensor(dg.build_sensor_context(instance=instance, resources={"gradient": g},
                                                      cursor=str(float(first.cursor) - 601)))
        assert isinstance(later, dg.SensorResult)
        # a snapshot run still in flight (e.g. queued behind a long backfill holding the writer slot): no pile-up
        from gradient_pipeline.defs.monitoring import defs as monitoring_defs

        job = dg.Definitions.merge(monitoring_defs, dg.Definitions(resources={"gradient": g})).resolve_job_def("monitor_job")
        instance.create_run_for_job(job_def=job, status=dg.DagsterRunStatus.STARTED)
        queued = equity_sensor(dg.build_sensor_context(instance=instance, resources={"gradient": g},
                                                       cursor=str(float(first.cursor) - 601)))
        assert isinstance(queued, dg.SkipReason) and "is still started" in queued.skip_message


def test_daily_summary_schedule_fires_at_its_hour(tmp_path, monkeypatch):
    g = _gradient(tmp_path, alerts={"daily_summary_hour_utc": 6})
    monkeypatch.setenv("GRADIENT_ACCOUNT_ADDRESS", "0x" + "1" * 40)
    with dg.instance_for_test() as instance:
        def at(hour):
            ctx = dg.build_schedule_context(instance=instance, resources={"gradient": g},
                                            scheduled_execution_time=dt.datetime(2025, 5, 2, hour, 5, tzinfo=dt.UTC))
            return daily_summary_schedule(ctx)

        assert isinstance(at(5), dg.SkipReason)
        req = at(6)
        assert isinstance(req, dg.RunRequest) and req.run_key == "daily-2025-05-02"


def test_drawdown_sensor_retries_the_stop_while_positions_remain(paper_account):
    """Halted but not flat (a flatten that failed, or a cancel-only stop) at the stop level: flatten again."""
    from gradient_pipeline.monitoring.equity import record_equity
    from gradient_pipeline.monitoring.halt import set_halt
    from gradient_pipeline_tests.monitoring.conftest import BOOK, open_book

    trading = paper_account.trading()
    open_book(trading, BOOK)
    g = GradientResource(config_path=str(paper_account.config_path), duckdb_path=str(paper_account.db_path))
    with g.book() as conn:
        record_equity(conn, trading.account_state(), paper_account.exchange.now(), "monitor")
        set_halt(conn, "operator pause", "operator")
        paper_account.exchange.price_shock(0.2, "BTC")
        paper_account.exchange.price_shock(0.2, "SOL")
        paper_account.exchange.price_shock(1.8, "ETH")
        paper_account.exchange.advance(1)
        record_equity(conn, trading.account_state(), paper_account.exchange.now(), "monitor")
    with dg.instance_for_test() as instance:
        ticks = [drawdown_sensor(dg.build_sensor_context(instance=instance, resources={"gradient": g}))
                 for _ in range(2)]  # a stop needs two consecutive breaching ticks
    req = ticks[1]
    assert isinstance(req, dg.RunRequest) and req.job_name == "emergency_stop_job"
    assert req.run_config["ops"]["emergency_flatten"]["config"]["drawdown_pct"] >= 20
