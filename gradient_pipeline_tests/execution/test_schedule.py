"""The 4h trading cycle: the schedule asks the exchange for its newest complete window (every mode, one path) and
skips with the reason when there is nothing new; the sensor chains the rebalance, or skips while halted/done."""

import datetime as dt
import json

import dagster as dg
import pandas as pd

from gradient_pipeline.config import parse_config
from gradient_pipeline.definitions import defs
from gradient_pipeline.defs.execution.schedule import (
    exchange_clock_after_grace,
    funding_run_request,
    warm_up_job,
    rebalance_after_window,
    schedule_decision,
    trading_cycle_schedule,
    trading_window_job,
    window_tick,
)
from gradient_pipeline.defs.market_data.jobs import funding_refresh_job
from gradient_pipeline.defs.resources import GradientResource
from gradient_pipeline.book import connect, ledger
from gradient_pipeline.monitoring.halt import set_halt


def test_cron_and_offset_come_from_the_configuration():
    assert trading_cycle_schedule.cron_schedule == "0 */4 * * *"  # default: at the close (offset 0)
    assert parse_config({"schedule": {"offset_minutes": 2}}).schedule.cron_schedule == "2 */4 * * *"
    assert parse_config({"schedule": {"cron": "* * * * *"}}).schedule.cron_schedule == "* * * * *"


def test_schedule_follows_the_exchange_clock_not_the_wall_clock(local_exchange_factory, tmp_path):
    """Paper: the replay clock is in 2025 while the wall clock is not — the tick asks the exchange."""
    ex = local_exchange_factory(start_time="2025-03-01 04:00:30", coins=["BTC", "ETH"])
    cfg = parse_config({"exchange_base_url": ex.base_url, "duckdb_path": str(tmp_path / "g.duckdb")})
    with dg.instance_for_test() as instance:
        _schedule_follows_the_exchange(ex, cfg, instance, tmp_path)


def _schedule_follows_the_exchange(ex, cfg, instance, tmp_path):
    req = schedule_decision(instance, cfg)
    assert isinstance(req, dg.RunRequest)
    assert req.partition_key == "2025-03-01-00:00" and req.run_key == "2025-03-01-00:00"
    assert req.tags["gradient/window_close"] == "2025-03-01T04:00:00"
    # through the schedule definition itself, with a wall-clock tick time that has nothing to do with the replay
    cfg_file = tmp_path / "gradient.json"
    cfg_file.write_text(json.dumps({"exchange_base_url": ex.base_url, "duckdb_path": str(tmp_path / "g.duckdb")}))
    ctx = dg.build_schedule_context(instance=instance, resources={"gradient": GradientResource(
        config_path=str(cfg_file))}, scheduled_execution_time=dt.datetime(2031, 1, 1, 0, 0, tzinfo=dt.UTC),
        repository_def=defs.get_repository_def())
    tick = trading_cycle_schedule.evaluate_tick(ctx)
    assert [r.partition_key for r in tick.run_requests] == ["2025-03-01-00:00"]
    # once the window has a run, the next tick in the same window is a skip that says why
    instance.create_run_for_job(defs.resolve_job_def(trading_window_job.name),
                                tags={**req.tags, "dagster/partition": req.partition_key},
                                status=dg.DagsterRunStatus.FAILURE)
    skip = schedule_decision(instance, cfg)
    assert isinstance(skip, dg.SkipReason)  # a failed window run is not relaunched every tick (it was alerted)
    assert "already has run" in skip.skip_message and "failure" in skip.skip_message
    instance.report_runless_asset_event(dg.AssetMaterialization("target_weights", partition=req.partition_key))
    skip = schedule_decision(instance, cfg)
    assert "no new complete window" in skip.skip_message and "2025-03-01-00:00" in skip.skip_message
    ex.advance(pd.Timedelta(hours=4))
    assert schedule_decision(instance, cfg).partition_key == "2025-03-01-04:00"


