"""A DuckDB file with real candles for a handful of coins (through the market-data tables), and a config file."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from gradient_pipeline.defs.resources import GradientResource
from gradient_pipeline.marketdata import tables as market
from gradient_pipeline.marketdata.freqtrade import load_candles, load_funding
from gradient_pipeline.marketdata.transform import prepare_candles, prepare_funding
from gradient_pipeline.storage.db import connect

REPO = Path(__file__).resolve().parents[2]
# liquid majors, mid caps, a late listing (WIF, 2024-01) and a coin delisted in April 2025 (RLB)
COINS = ["BTC", "ETH", "SOL", "DOGE", "ARB", "OP", "LINK", "AVAX", "INJ", "SUI", "WIF", "RLB"]
DATA_END = pd.Timestamp("2024-04-01")


def write_config(path: Path, **overrides) -> Path:
    data = json.loads((REPO / "config" / "gradient_live.json").read_text())
    for k, v in overrides.items():
        data[k] = v
    path.write_text(json.dumps(data))
    return path


@pytest.fixture(scope="session")
def market_frames(freqtrade_dir):
    candles = load_candles(freqtrade_dir, coins=COINS, end=DATA_END)
    funding = load_funding(freqtrade_dir, coins=COINS, end=DATA_END)
    return candles, funding


def fill_db(db: Path, candles: pd.DataFrame, funding: pd.DataFrame) -> None:
    rows, _ = prepare_candles(candles, "freqtrade", pd.Timestamp("2025-01-01"))
    with connect(db) as conn:
        market.ensure(conn)
        market.replace_window(conn, "candles", rows, rows.ts.min(), rows.ts.max() + pd.Timedelta(hours=4))
        f = prepare_funding(funding)
        market.replace_window(conn, "funding", f, f.ts.min(), f.ts.max() + pd.Timedelta(hours=1))


@pytest.fixture
def signals_db(tmp_path, market_frames):
    """(resources, db path, config path) with the real candles of COINS up to DATA_END stored."""
    db = tmp_path / "g.duckdb"
    fill_db(db, *market_frames)
    cfg = write_config(tmp_path / "cfg.json", duckdb_path=str(db))
    return {"gradient": GradientResource(config_path=str(cfg), duckdb_path=str(db))}, db, cfg


def materialize_range(resources, first_key: str, last_key: str, assets=None):
    from gradient_pipeline.defs.signals import momentum_scores, returns, target_weights
    from gradient_pipeline.defs.signals.checks import target_weights_invariants

    return dg.materialize(
        assets or [returns, momentum_scores, target_weights, target_weights_invariants],
        resources=resources,
        tags={"dagster/asset_partition_range_start": first_key, "dagster/asset_partition_range_end": last_key},
        raise_on_error=False,
    )


def materialize_one(resources, key: str, assets=None):
    from gradient_pipeline.defs.signals import momentum_scores, returns, target_weights
    from gradient_pipeline.defs.signals.checks import target_weights_invariants

    return dg.materialize(assets or [returns, momentum_scores, target_weights, target_weights_invariants],
                          resources=resources, partition_key=key, raise_on_error=False)
