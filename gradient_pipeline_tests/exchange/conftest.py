"""Fixtures for the exchange adapter's tests against the real local exchange."""

from __future__ import annotations

import pandas as pd
import pytest

from gradient_pipeline.config import RateLimitConfig
from gradient_pipeline.exchange.hyperliquid import HyperliquidClient, MarketData

# Retries stay real but short, so fault tests finish in a second or two.
FAST_RETRY = RateLimitConfig(backoff_base_s=0.05, backoff_max_s=0.5, max_retries=4)


@pytest.fixture
def connect():
    """`connect(handle, **rate_limit_overrides) -> (client, market_data)` for a running local exchange."""

    def _connect(handle, timeout_s: float = 5.0, **overrides):
        cfg = FAST_RETRY.model_copy(update=overrides)
        client = HyperliquidClient(handle.base_url, cfg, timeout_s)
        return client, MarketData(client)

    return _connect


@pytest.fixture(scope="session")
def recorded(freqtrade_dir):
    """`recorded(coin, kind)` -> the freqtrade feather the local exchange replays ('4h' candles or 'funding')."""

    def _read(coin: str, kind: str) -> pd.DataFrame:
        suffix = {"4h": "4h-futures", "1h": "1h-futures", "funding": "1h-funding_rate"}[kind]
        df = pd.read_feather(freqtrade_dir / f"{coin}_USDC_USDC-{suffix}.feather")
        df["date"] = df["date"].dt.tz_convert("UTC").dt.tz_localize(None)
        return df

    return _read
