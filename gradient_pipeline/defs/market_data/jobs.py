"""The market-data job (also the single-run backfill job), its 4h schedule, and the funding refresh job."""

from __future__ import annotations

import dagster as dg

from gradient_pipeline.defs.partitions import four_hourly
from gradient_pipeline import runtags

WRITER_TAGS = runtags.DUCKDB_WRITER  # serialised by dagster.yaml: one DuckDB writer at a time

market_data_job = dg.define_asset_job(
    "market_data_job",
    selection=dg.AssetSelection.groups("market_data"),
    tags=WRITER_TAGS,
    # One process: the steps share one exchange budget (nothing to gain from parallel steps), and funding's step
    # priority then writes it before the universe snapshot reads it.
    executor_def=dg.in_process_executor,
    description="Candles, funding and universe for one 4h window, or a whole range in one run (single-run backfill).",
)

funding_refresh_job = dg.define_asset_job(
    "funding_refresh_job",
    selection=dg.AssetSelection.assets("funding"),
    # No DuckDB writer tag on purpose: this run spends minutes waiting for exchange budget and holds the DuckDB file
    # only for its short write (`GradientResource.db` waits for a lock), so it must not take the writer slot the
    # next window's run and the rebalance queue for. Low run priority: queued monitors and trading runs go first.
    tags={"dagster/priority": "-1"},
    executor_def=dg.in_process_executor,
    description="Funding for the windows since the last stored one, after the window's rebalance was launched "
                "(off the trading cycle's critical path; low priority on the shared exchange budget).",
)


@dg.schedule(job=market_data_job, cron_schedule="2 */4 * * *", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.STOPPED)
def market_data_schedule(context: dg.ScheduleEvaluationContext):
    """Every 4h, two minutes after the close: fetch the window that just closed (only that window).

    For a market-data-only deployment. When trading, `trading_cycle_schedule` (defs/execution) already runs these
    assets as part of each window's run: turn on one or the other, not both.
    """
    key = four_hourly.get_partition_keys(current_time=context.scheduled_execution_time)[-1]
    return dg.RunRequest(run_key=key, partition_key=key)
