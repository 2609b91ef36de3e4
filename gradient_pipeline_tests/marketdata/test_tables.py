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


def test_replace_coins_touches_only_the_covered_coins(conn):
    tables.replace_window(conn, "candles", _candles([("BTC", "2025-01-01 00:00"), ("ETH", "2025-01-01 00:00"),
                                                     ("ETH", "2025-01-01 04:00")]), "2025-01-01", "2025-01-02")
    new = _candles([("BTC", "2025-01-01 00:00"), ("BTC", "2025-01-01 04:00")])
    assert tables.lost_rows(conn, "candles", new, "2025-01-01", "2025-01-02", {"BTC"}).empty
    lost = tables.lost_rows(conn, "candles", new, "2025-01-01", "2025-01-02", {"BTC", "ETH"})
    assert list(zip(lost["coin"], lost["ts"])) == [("ETH", pd.Timestamp("2025-01-01 00:00")),
                                                   ("ETH", pd.Timestamp("2025-01-01 04:00"))]
    tables.replace_coins(conn, "candles", new, "2025-01-01", "2025-01-02", {"BTC"})
    got = tables.read_candles(conn)
    assert sorted(zip(got["coin"], got["ts"].astype(str))) == [
        ("BTC", "2025-01-01 00:00:00"), ("BTC", "2025-01-01 04:00:00"),
        ("ETH", "2025-01-01 00:00:00"), ("ETH", "2025-01-01 04:00:00")]
    with pytest.raises(ValueError, match=r"rows for coin\(s\) \['BTC'\] not in the coins being replaced"):
        tables.replace_coins(conn, "candles", new, "2025-01-01", "2025-01-02", {"ETH"})


def test_keep_ingested_at_only_for_unchanged_rows(conn):
    old = _candles([("BTC", "2025-01-01 00:00"), ("BTC", "2025-01-01 04:00")])
    tables.replace_window(conn, "candles", old, "2025-01-01", "2025-01-02")
    new = old.assign(ingested_at=pd.Timestamp("2025-06-01"))
    new.loc[1, "close"] = 1.6
    kept = tables.keep_ingested_at(conn, new, "2025-01-01", "2025-01-02")
    assert kept["ingested_at"].tolist() == [pd.Timestamp("2025-01-02"), pd.Timestamp("2025-06-01")]


def test_replace_keys_keeps_rows_the_rebuild_does_not_produce(conn):
    from gradient_pipeline.marketdata.transform import build_universe

    windows = pd.date_range("2025-01-01", periods=2, freq="4h")
    cands = _candles([("BTC", "2025-01-01 00:00"), ("BTC", "2025-01-01 04:00")])
    info = pd.DataFrame({"coin": ["BTC", "OLD"], "asset_index": pd.NA, "sz_decimals": pd.NA, "max_leverage": pd.NA,
                         "only_isolated": pd.NA})
    gone = pd.DataFrame({"ts": [windows[1]], "coin": ["OLD"]})
    empty = pd.DataFrame({"coin": pd.Series(dtype=object), "ts": pd.Series(dtype="datetime64[ns]"),
                          "rate": pd.Series(dtype=float)})
    then = build_universe(windows, cands, empty, info, gone)
    tables.replace_window(conn, "universe", then, windows[0], windows[1] + pd.Timedelta("4h"))
    now = build_universe(windows, cands, empty, info, gone.iloc[:0])  # the source no longer says OLD was delisted
    tables.replace_keys(conn, "universe", now, windows[0], windows[1] + pd.Timedelta("4h"))
    got = tables.read_universe(conn)
    assert list(zip(got["coin"], got["is_delisted"])) == [("BTC", False), ("BTC", False), ("OLD", True)]
