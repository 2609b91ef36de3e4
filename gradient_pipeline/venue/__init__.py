"""The venue seam: a venue-neutral trading model (`model`), the `ExecutionVenue` protocol every adapter implements
(`protocol`) and the failures adapters raise in common words (`errors`). Names no venue; imports no SDK."""

from gradient_pipeline.venue.errors import ActionRefusedError, TradingConfigError, VenueError
from gradient_pipeline.venue.model import (
    AccountEquity,
    AccountState,
    Fill,
    InstrumentSpec,
    OpenOrder,
    OrderLookup,
    OrderOutcome,
    OrderRequest,
    Position,
    client_order_id,
)
from gradient_pipeline.venue.protocol import ExecutionVenue

__all__ = [
    "AccountEquity", "AccountState", "ActionRefusedError", "ExecutionVenue", "Fill", "InstrumentSpec", "OpenOrder",
    "OrderLookup", "OrderOutcome", "OrderRequest", "Position", "TradingConfigError", "VenueError", "client_order_id",
]
