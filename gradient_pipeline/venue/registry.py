"""Which adapter serves the configuration, and the ways callers reach it. The rest of the code calls these
(or receives an `ExecutionVenue` from the Dagster resource) and never imports an adapter.

An adapter is a module that provides:
- `open_venue(cfg, base_url=None, signer=None) -> ExecutionVenue` (signer None: sign iff the mode sends orders);
- `configured_account() -> str | None`: the account address from the environment;
- `signer_address() -> str`: the public address of the configured signing key (preflight);
- `read_account(cfg, account_address, client=None) -> AccountState`: one cheap account read (the drawdown tick).

Adding a venue: implement those in its package and add it to `ADAPTERS` (docs/ARCHITECTURE.md, "How to add a venue").
"""

from __future__ import annotations

import importlib
from types import ModuleType

from gradient_pipeline.config import GradientConfig
from gradient_pipeline.venue.model import AccountState
from gradient_pipeline.venue.protocol import ExecutionVenue

DEFAULT_VENUE = "hyperliquid"
ADAPTERS: dict[str, str] = {  # venue name → the adapter module providing the three entry points
    "hyperliquid": "gradient_pipeline.exchange.hyperliquid.factory",
}


def adapter(venue: str = DEFAULT_VENUE) -> ModuleType:
    try:
        return importlib.import_module(ADAPTERS[venue])
    except KeyError:
        raise ValueError(f"unknown venue {venue!r}; known: {', '.join(sorted(ADAPTERS))}") from None


def open_venue(cfg: GradientConfig, base_url: str | None = None, signer: bool | None = None,
               venue: str = DEFAULT_VENUE) -> ExecutionVenue:
    """The one factory of trading connections (jobs get it through the `venue` resource, CLI paths call it)."""
    return adapter(venue).open_venue(cfg, base_url=base_url, signer=signer)


def configured_account(venue: str = DEFAULT_VENUE) -> str | None:
    return adapter(venue).configured_account()


def signer_address(venue: str = DEFAULT_VENUE) -> str:
    """The public address of the configured signing key (raises `TradingConfigError` if there is none)."""
    return adapter(venue).signer_address()


def read_account(cfg: GradientConfig, account_address: str, client=None, venue: str = DEFAULT_VENUE) -> AccountState:
    return adapter(venue).read_account(cfg, account_address, client)
