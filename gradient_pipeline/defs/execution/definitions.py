"""Execution definitions: lineage asset, rebalance job, trading-window and warm-up jobs, schedule and sensor."""

import dagster as dg

from gradient_pipeline.defs.execution.jobs import executed_orders, rebalance_job
from gradient_pipeline.defs.resources import VenueResource
from gradient_pipeline.defs.execution.schedule import (
    rebalance_after_window,
    trading_cycle_schedule,
    trading_window_job,
    warm_up_job,
)

defs = dg.Definitions(
    assets=[executed_orders],
    jobs=[rebalance_job, trading_window_job, warm_up_job],
    schedules=[trading_cycle_schedule],
    sensors=[rebalance_after_window],
    # Op outputs are small dicts; they must not go to a DuckDB IO manager (dagster-notes §2.8).
    # `venue`: the trading client of the rebalance job (one factory, defs/resources.py); a test may bind another.
    resources={"op_io_manager": dg.FilesystemIOManager(), "venue": VenueResource()},
)
