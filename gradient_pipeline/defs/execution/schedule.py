"""The 4h trading cycle: a schedule runs the new window's assets, a run-status sensor then runs the rebalance.

Why two steps and not one job: the assets are partitioned and the rebalance is not an asset (it acts on the
world), so they cannot share one asset job; chaining through `run_status_sensor` keeps each run small, shows the
window's data run and its rebalance run side by side in the UI, and the rebalance only starts when the data run
**succeeded** (a failed blocking check fails that run, so no rebalance is requested; the rebalance job also
re-checks the checks itself, for runs launched by hand).

- `trading_cycle_schedule`: `5 */4 * * *` UTC — five minutes after each candle close; requests
  `trading_window_job` for the window that just closed (run_key = partition key, so a tick is never run twice).
- `rebalance_after_window`: on success of `trading_window_job`, requests `rebalance_job` for that window
  (run_key = the data run's id). Two rebalances never overlap: the `gradient/exclusive` tag limit queues the
  second; if one is still running the sensor reports a visible skip instead of queueing more.

Both default to STOPPED: turning on automatic trading is a deliberate act (UI toggle or
`dagster schedule start trading_cycle_schedule` + `dagster sensor start rebalance_after_window`).
The offline demo calls `window_run_request` and `rebalance_run_request` itself with the replay clock.
"""


import dagster as dg

from gradient_pipeline.defs.execution.jobs import (
    REBALANCE_TAGS,
    rebalance_job,
    rebalance_run_config,
)
from gradient_pipeline.timegrid import latest_complete_bar_open, partition_key

trading_window_job = dg.define_asset_job(
    "trading_window_job",
    selection=dg.AssetSelection.assets("target_weights").upstream(),
    tags={"gradient/duckdb": "writer"},
    description="Market data → signals → target_weights (with their blocking checks) for one 4h window.",
)


def window_run_request(now) -> dg.RunRequest:
    """The data run for the window that closed most recently at `now` (exchange or wall clock)."""
    key = partition_key(latest_complete_bar_open(now))
    return dg.RunRequest(run_key=key, partition_key=key, tags={"gradient/window": key})


@dg.schedule(job=trading_window_job, cron_schedule="5 */4 * * *", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.STOPPED)
def trading_cycle_schedule(context: dg.ScheduleEvaluationContext):
    """Every 4h, five minutes after the candle close: build the new window's targets (the rebalance follows)."""
    return window_run_request(context.scheduled_execution_time)


def rebalance_run_request(window_key: str, upstream_run_id: str) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=f"rebalance-{window_key}-{upstream_run_id}",
        run_config=rebalance_run_config(window_key),
        tags={**REBALANCE_TAGS, "gradient/window": window_key, "gradient/upstream_run": upstream_run_id},
    )


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[trading_window_job],
    request_job=rebalance_job,
    default_status=dg.DefaultSensorStatus.STOPPED,
    minimum_interval_seconds=30,
)
def rebalance_after_window(context: dg.RunStatusSensorContext):
    """After a window's targets are materialised and checked, rebalance to them."""
    run = context.dagster_run
    key = run.tags.get("dagster/partition")
    if not key:
        return dg.SkipReason(f"run {run.run_id[:8]} has no partition; only windowed runs trigger a rebalance")
    active = context.instance.get_runs(
        filters=dg.RunsFilter(job_name=rebalance_job.name,
                              statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING]),
        limit=1,
    )
    if active:
        return dg.SkipReason(f"rebalance run {active[0].run_id[:8]} is still running; window {key} not queued")
    return rebalance_run_request(key, run.run_id)
