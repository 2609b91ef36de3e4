"""A real panel (a dozen coins, freqtrade data up to 2024-04-01) shared by the core tests."""

from __future__ import annotations

import pandas as pd
import pytest

from gradient_pipeline.core.panel import panel_from_frames
from gradient_pipeline.marketdata.freqtrade import load_candles, load_funding

COINS = ["BTC", "ETH", "SOL", "DOGE", "ARB", "OP", "LINK", "AVAX", "INJ", "SUI", "WIF", "RLB", "kPEPE", "TIA"]
END = pd.Timestamp("2024-04-01")


@pytest.fixture(scope="session")
def real_frames(freqtrade_dir):
    return load_candles(freqtrade_dir, coins=COINS, end=END), load_funding(freqtrade_dir, coins=COINS, end=END)


@pytest.fixture(scope="session")
def real_panel(real_frames):
    return panel_from_frames(*real_frames)
