"""Market data in Dagster: `candles`, `funding`, `universe` (group `market_data`), their checks, jobs and schedule."""

import dagster as dg

from gradient_pipeline.defs.market_data.assets import candles, funding, universe
from gradient_pipeline.defs.market_data.checks import candles_fresh, candles_no_gaps
from gradient_pipeline.defs.market_data.jobs import funding_refresh_job, market_data_job, market_data_schedule

defs = dg.Definitions(
    assets=[candles, funding, universe],
    asset_checks=[candles_fresh, candles_no_gaps],
    jobs=[market_data_job, funding_refresh_job],
    schedules=[market_data_schedule],
)
