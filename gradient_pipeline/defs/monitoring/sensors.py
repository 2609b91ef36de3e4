"""Monitoring sensors and schedules (all default RUNNING: they are the safety net, not trading).

Sensors never open DuckDB: `drawdown_sensor` reads equity from the exchange every tick and the high-water mark
and halt state from the operations book (never blocked by a writer: WAL on SQLite, MVCC on PostgreSQL), and
records its evaluation as the `drawdown_evaluation` heartbeat. Work that writes more happens in the short runs
they launch.

- `equity_sensor`: every `risk.equity_sensor_interval_s` → `monitor_job` (snapshot + dashboard + alert review).
- `drawdown_sensor`: equity read from the exchange every tick vs the high-water mark (`monitoring/drawdown.py`);
  ≥ `risk.drawdown_warn_pct` → `drawdown_warning_job` (once until it clears); ≥ `emergency_stop_drawdown_pct` on
  `risk.drawdown_stop_ticks` consecutive ticks → `emergency_stop_job` unless already halted AND flat, or a stop
  run is still flattening. A check that cannot evaluate raises: the tick is red and an alert goes out.
- `run_failure_alert_sensor`: any failed run in this code location → `send_alert_job` (once per run).
- `daily_summary_schedule`: hourly tick that fires at `alerts.daily_summary_hour_utc` → `daily_summary_job`.
- `performance_report_schedule`: every 4h at :45 → `performance_report_job`.
"""


import logging
import os
import time

import dagster as dg

from gradient_pipeline.config import ACCOUNT_ADDRESS_ENV_VAR, PRIVATE_KEY_ENV_VAR
from gradient_pipeline.defs.monitoring.jobs import (
    daily_summary_job,
    drawdown_warning_job,
    emergency_stop_job,
    monitor_job,
    performance_report_job,
    send_alert_job,
)
from gradient_pipeline.defs.resources import GradientResource
from gradient_pipeline import runtags

log = logging.getLogger(__name__)

RUNNING = dg.DefaultSensorStatus.RUNNING


def _account_configured() -> bool:
    return bool(os.environ.get(ACCOUNT_ADDRESS_ENV_VAR) or os.environ.get(PRIVATE_KEY_ENV_VAR))


@dg.sensor(job=monitor_job, minimum_interval_seconds=30, default_status=RUNNING)
def equity_sensor(context: dg.SensorEvaluationContext, gradient: GradientResource):
    """Record mark-to-market equity every `risk.equity_sensor_interval_s` seconds (a short `monitor_job` run)."""
    if not _account_configured():
        return dg.SkipReason(f"no account configured ({ACCOUNT_ADDRESS_ENV_VAR} / {PRIVATE_KEY_ENV_VAR} unset)")
    interval = gradient.config.risk.equity_sensor_interval_s
    now = time.time()
    last = float(context.cursor or 0)
    if now - last < interval:
        return dg.SkipReason(f"next snapshot in {interval - (now - last):.0f}s")
    pending = context.instance.get_runs(
        filters=dg.RunsFilter(job_name=monitor_job.name, statuses=[
            dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]),
        limit=1,
    )
    if pending:  # a slow exchange or a busy run queue: do not pile up more
        return dg.SkipReason(f"monitor run {pending[0].run_id[:8]} is still {pending[0].status.value.lower()}")
    trading = context.instance.get_runs(  # a snapshot must not hold the writer slot the cycle's next run needs
        filters=dg.RunsFilter(job_name="trading_window_job", statuses=[
            dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]), limit=1,
    ) or context.instance.get_runs(filters=dg.RunsFilter(job_name="rebalance_job", statuses=[
        dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]), limit=1)
    if trading:
        return dg.SkipReason(f"trading cycle in progress ({trading[0].job_name} {trading[0].run_id[:8]}); "
                             "snapshot after it (every rebalance records equity itself)")
    bucket = int(now // interval)
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"equity-{bucket}")], cursor=str(now))


