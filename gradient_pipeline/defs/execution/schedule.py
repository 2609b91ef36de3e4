"""The 4h trading cycle: a schedule runs the new window's assets, a run-status sensor then runs the rebalance.

Why two steps and not one job: the assets are partitioned and the rebalance is not an asset (it acts on the
world), so they cannot share one asset job; chaining through `run_status_sensor` keeps each run small, shows the
window's data run and its rebalance run side by side in the UI, and the rebalance only starts when the data run
**succeeded** (a failed blocking check fails that run, so no rebalance is requested; the rebalance job also
re-checks the checks itself, for runs launched by hand).

- `trading_cycle_schedule` (cron = `schedule.cron`, default every 4h at `schedule.offset_minutes` = 0 past the
  close): asks the **exchange** for its clock (`server_time`, the same call the rebalance gate uses) and requests
  `trading_window_job` for the exchange's newest complete window — so paper (a replaying local exchange whose clock
  is anywhere), testnet and mainnet follow one code path. A tick that finds no new complete window (already
  requested, or the exchange clock is before the partitions start) returns a `SkipReason` saying so, instead of
  launching a run that would fail. A tick that lands a few seconds before the exchange's close (clock skew) waits
  up to `schedule.clock_grace_s` for it.
- `rebalance_after_window`: on success of `trading_window_job`, requests `rebalance_job` for that window
  (run_key = the data run's id), unless trading is halted or the window's rebalance is already complete in the
  ledger (a visible `SkipReason` with the reason). In the same tick, after it, it requests `funding_refresh_job`
  for the window and every window since the last stored funding (funding is off the critical path: nothing the
  targets are built from reads it; the run holds no DuckDB writer slot and spends the exchange budget at low
  priority). A skipped window's funding is caught up by the next traded window's run. Two rebalances never overlap: the `gradient/exclusive` tag limit
  queues the second; if one is still running the sensor reports a visible skip instead of queueing more.

Both default to STOPPED: turning on automatic trading is a deliberate act (UI toggle or
`dagster schedule start trading_cycle_schedule` + `dagster sensor start rebalance_after_window`).
The offline demo calls `window_run_request` and `rebalance_run_request` itself with the replay clock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import dagster as dg
import pandas as pd

from gradient_pipeline.config import ConfigError, GradientConfig, ScheduleConfig, load_config
from gradient_pipeline.defs.execution.latency import TICK_LAG_TAG
from gradient_pipeline.defs.execution.jobs import (
    REBALANCE_TAGS,
    rebalance_job,
    rebalance_run_config,
)
from gradient_pipeline.defs.market_data.jobs import funding_refresh_job
from gradient_pipeline.defs.partitions import PARTITIONS_START
from gradient_pipeline.defs.resources import GradientResource
from gradient_pipeline.timegrid import BAR, latest_complete_bar_open, parse_partition_key, partition_key, utc_naive
from gradient_pipeline import runtags

log = logging.getLogger(__name__)

WINDOW_TAG = runtags.WINDOW
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
# How far back the funding refresh catches up (windows): one fundingHistory page (500 hours) covers 20 days, so up
# to 20 days of missed windows (a halt, a failed refresh) still cost one request per coin. Beyond: `backfill`.
FUNDING_CATCH_UP_WINDOWS = 120
WINDOW_CLOSE_TAG = runtags.WINDOW_CLOSE  # exchange-clock close of the window (latency starts here)
# Trading runs jump the run queue ahead of monitor/report runs waiting for the same DuckDB writer slot.
TRADING_PRIORITY = {"dagster/priority": "10"}

trading_window_job = dg.define_asset_job(
    "trading_window_job",
    # target_weights and what it is built from: candles → universe, returns → momentum_scores → target_weights.
    # Funding is not upstream of the targets, so it is not on this run's (critical) path: `rebalance_after_window`
    # refreshes it in its own run.
    selection=dg.AssetSelection.assets("target_weights").upstream(),
    tags=runtags.DUCKDB_WRITER,
    # One process for every step: per-step process start-up (5–7 s each) dominated the signal steps, and the
    # market-data steps gain nothing from running in parallel — they share one exchange budget.
    executor_def=dg.in_process_executor,
    description="Market data → signals → target_weights (with their blocking checks) for one 4h window.",
)

warm_up_job = dg.define_asset_job(
    "warm_up_job",
    selection=dg.AssetSelection.assets("target_weights").upstream() | dg.AssetSelection.assets("funding"),
    tags=runtags.DUCKDB_WRITER,
    executor_def=dg.in_process_executor,
    description="The window run's assets plus funding, for a range of history (`gradient-pipeline warm-up`).",
)


def _schedule_settings() -> ScheduleConfig:
    """The cron is fixed when the code location loads; an unreadable config falls back to the defaults (runs
    still fail loudly on it)."""
    try:
        return load_config().schedule
    except ConfigError:
        return ScheduleConfig()


SCHEDULE = _schedule_settings()


def window_run_request(now) -> dg.RunRequest:
    """The data run for the window that closed most recently at `now` (the exchange's clock)."""
    bar = latest_complete_bar_open(now)
    key = partition_key(bar)
    lag = (utc_naive(now) - (bar + BAR)).total_seconds()  # the cycle's latency budget starts at the close
    return dg.RunRequest(run_key=key, partition_key=key,
                         tags={WINDOW_TAG: key, WINDOW_CLOSE_TAG: (bar + BAR).isoformat(), TICK_LAG_TAG: f"{lag:.3f}",
                               **TRADING_PRIORITY})


def exchange_clock_after_grace(server_time: Callable[[], pd.Timestamp], grace_s: float,
                               sleep: Callable[[float], None] = time.sleep) -> pd.Timestamp:
    """The exchange's now; if it is within `grace_s` before a 4h close, wait for the close and ask again.

    The scheduler ticks on the host's minute; the exchange's clock may be a moment behind it. Without the wait, a
    tick at the close would see the previous window and skip the new one for a whole cycle.
    """
    now = utc_naive(server_time())
    to_close = (latest_complete_bar_open(now) + 2 * BAR - now).total_seconds()
    if 0 < to_close <= grace_s:
        sleep(to_close + 0.2)
        now = utc_naive(server_time())
    return now


def window_tick(instance: dg.DagsterInstance, now: pd.Timestamp, partitions_start: str = PARTITIONS_START,
                ) -> dg.RunRequest | dg.SkipReason:
    """What the schedule does at exchange time `now`: request the newest complete window, or say why not."""
    req = window_run_request(now)
    key = req.partition_key
    next_close = latest_complete_bar_open(now) + 2 * BAR
    if parse_partition_key(key) < parse_partition_key(partitions_start):
        return dg.SkipReason(f"the exchange's newest complete window {key} (exchange clock {now}) is before the "
                             f"partitions start {partitions_start}")
    done = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("target_weights"), asset_partitions=[key]), limit=1).records
    if done:  # by the schedule, by hand, by a backfill or the warm-up's range runs: all count
        return dg.SkipReason(f"no new complete window: the newest, {key} (exchange clock {now}), was materialised "
                             f"by run {done[0].run_id[:8]}; the next closes at {next_close}")
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=trading_window_job.name, tags={"dagster/partition": key}),
                             limit=1)
    if runs:  # queued or running, or it failed (its failure was alerted; relaunching every tick would only repeat it)
        return dg.SkipReason(f"window {key} (exchange clock {now}) already has run {runs[0].run_id[:8]} "
                             f"({runs[0].status.value.lower()}); the next closes at {next_close}")
    return req


