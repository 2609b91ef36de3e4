"""DuckDB market tables: window replace, read helpers, gap finder."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from gradient_pipeline.marketdata import tables
from gradient_pipeline.marketdata.transform import prepare_candles


def _candles(coin_ts: list[tuple[str, str]]) -> pd.DataFrame:
    raw = pd.DataFrame({"coin": [c for c, _ in coin_ts], "ts": pd.to_datetime([t for _, t in coin_ts]),
                        "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 10.0})
    rows, _ = prepare_candles(raw, "freqtrade", pd.Timestamp("2025-01-02"))
    return rows


@pytest.fixture
def conn():
    c = duckdb.connect()
    tables.ensure(c)
    tables.ensure(c)  # idempotent
    yield c
    c.close()


def test_replace_window_refuses_rows_outside_it(conn):
    rows = _candles([("BTC", "2025-01-01 00:00"), ("BTC", "2025-01-01 04:00")])
    with pytest.raises(ValueError, match="outside the window .* coin BTC at 2025-01-01 04:00"):
        tables.replace_window(conn, "candles", rows, "2025-01-01 00:00", "2025-01-01 04:00")
    assert tables.read_candles(conn).empty


def test_window_reads_and_gaps(conn):
    rows = _candles([("BTC", "2025-01-01 00:00"), ("BTC", "2025-01-01 04:00"), ("BTC", "2025-01-01 16:00"),
                     ("ETH", "2025-01-01 04:00"), ("ETH", "2025-01-01 08:00")])
    assert tables.replace_window(conn, "candles", rows, "2025-01-01", "2025-01-02") == 5
    assert tables.read_candles(conn, "2025-01-01 04:00", "2025-01-01 08:00")["coin"].tolist() == ["BTC", "ETH"]
    assert tables.read_candles(conn, coins=["ETH"])["ts"].tolist() == list(pd.to_datetime(["2025-01-01 04:00", "2025-01-01 08:00"]))
    assert tables.coins_with_candle_in(conn, "2025-01-01 08:00", "2025-01-01 12:00") == {"ETH"}
    assert tables.window_row_count(conn, "candles", "2025-01-01 04:00") == 2
    gaps = tables.candle_gaps(conn)
    assert gaps.to_dict("records") == [{"coin": "BTC", "after": pd.Timestamp("2025-01-01 04:00"),
                                        "before": pd.Timestamp("2025-01-01 16:00"), "missing_bars": 2}]
    assert tables.stored_range(conn) == (pd.Timestamp("2025-01-01 00:00"), pd.Timestamp("2025-01-01 16:00"))
