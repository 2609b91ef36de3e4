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

__all__ = [
    "ExchangeError",
    "ExchangeRequestError",
    "ExchangeUnavailableError",
    "HyperliquidClient",
    "MarketData",
    "RateLimitedError",
    "UnknownCoinError",
    "WireFormatError",
]