def test_a_tick_just_before_the_exchange_close_waits_for_it():
    clock = [pd.Timestamp("2025-03-01 03:59:50")]
    slept = []

    def sleep(s):
        slept.append(s)
        clock[0] += pd.Timedelta(seconds=s)

    now = exchange_clock_after_grace(lambda: clock[0], 20.0, sleep)
    assert now >= pd.Timestamp("2025-03-01 04:00:00") and len(slept) == 1
    assert window_tick(dg.DagsterInstance.ephemeral(), now).partition_key == "2025-03-01-00:00"
    clock[0] = pd.Timestamp("2025-03-01 03:58:00")  # far from a close: no wait
    exchange_clock_after_grace(lambda: clock[0], 20.0, sleep)
    assert len(slept) == 1


def test_window_before_the_partitions_start_is_a_skip():
    skip = window_tick(dg.DagsterInstance.ephemeral(), pd.Timestamp("2022-06-01 05:00"), "2023-01-01-00:00")
    assert isinstance(skip, dg.SkipReason) and "before the partitions start" in skip.skip_message


def test_window_job_builds_targets_with_their_upstream_in_one_process():
    job = defs.resolve_job_def(trading_window_job.name)
    nodes = {n.name for n in job.graph.node_defs}
    assert {"candles", "universe", "returns", "momentum_scores", "target_weights"} <= nodes
    assert "executed_orders" not in nodes  # trading is never part of an asset selection
    # funding is off the critical path: nothing the targets are built from reads it, it has its own run
    assert "funding" not in nodes
    assert job.executor_def.name == "in_process"
    warm = defs.resolve_job_def(warm_up_job.name)  # the warm-up still stores funding history, in the same run
    assert {"funding", "target_weights"} <= {n.name for n in warm.graph.node_defs}
    assert defs.resolve_job_def(funding_refresh_job.name).executor_def.name == "in_process"
    assert "gradient/duckdb" not in funding_refresh_job.tags  # never holds the writer slot the cycle queues for


def test_funding_follows_each_window_and_catches_up_what_it_missed():
    instance = dg.DagsterInstance.ephemeral()
    run = _succeeded_window_run(instance, "2025-03-01-08:00")
    instance.report_runless_asset_event(dg.AssetMaterialization("funding", partition="2025-03-01-00:00"))
    req = funding_run_request(instance, "2025-03-01-08:00", run.run_id)
    assert isinstance(req, dg.RunRequest) and req.job_name == "funding_refresh_job"
    # the two windows since the last stored one, in one range run, at low priority on the exchange budget
    assert req.tags["dagster/asset_partition_range_start"] == "2025-03-01-04:00"
    assert req.tags["dagster/asset_partition_range_end"] == "2025-03-01-08:00"
    assert req.run_config == {"ops": {"funding": {"config": {"background": True}}}}
    assert run.run_id in req.run_key
    for key in ("2025-03-01-04:00", "2025-03-01-08:00"):
        instance.report_runless_asset_event(dg.AssetMaterialization("funding", partition=key))
    skip = funding_run_request(instance, "2025-03-01-08:00", run.run_id)
    assert isinstance(skip, dg.SkipReason) and "already stored" in skip.skip_message
    nxt = funding_run_request(instance, "2025-03-01-12:00", "r2")
    assert nxt.partition_key == "2025-03-01-12:00" and "dagster/asset_partition_range_start" not in nxt.tags
    # nothing stored in the catch-up horizon: at most that many windows, never an unbounded range
    far = funding_run_request(instance, "2025-04-01-00:00", "r3", catch_up=6)
    assert far.tags["dagster/asset_partition_range_start"] == "2025-03-31-04:00"


def _succeeded_window_run(instance, key):
    return instance.create_run_for_job(defs.resolve_job_def(trading_window_job.name),
                                       tags={"dagster/partition": key}, status=dg.DagsterRunStatus.SUCCESS)


