"""The Hyperliquid adapter: the only code that talks to Hyperliquid (through `hyperliquid-python-sdk`).

- `client.HyperliquidClient`: base URL, timeout, weight limiter, retries, SDK `Info` (and `Exchange`) construction.
- `market_data.MarketData`: universe, complete candles, funding history as typed frames.
- `wire`: wire strings/ms -> typed frames (the only parser of exchange payloads).
- `ratelimit.WeightLimiter`: the per-IP weight budget.
- `errors`: typed failures and their retry classification.
- `payloads`: account and order payloads → the venue-neutral model (`gradient_pipeline.venue.model`).
- `rounding`: Hyperliquid's instrument rules (`HyperliquidInstrument`, an `InstrumentSpec`).
- `trading.TradingClient`: the `ExecutionVenue` implementation (signed actions, account reads).
- `account`: the cheap per-tick equity read; `factory`: the one place a client is built from config + env.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time `__getattr__` below imports on first use
    from gradient_pipeline.exchange.hyperliquid.client import HyperliquidClient
    from gradient_pipeline.exchange.hyperliquid.errors import (
        ExchangeError,
        ExchangeRequestError,
        ExchangeUnavailableError,
        RateLimitedError,
        UnknownCoinError,
        WireFormatError,
    )
    from gradient_pipeline.exchange.hyperliquid.market_data import MarketData

# Lazy (PEP 562): `import gradient_pipeline.exchange.hyperliquid.errors` (what the Dagster definitions need at load
# time) must not import the SDK, eth_account and the HTTP stack — every run process and code server pays for that.
_EXPORTS = {
    "HyperliquidClient": "client",
    "MarketData": "market_data",
    **{name: "errors" for name in ("ExchangeError", "ExchangeRequestError", "ExchangeUnavailableError",
                                   "RateLimitedError", "UnknownCoinError", "WireFormatError")},
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
