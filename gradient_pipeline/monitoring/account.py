"""The exchange access monitoring needs: the one trading-client factory (`venue.registry.open_venue`).

Reads use the master address (`GRADIENT_ACCOUNT_ADDRESS`); the API-wallet key (`GRADIENT_PRIVATE_KEY`) is only
loaded when an action must be signed (the emergency flatten), so monitoring spends the same request budget and
uses the same timeout as trading.
"""

from __future__ import annotations

from gradient_pipeline.config import GradientConfig
from gradient_pipeline.venue.protocol import ExecutionVenue


def open_trading(cfg: GradientConfig, signer: bool = False) -> ExecutionVenue:
    """Connect to `cfg.base_url`. `signer=True` loads the API-wallet key (needed to cancel and close)."""
    from gradient_pipeline.venue.registry import open_venue

    return open_venue(cfg, signer=signer)