def _sensor_ctx(instance, run, db_path):
    return dg.build_run_status_sensor_context(
        sensor_name=rebalance_after_window.name, dagster_instance=instance, dagster_run=run,
        dagster_event=dg.DagsterEvent(event_type_value="PIPELINE_SUCCESS", job_name=run.job_name),
        resources={"gradient": GradientResource(duckdb_path=db_path)},
    )


def test_sensor_requests_a_rebalance_for_the_window_and_skips_while_one_runs(tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    run = _succeeded_window_run(instance, "2025-03-01-00:00")
    ctx = _sensor_ctx(instance, run, str(tmp_path / "none.duckdb"))
    req, funding = rebalance_after_window(ctx)  # the rebalance first, then the window's funding refresh
    assert req.job_name == "rebalance_job" and funding.job_name == "funding_refresh_job"
    assert funding.tags["gradient/window"] == "2025-03-01-00:00"  # nothing stored yet: a catch-up range ending here
    assert funding.tags["dagster/asset_partition_range_end"] == "2025-03-01-00:00"
    assert req.run_config == {"ops": {"check_targets": {"config": {"window": "2025-03-01-00:00"}}}}
    assert req.tags["gradient/exclusive"] == "rebalance" and run.run_id in req.run_key
    assert req.tags["dagster/priority"] == "10"  # ahead of queued monitor runs
    # a rebalance already running: visible skip instead of another request
    busy = instance.create_run_for_job(defs.resolve_job_def("rebalance_job"), status=dg.DagsterRunStatus.STARTED)
    assert busy.status == dg.DagsterRunStatus.STARTED
    skip = rebalance_after_window(ctx)
    assert isinstance(skip, dg.SkipReason) and "still running" in skip.skip_message


def test_sensor_skips_a_halted_or_already_rebalanced_window(tmp_path):
    db = str(tmp_path / "g.duckdb")
    instance = dg.DagsterInstance.ephemeral()
    run = _succeeded_window_run(instance, "2025-03-01-00:00")
    with connect(db) as conn:
        ledger.start_rebalance(conn, "paper-x", pd.Timestamp("2025-03-01 00:00"), "paper", "local", "0xabc", 1.0)
        ledger.finish_rebalance(conn, "paper-x", "complete", None)
    skip = rebalance_after_window(_sensor_ctx(instance, run, db))
    assert isinstance(skip, dg.SkipReason) and "already rebalanced" in skip.skip_message
    with connect(db) as conn:
        set_halt(conn, "drawdown 25% ≥ 20%", source="test")
    skip = rebalance_after_window(_sensor_ctx(instance, _succeeded_window_run(instance, "2025-03-01-04:00"), db))
    assert isinstance(skip, dg.SkipReason) and "halted" in skip.skip_message and "drawdown 25%" in skip.skip_message


def test_equity_snapshots_wait_while_a_trading_run_is_in_flight(tmp_path, monkeypatch):
    """A monitor run must not take the DuckDB writer slot the cycle's next run is waiting for."""
    from gradient_pipeline.defs.monitoring.sensors import equity_sensor

    monkeypatch.setenv("GRADIENT_ACCOUNT_ADDRESS", "0x" + "1" * 40)
    cfg_file = tmp_path / "gradient.json"
    cfg_file.write_text(json.dumps({"duckdb_path": str(tmp_path / "g.duckdb"), "risk": {"equity_sensor_interval_s": 60}}))
    g = GradientResource(config_path=str(cfg_file))
    with dg.instance_for_test() as instance:
        assert isinstance(equity_sensor(dg.build_sensor_context(instance=instance, resources={"gradient": g})),
                          dg.SensorResult)
        instance.create_run_for_job(defs.resolve_job_def("rebalance_job"), status=dg.DagsterRunStatus.STARTING)
        skip = equity_sensor(dg.build_sensor_context(instance=instance, resources={"gradient": g}))
        assert isinstance(skip, dg.SkipReason) and "trading cycle in progress" in skip.skip_message
