"""MarketData against the real local exchange replaying the recorded data: complete candles only, delisted coins,
pagination, funding, universe contexts, unknown coins."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gradient_pipeline.exchange.hyperliquid import UnknownCoinError, wire
from gradient_pipeline.timegrid import to_ms

BTC_ETH_RDNT = ["BTC", "ETH", "RDNT", "AI", "CYBER", "kPEPE", "SOL"]


def test_forming_candle_dropped_mid_window(local_exchange_factory, connect, recorded):
    ex = local_exchange_factory(start_time="2025-03-01 06:30", coins=["BTC", "ETH"])
    client, md = connect(ex)
    assert md.server_time() == pd.Timestamp("2025-03-01 06:30")
    # The exchange itself returns the forming 04:00 candle ...
    raw = client.info().candles_snapshot("BTC", "4h", to_ms("2025-02-28"), to_ms("2025-03-01 06:30"))
    assert pd.Timestamp(raw[-1]["t"], unit="ms") == pd.Timestamp("2025-03-01 04:00")
    # ... the adapter keeps only candles whose close time (ts + 4h) is at or before the exchange's now.
    df = md.candles("BTC", "2025-02-28 00:00")
    assert df["ts"].tolist() == list(pd.date_range("2025-02-28 00:00", "2025-03-01 00:00", freq="4h"))
    assert md.complete_window_end() == pd.Timestamp("2025-03-01 00:00")
    # Values are the recorded candle, parsed to floats.
    rec = recorded("BTC", "4h").set_index("date").loc[pd.Timestamp("2025-03-01 00:00")]
    last = df.iloc[-1]
    assert (last["open"], last["high"], last["low"], last["close"], last["volume"]) == pytest.approx(
        (rec["open"], rec["high"], rec["low"], rec["close"], rec["volume"]), rel=1e-12
    )
    assert last["trades"] > 0 and df["trades"].dtype == np.int64


def test_candle_counts_exactly_at_its_close_time(local_exchange_factory, connect):
    ex = local_exchange_factory(start_time="2025-03-01 07:59:59", coins=["BTC"])
    _, md = connect(ex)
    assert md.candles("BTC", "2025-03-01")["ts"].tolist() == [pd.Timestamp("2025-03-01 00:00")]
    ex.set_time("2025-03-01 08:00")
    assert md.candles("BTC", "2025-03-01")["ts"].tolist() == [pd.Timestamp("2025-03-01 00:00"), pd.Timestamp("2025-03-01 04:00")]
    assert md.complete_window_end() == pd.Timestamp("2025-03-01 04:00")


def test_candles_range_is_start_inclusive_end_exclusive(local_exchange_factory, connect):
    ex = local_exchange_factory(start_time="2025-03-05 00:10", coins=["ETH"])
    _, md = connect(ex)
    df = md.candles("ETH", "2025-02-27 02:00", "2025-02-28 00:00")  # start inside the 00:00 candle
    assert df["ts"].tolist() == list(pd.date_range("2025-02-27 04:00", "2025-02-27 20:00", freq="4h"))
    assert (df["coin"] == "ETH").all()
    one = md.candles("ETH", "2025-03-04 16:00", "2025-03-04 20:00", now=pd.Timestamp("2025-03-05 00:10"))
    assert one["ts"].tolist() == [pd.Timestamp("2025-03-04 16:00")]


def test_pagination_over_more_than_5000_candles(local_exchange_factory, connect, recorded):
    # The history limit is raised so more than one 5000-candle page exists; the server still caps each response.
    ex = local_exchange_factory(start_time="2025-07-20 01:00", coins=["BTC"], candle_history_limit=100_000)
    client, md = connect(ex)
    df = md.candles("BTC", "2023-01-01")
    rec = recorded("BTC", "4h")
    expected = rec[(rec["date"] >= "2023-01-01") & (rec["date"] + pd.Timedelta(hours=4) <= "2025-07-20 01:00")]
    assert len(expected) > 5000
    assert df["ts"].tolist() == expected["date"].tolist()
    np.testing.assert_allclose(df["close"].to_numpy(), expected["close"].to_numpy(), rtol=1e-12)
    assert df["ts"].is_unique and df["ts"].is_monotonic_increasing
    # meta + exchangeStatus + two candle pages
    assert client.limiter.stats().requests == 4


def test_funding_paginated_in_500_row_pages(local_exchange_factory, connect, recorded):
    ex = local_exchange_factory(start_time="2025-03-10 00:30", coins=["BTC"])
    client, md = connect(ex)
    df = md.funding("BTC", "2025-01-01", "2025-03-01")
    rec = recorded("BTC", "funding")
    expected = rec[(rec["date"] >= "2025-01-01") & (rec["date"] < "2025-03-01")]
    assert len(df) == len(expected) > 1000
    assert df["ts"].tolist() == expected["date"].tolist()  # exact ms kept
    np.testing.assert_allclose(df["rate"].to_numpy(), expected["open"].to_numpy(), rtol=1e-9, atol=1e-15)
    assert list(df.columns) == ["coin", "ts", "rate", "premium"] and (df["coin"] == "BTC").all()
    assert client.limiter.stats().requests == 1 + 3  # meta + 3 pages of <= 500 (no exchangeStatus: end given)
    # Default end = the exchange's now.
    recent = md.funding("BTC", "2025-03-09 20:00")
    assert recent["ts"].dt.floor("h").tolist() == list(pd.date_range("2025-03-09 20:00", "2025-03-10 00:00", freq="h"))


def test_delisted_coins_excluded_without_shifting_indices(local_exchange_factory, connect):
    ex = local_exchange_factory(start_time="2025-04-10 12:00", coins=BTC_ETH_RDNT)
    client, md = connect(ex)
    before = md.universe().set_index("coin")
    assert not before["is_delisted"].any()
    ex.set_time("2025-04-13 00:00")  # RDNT, AI and CYBER ended 2025-04-11
    full = md.universe().set_index("coin")
    assert full.loc[["RDNT", "AI", "CYBER"], "is_delisted"].all()
    assert full["asset_index"].to_dict() == before["asset_index"].to_dict()  # nothing renumbered
    listed = md.universe(include_delisted=False)
    assert set(listed["coin"]) == set(full.index) - {"RDNT", "AI", "CYBER"}
    assert listed.set_index("coin")["asset_index"].to_dict() == {c: full.loc[c, "asset_index"] for c in listed["coin"]}
    assert md.listed_coins() == listed["coin"].tolist()
    # The SDK's name→asset map (used for orders) agrees with the universe rows.
    info = client.info()
    assert all(info.name_to_asset(c) == int(i) for c, i in full["asset_index"].items())
    # Delisted coins keep their candles up to the delisting.
    rdnt = md.candles("RDNT", "2025-04-10")
    assert rdnt["ts"].max() == pd.Timestamp("2025-04-11 00:00")


def test_universe_contexts_typed(local_exchange_factory, connect):
    ex = local_exchange_factory(start_time="2025-04-13 00:00", coins=BTC_ETH_RDNT)
    _, md = connect(ex)
    u = md.universe()
    assert list(u.columns) == wire.UNIVERSE_COLUMNS + wire.CTX_EXTRA_COLUMNS
    assert u["asset_index"].tolist() == list(range(len(u)))
    btc = u.set_index("coin").loc["BTC"]
    assert btc["mark_px"] > 10_000 and btc["day_ntl_vlm"] > 1e6 and btc["open_interest"] > 0
    assert btc["oracle_px"] == btc["mark_px"] and np.isfinite(btc["funding"])
    assert u.set_index("coin").loc["kPEPE", "sz_decimals"] == 0
    rdnt = u.set_index("coin").loc["RDNT"]
    assert rdnt["is_delisted"] and np.isnan(rdnt["mid_px"]) and rdnt["day_ntl_vlm"] == 0.0
    for col in ["day_ntl_vlm", "mark_px", "oracle_px", "open_interest", "funding"]:
        assert u[col].dtype == np.float64


def test_unknown_coin_is_a_clear_error(local_exchange_factory, connect):
    ex = local_exchange_factory(start_time="2025-04-13 00:00", coins=["kPEPE", "BTC"])
    client, md = connect(ex)
    with pytest.raises(UnknownCoinError, match=r"coin 'KPEPE' is not in the perp universe.*case-sensitive"):
        md.candles("KPEPE", "2025-04-01")
    with pytest.raises(UnknownCoinError, match="'DOGE'"):
        md.funding("DOGE", "2025-04-01")
    assert len(md.candles("kPEPE", "2025-04-12")) == 6


def test_info_built_from_meta_once(local_exchange_factory, connect):
    ex = local_exchange_factory(start_time="2025-04-13 00:00", coins=["BTC", "ETH"])
    client, _ = connect(ex)
    info = client.info()
    assert client.info() is info
    assert client.limiter.stats().requests == 1  # just `meta`; no spotMeta, no second meta
    assert info.timeout == client.timeout_s and info.ws_manager is None
    client.meta(refresh=True)
    assert client.info() is not info
