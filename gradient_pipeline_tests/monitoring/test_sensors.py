"""Sensors never wait for a writer (DuckDB or the operations book), respect the configured interval, and the daily
schedule fires only at its hour."""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import time

import dagster as dg
import duckdb

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


def test_drawdown_sensor_never_waits_for_a_writer(tmp_path, book_backend):
    g = _gradient(tmp_path)
    with dg.instance_for_test() as instance:
        skip = drawdown_sensor(dg.build_sensor_context(instance=instance, resources={"gradient": g}))
        assert isinstance(skip, dg.SkipReason) and "no equity snapshot" in skip.skip_message  # a new book
        ctx_mp = mp.get_context("spawn")
        ready, go = ctx_mp.Event(), ctx_mp.Event()
        proc = ctx_mp.Process(target=_hold, args=(g.duckdb_path, ready, go))
        proc.start()
        try:
            assert ready.wait(60)
            t0 = time.monotonic()
            skip = drawdown_sensor(dg.build_sensor_context(instance=instance, resources={"gradient": g}))
            waited = time.monotonic() - t0
            # it read the book (the writer's uncommitted snapshot is invisible) without waiting for the writer
            assert isinstance(skip, dg.SkipReason) and "no equity snapshot" in skip.skip_message
            assert waited < 1.0, waited
        finally:
            go.set()
            proc.join(30)
        from gradient_pipeline.book.heartbeats import last_beat

        with g.book() as conn:
            assert last_beat(conn, "drawdown_evaluation") is not None  # the watchdog can see the sensor runs


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
        req = drawdown_sensor(dg.build_sensor_context(instance=instance, resources={"gradient": g}))
    assert isinstance(req, dg.RunRequest) and req.job_name == "emergency_stop_job"
    assert req.run_config["ops"]["emergency_flatten"]["config"]["drawdown_pct"] >= 20
