"""History for research runs as a `core.panel.Panel`, from the DuckDB tables or a freqtrade directory."""

from __future__ import annotations

from pathlib import Path

from gradient_pipeline.core.panel import Panel, panel_from_frames
from gradient_pipeline.timegrid import utc_naive


def load_panel_freqtrade(directory, end=None, coins=None) -> Panel:
    """Every 4h candle (from each coin's first trade) and funding with open time < ``end``."""
    from gradient_pipeline.marketdata.freqtrade import load_candles, load_funding

    end = utc_naive(end) if end is not None else None
    candles = load_candles(Path(directory), coins=coins, end=end)
    funding = load_funding(Path(directory), coins=coins, end=end + _four_h() if end is not None else None)
    if candles.empty:
        raise ValueError(f"no candles in freqtrade directory {directory} before {end}")
    return panel_from_frames(candles, funding, end=end)


def load_panel_duckdb(conn, end=None) -> Panel:
    """Stored candles / funding / universe with open time < ``end`` (funding up to the last bar's close)."""
    from gradient_pipeline.marketdata import tables as market

    end = utc_naive(end) if end is not None else None
    candles = market.read_candles(conn, end=end)
    if candles.empty:
        raise ValueError(f"table candles has no rows before {end}: load market data first (gradient-pipeline backfill)")
    funding = market.read_funding(conn, end=end + _four_h() if end is not None else None)
    universe = market.read_universe(conn, end=end)
    return panel_from_frames(candles, funding, universe, end=end)


def _four_h():
    from gradient_pipeline.timegrid import BAR

    return BAR
