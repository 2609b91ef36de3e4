"""The 4h trading cycle: the schedule asks for the window that just closed; the sensor chains the rebalance."""

import datetime as dt

import dagster as dg

from gradient_pipeline.definitions import defs
from gradient_pipeline.defs.execution.schedule import (
    rebalance_after_window,
    trading_cycle_schedule,
    trading_window_job,
)


def test_schedule_requests_the_window_that_just_closed():
    assert trading_cycle_schedule.cron_schedule == "5 */4 * * *"
    ctx = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2025, 3, 1, 4, 5, tzinfo=dt.UTC),
                                    repository_def=defs.get_repository_def())
    req = trading_cycle_schedule.evaluate_tick(ctx).run_requests[0]
    assert req.partition_key == "2025-03-01-00:00" and req.run_key == "2025-03-01-00:00"


def test_window_job_builds_targets_with_their_upstream():
    job = defs.resolve_job_def(trading_window_job.name)
    nodes = {n.name for n in job.graph.node_defs}
    assert {"candles", "funding", "universe", "returns", "momentum_scores", "target_weights"} <= nodes
    assert "executed_orders" not in nodes  # trading is never part of an asset selection


def _succeeded_window_run(instance, key):
    return instance.create_run_for_job(defs.resolve_job_def(trading_window_job.name),
                                       tags={"dagster/partition": key}, status=dg.DagsterRunStatus.SUCCESS)


def test_sensor_requests_a_rebalance_for_the_window_and_skips_while_one_runs():
    instance = dg.DagsterInstance.ephemeral()
    run = _succeeded_window_run(instance, "2025-03-01-00:00")
    ctx = dg.build_run_status_sensor_context(
        sensor_name=rebalance_after_window.name, dagster_instance=instance, dagster_run=run,
        dagster_event=dg.DagsterEvent(event_type_value="PIPELINE_SUCCESS", job_name=run.job_name),
    )
    req = rebalance_after_window(ctx)
    assert isinstance(req, dg.RunRequest)
    assert req.run_config == {"ops": {"check_targets": {"config": {"window": "2025-03-01-00:00"}}}}
    assert req.tags["gradient/exclusive"] == "rebalance" and run.run_id in req.run_key
    # a rebalance already running: visible skip instead of another request
    busy = instance.create_run_for_job(defs.resolve_job_def("rebalance_job"), status=dg.DagsterRunStatus.STARTED)
    assert busy.status == dg.DagsterRunStatus.STARTED
    skip = rebalance_after_window(ctx)
    assert isinstance(skip, dg.SkipReason) and "still running" in skip.skip_message