def drawdown_decision(gradient: GradientResource, instance: dg.DagsterInstance | None = None
                      ) -> dg.RunRequest | dg.SkipReason:
    """One drawdown tick: equity from the exchange (one account read), the decision of `monitoring.drawdown`
    (a stop only after `risk.drawdown_stop_ticks` consecutive breaching ticks), and what to launch.

    Raises `DrawdownCheckBlind` when the check cannot evaluate (no account in a mode that trades, no book,
    exchange unreachable longer than `risk.drawdown_unreachable_max_s`): the tick fails, red in the UI, and an
    alert has gone out. Never a green skip for a blind check.
    """
    from gradient_pipeline.monitoring.drawdown_check import DrawdownCheckBlind, check_drawdown

    cfg = gradient.config
    if cfg.mode == "dry_run" and not _account_configured():
        return dg.SkipReason("dry_run with no account configured: nothing is ever sent, drawdown not evaluated")
    result = check_drawdown(cfg, gradient.db_path)
    d = result.decision
    notes = "".join(f" [{n}]" for n in result.notes)
    if d.level == "cannot_evaluate":
        if d.alarm:
            raise DrawdownCheckBlind(f"drawdown check cannot evaluate: {d.reason}{notes}")
        return dg.SkipReason(f"NOT evaluated this tick: {d.reason}{notes}")
    run_config = {"ops": {"{op}": {"config": {"drawdown_pct": d.drawdown_pct, "account_value_usd": d.equity,
                                               "hwm_usd": d.hwm}}}}
    stamp = f"{result.heartbeat.evaluated_at:%Y%m%dT%H%M%S}"
    if d.level == "stop":
        if result.halted and not result.open_positions:
            return dg.SkipReason(f"drawdown {d.drawdown_pct:.2f}% at stop level; trading is halted and the account "
                                 "is flat" + notes)
        running = _in_progress(instance, emergency_stop_job.name)
        if running:  # it retries until flat by itself; a second one would only race it
            return dg.SkipReason(f"drawdown {d.drawdown_pct:.2f}% at stop level; emergency stop run {running} is "
                                 "still flattening" + notes)
        cfgd = {"ops": {"emergency_flatten": run_config["ops"]["{op}"]}}
        return dg.RunRequest(run_key=f"emergency-stop-{stamp}", job_name=emergency_stop_job.name, run_config=cfgd,
                             tags={runtags.DRAWDOWN_PCT: f"{d.drawdown_pct:.2f}"})
    if d.level == "warn":
        if result.warned:
            return dg.SkipReason(f"{d.reason}: warning already sent (re-arms below "
                                 f"{cfg.risk.drawdown_warn_pct:g}%)" + notes)
        cfgd = {"ops": {"send_drawdown_warning": run_config["ops"]["{op}"]}}
        return dg.RunRequest(run_key=f"drawdown-warn-{stamp}", job_name=drawdown_warning_job.name, run_config=cfgd,
                             tags={runtags.DRAWDOWN_PCT: f"{d.drawdown_pct:.2f}"})
    return dg.SkipReason(d.reason + notes)


def _in_progress(instance: dg.DagsterInstance | None, job_name: str) -> str | None:
    if instance is None:
        return None
    runs = instance.get_runs(
        filters=dg.RunsFilter(job_name=job_name, statuses=[
            dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]),
        limit=1,
    )
    return runs[0].run_id[:8] if runs else None


@dg.sensor(jobs=[drawdown_warning_job, emergency_stop_job], minimum_interval_seconds=60, default_status=RUNNING)
def drawdown_sensor(context: dg.SensorEvaluationContext, gradient: GradientResource):
    """Every minute: equity from the exchange vs the high-water mark. Warn at `risk.drawdown_warn_pct`; past
    `emergency_stop_drawdown_pct` on `risk.drawdown_stop_ticks` consecutive ticks launch the emergency stop
    (flatten until flat + halt). A tick that cannot evaluate FAILS (red) and alerts."""
    return drawdown_decision(gradient, context.instance)


@dg.run_failure_sensor(request_job=send_alert_job, default_status=RUNNING, minimum_interval_seconds=30)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext):
    """Alert every failed run of this code location (once per run id)."""
    run = context.dagster_run
    if run.job_name == send_alert_job.name:
        return dg.SkipReason("failures of the alert job itself are not alerted (no loop); see its logs")
    error = context.failure_event.message or "run failed"
    for step_event in context.get_step_failure_events()[:3]:  # the steps' own errors say what went wrong
        err = getattr(step_event.event_specific_data, "error", None)
        while err is not None and err.cause is not None:  # the innermost cause is the user's exception
            err = err.cause
        if err is not None:
            error += f"\nstep {step_event.step_key}: {err.message.strip()}"
    return dg.RunRequest(
        run_key=f"alert-{run.run_id}",
        run_config={"ops": {"send_run_failure_alert": {"config": {
            "job_name": run.job_name, "run_id": run.run_id, "error": error[:2000],
            "partition": run.tags.get("dagster/partition", "")}}}},
    )


@dg.schedule(job=daily_summary_job, cron_schedule="5 * * * *", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.RUNNING)
def daily_summary_schedule(context: dg.ScheduleEvaluationContext, gradient: GradientResource):
    """Hourly tick; fires once a day at `alerts.daily_summary_hour_utc` (the summary of the previous UTC day)."""
    t = context.scheduled_execution_time
    if t.hour != gradient.config.alerts.daily_summary_hour_utc:
        return dg.SkipReason(f"daily summary runs at {gradient.config.alerts.daily_summary_hour_utc:02d}:05 UTC")
    if not _account_configured():
        return dg.SkipReason("no account configured")
    return dg.RunRequest(run_key=f"daily-{t:%Y-%m-%d}")


@dg.schedule(job=performance_report_job, cron_schedule="45 */4 * * *", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.RUNNING)
def performance_report_schedule(context: dg.ScheduleEvaluationContext):
    """Refresh the performance report every 4h (after the rebalance)."""
    return dg.RunRequest(run_key=f"report-{context.scheduled_execution_time:%Y-%m-%d-%H}")