def schedule_decision(instance: dg.DagsterInstance, cfg: GradientConfig,
                      sleep: Callable[[float], None] = time.sleep) -> dg.RunRequest | dg.SkipReason:
    """Ask the configured exchange for its clock (weight 2, shared budget) and decide the tick."""
    from gradient_pipeline.exchange.hyperliquid.client import HyperliquidClient

    client = HyperliquidClient.from_config(cfg)
    now = exchange_clock_after_grace(client.server_time, cfg.schedule.clock_grace_s, sleep)
    return window_tick(instance, now)


@dg.schedule(job=trading_window_job, cron_schedule=SCHEDULE.cron_schedule, execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.STOPPED)
def trading_cycle_schedule(context: dg.ScheduleEvaluationContext, gradient: GradientResource):
    """Every 4h at the close (config `schedule`): build the exchange's newest complete window (the rebalance follows).

    Skips, with the reason, when that window already has a run."""
    return schedule_decision(context.instance, gradient.config)


def rebalance_run_request(window_key: str, upstream_run_id: str) -> dg.RunRequest:
    close = parse_partition_key(window_key) + BAR
    return dg.RunRequest(
        run_key=f"rebalance-{window_key}-{upstream_run_id}",
        job_name=rebalance_job.name,
        run_config=rebalance_run_config(window_key),
        tags={**REBALANCE_TAGS, **TRADING_PRIORITY, WINDOW_TAG: window_key, WINDOW_CLOSE_TAG: close.isoformat(),
              runtags.UPSTREAM_RUN: upstream_run_id},
    )


