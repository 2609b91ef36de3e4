"""Shared helpers for the local exchange's market-data tests: the real SDK client and independent feather reads."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from hyperliquid.info import Info

from gradient_pipeline import timegrid

NO_SPOT = {"universe": [], "tokens": []}
HOUR_MS = 3_600_000


def sdk_info(ex, timeout: float | None = 10.0) -> Info:
    """The real SDK client against a running local exchange (no HTTP at construction except `meta`)."""
    return Info(ex.base_url, skip_ws=True, spot_meta=NO_SPOT, timeout=timeout)


def feather(data_dir: Path, coin: str, kind: str) -> pd.DataFrame:
    """Read a recorded file directly (independently of the service): kind '4h', '1h' or 'funding'."""
    suffix = {"4h": "4h-futures", "1h": "1h-futures", "funding": "1h-funding_rate"}[kind]
    df = pd.read_feather(data_dir / f"{coin}_USDC_USDC-{suffix}.feather")
    df["t"] = (df["date"].dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ms]").astype("int64"))
    return df


def ms(ts) -> int:
    return timegrid.to_ms(ts)
