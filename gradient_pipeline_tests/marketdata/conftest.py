"""Fixtures for market-data tests: small real freqtrade directories and resources on a tmp DuckDB file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pytest

from gradient_pipeline.demo_data import FUTURES_DIR
from gradient_pipeline.marketdata import freqtrade as ft

# BTC/ETH trade throughout the demo range; AI is delisted inside it (last candle 2025-04-11 00:00).
SMALL_COINS = ("BTC", "ETH", "AI")


def write_candle_file(directory: Path, coin: str, frame: pd.DataFrame, timeframe: str = "4h") -> None:
    """Write `ts, open, high, low, close, volume` in freqtrade's format (tz-aware UTC `date`)."""
    out = frame.rename(columns={"ts": "date"})[["date", "open", "high", "low", "close", "volume"]].copy()
    out["date"] = pd.to_datetime(out["date"]).dt.tz_localize("UTC")
    feather.write_feather(pa.Table.from_pandas(out, preserve_index=False), ft.candle_path(directory, coin, timeframe))


@pytest.fixture
def small_ft_dir(tmp_path) -> Path:
    """A writable freqtrade directory with three real coins from the bundled demo extract."""
    d = tmp_path / "futures"
    d.mkdir()
    for coin in SMALL_COINS:
        for path in (ft.candle_path(FUTURES_DIR, coin), ft.funding_path(FUTURES_DIR, coin)):
            shutil.copyfile(path, d / path.name)
    return d


@pytest.fixture
def make_resources(tmp_path):
    """`make_resources(source_dir, **config)` -> {"gradient": GradientResource} on tmp_path/t.duckdb."""
    from gradient_pipeline.defs.resources import GradientResource

    def make(freqtrade_dir: Path | None = None, **config):
        data = dict(config.pop("data", {}))
        if freqtrade_dir is not None:
            data.update(source="freqtrade", freqtrade_dir=str(freqtrade_dir))
        cfg = tmp_path / "config.json"
        cfg.write_text(json.dumps({**config, "data": data}))
        return {"gradient": GradientResource(config_path=str(cfg), duckdb_path=str(tmp_path / "t.duckdb"))}

    return make


def read_table(resources, table: str) -> pd.DataFrame:
    import duckdb

    path = resources["gradient"].db_path
    if not Path(path).exists():
        return pd.DataFrame()
    con = duckdb.connect(path, read_only=True)
    try:
        exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]).fetchone()[0]
        return con.execute(f"SELECT * FROM {table} ORDER BY ALL").df() if exists else pd.DataFrame()
    finally:
        con.close()