def rebalance_skip_reason(db_path: str, window_key: str, mode: str) -> str | None:
    """Why the sensor should not launch the window's rebalance (a read of the operations book), or None.

    Halted trading and an already complete rebalance are skips with their reason, not runs. A book that cannot be
    read launches the run, which decides itself (it checks the halt and the ledger too, and fails loudly).
    """
    from gradient_pipeline.book import connect
    from gradient_pipeline.book.ledger import finished_rebalance_for_window
    from gradient_pipeline.monitoring.halt import halt_reason, is_halted

    try:
        with connect(db_path) as conn:
            if is_halted(conn):
                return f"trading is halted ({halt_reason(conn)}); window {window_key} not rebalanced"
            done = finished_rebalance_for_window(conn, parse_partition_key(window_key), mode)
    except Exception as err:  # noqa: BLE001 - the run itself will say what is wrong
        log.warning("rebalance sensor could not read the book (%s); launching the run", type(err).__name__)
        return None
    if done:
        return f"window {window_key} already rebalanced ({done[0]} {done[1]}); nothing to do"
    return None


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[trading_window_job],
    request_jobs=[rebalance_job, funding_refresh_job],
    default_status=dg.DefaultSensorStatus.STOPPED,
    minimum_interval_seconds=5,
)
def rebalance_after_window(context: dg.RunStatusSensorContext, gradient: GradientResource):
    """After a window's targets are materialised and checked, rebalance to them (skips while halted or done), then
    refresh the window's funding in a second run requested after it (off the critical path)."""
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
    skip = rebalance_skip_reason(gradient.db_path, key, gradient.config.mode)
    if skip:
        return dg.SkipReason(skip)
    # The rebalance first: created first and at priority 10, it leaves the queue before the funding run (priority
    # -1), and the daemon launches runs one after another. A funding run requested on its own (an earlier design
    # had a second sensor) could be created, and launched, ahead of the rebalance and delay it.
    funding = funding_run_request(context.instance, key, run.run_id)
    return [rebalance_run_request(key, run.run_id)] + ([funding] if isinstance(funding, dg.RunRequest) else [])


def _funding_done(instance: dg.DagsterInstance, keys: list[str]) -> set[str]:
    recs = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("funding"), asset_partitions=keys), limit=len(keys)).records
    return {r.partition_key for r in recs}


def funding_run_request(instance: dg.DagsterInstance, window_key: str, upstream_run_id: str,
                        catch_up: int = FUNDING_CATCH_UP_WINDOWS,
                        partitions_start: str = PARTITIONS_START) -> dg.RunRequest | dg.SkipReason:
    """The funding refresh after a window run: every window since the last one with funding stored, up to this one.

    One run, one request per coin for the whole range (a partition-range run), spending the shared exchange budget
    at low priority (`background`), so it never delays the rebalance launched for the same window.
    """
    last = parse_partition_key(window_key)
    first_allowed = max(last - (catch_up - 1) * BAR, parse_partition_key(partitions_start))
    keys = [partition_key(t) for t in pd.date_range(first_allowed, last, freq=BAR)]
    done = _funding_done(instance, keys)
    if window_key in done:
        return dg.SkipReason(f"funding for window {window_key} is already stored")
    first = window_key
    for key in reversed(keys[:-1]):  # walk back to the newest window that has funding stored
        if key in done:
            break
        first = key
    tags = {WINDOW_TAG: window_key, runtags.UPSTREAM_RUN: upstream_run_id}
    if first == window_key:
        kwargs = {"partition_key": window_key}
    else:
        tags.update({RANGE_START_TAG: first, RANGE_END_TAG: window_key})
        kwargs = {}
    return dg.RunRequest(run_key=f"funding-{window_key}-{upstream_run_id}", job_name=funding_refresh_job.name,
                         run_config={"ops": {"funding": {"config": {"background": True}}}}, tags=tags, **kwargs)
