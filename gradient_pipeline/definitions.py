"""The Dagster code location: merges each domain's definitions and the shared resources."""

import dagster as dg

from gradient_pipeline.defs import market_data, monitoring
from gradient_pipeline.defs import signals
from gradient_pipeline.defs import execution
from gradient_pipeline.defs.resources import RESOURCES

defs = dg.Definitions.merge(
    dg.Definitions(resources=RESOURCES),
    market_data.defs,
    monitoring.defs,
    signals.defs,
    execution.defs,
)
