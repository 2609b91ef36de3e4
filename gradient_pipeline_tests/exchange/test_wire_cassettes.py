"""Wire parsing against real recorded mainnet responses (the SDK's cassettes): exact values, types and order."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from gradient_pipeline.exchange.hyperliquid import wire
from gradient_pipeline.exchange.hyperliquid.errors import WireFormatError
from gradient_pipeline_tests.exchange.cassettes import response


@pytest.fixture(scope="module")
def kpepe_candles(cassette_dir):
    return response(cassette_dir, "test_get_candles_snapshot.yaml", "candleSnapshot")


@pytest.fixture(scope="module")
def btc_funding(cassette_dir):
    return response(cassette_dir, "test_get_funding_history[None].yaml", "fundingHistory")


@pytest.fixture(scope="module")
def meta_2023(cassette_dir):
    return response(cassette_dir, "test_get_info.yaml", "meta")


def test_candles_kpepe_1h_exact(kpepe_candles):
    df = wire.parse_candles(kpepe_candles, "kPEPE")
    assert list(df.columns) == ["coin", "ts", "open", "high", "low", "close", "volume", "trades"]
    assert len(df) == 24
    assert (df["coin"] == "kPEPE").all()
    assert df["ts"].dtype == np.dtype("datetime64[ns]") and df["ts"].dt.tz is None
    for col in ["open", "high", "low", "close", "volume"]:
        assert df[col].dtype == np.float64, col
    assert df["trades"].dtype == np.int64
    first, last = df.iloc[0], df.iloc[-1]
    # 1684699200000 ms = 2023-05-21 20:00 UTC: the candle containing startTime (20:46:47) is returned.
    assert first["ts"] == pd.Timestamp("2023-05-21 20:00:00")
    assert (first["open"], first["high"], first["low"], first["close"]) == (0.001601, 0.001616, 0.001601, 0.001604)
    assert first["volume"] == 520665683.0 and first["trades"] == 709
    assert last["ts"] == pd.Timestamp("2023-05-22 19:00:00")
    assert (last["open"], last["high"], last["low"], last["close"]) == (0.001538, 0.001548, 0.001536, 0.00154)
    assert last["volume"] == 308219489.0 and last["trades"] == 430
    assert (df["ts"].diff().dropna() == pd.Timedelta(hours=1)).all()
    assert df["trades"].sum() == 18028


def test_candles_wrong_coin_is_rejected(kpepe_candles):
    with pytest.raises(WireFormatError, match=r"candleSnapshot BTC item 0: field 's' is 'kPEPE'"):
        wire.parse_candles(kpepe_candles, "BTC")


def test_candles_bad_number_names_item_and_field(kpepe_candles):
    bad = copy.deepcopy(kpepe_candles)
    bad[3]["c"] = "abc"
    with pytest.raises(WireFormatError, match=r"item 3 \(t=1684710000000\): field 'c' is not a number: 'abc'"):
        wire.parse_candles(bad, "kPEPE")
    bad = copy.deepcopy(kpepe_candles)
    del bad[5]["v"]
    with pytest.raises(WireFormatError, match=r"item 5 .*field 'v' is missing"):
        wire.parse_candles(bad, "kPEPE")


def test_candles_not_a_list():
    with pytest.raises(WireFormatError, match="expected a JSON array, got dict"):
        wire.parse_candles({"error": "Could not parse JSON: <html>"}, "BTC")


def test_candles_overlapping_pages_dedup_and_sort(kpepe_candles):
    # Page 2 re-sends the boundary candle (pagination by startTime = last t + 1 overlaps one candle).
    page = list(reversed(kpepe_candles[:13])) + kpepe_candles[12:]
    df = wire.parse_candles(page, "kPEPE")
    assert len(df) == 24 and df["ts"].is_monotonic_increasing


def test_candles_empty_has_typed_columns():
    df = wire.parse_candles([], "BTC")
    assert df.empty and list(df.columns) == wire.CANDLE_COLUMNS
    assert df["ts"].dtype == np.dtype("datetime64[ns]") and df["trades"].dtype == np.int64


def test_funding_btc_exact(btc_funding):
    df = wire.parse_funding(btc_funding, "BTC")
    assert list(df.columns) == ["coin", "ts", "rate", "premium"]
    assert len(df) == 1038
    first, last = df.iloc[0], df.iloc[-1]
    assert first["ts"] == pd.Timestamp(1683849600048, unit="ms") == pd.Timestamp("2023-05-12 00:00:00.048")
    assert (first["rate"], first["premium"]) == (-0.00061334, -0.00091334)
    assert last["ts"] == pd.Timestamp("2023-07-17 21:00:00.065")
    assert (last["rate"], last["premium"]) == (0.0000125, 0.00007028)
    assert df["ts"].is_monotonic_increasing and df["ts"].is_unique


def test_funding_switches_from_8h_to_1h(btc_funding):
    ts = wire.parse_funding(btc_funding, "BTC")["ts"]
    gaps = ts.diff().dropna().dt.round("1h")
    first_hourly = ts.iloc[:-1][gaps.values == pd.Timedelta(hours=1)].iloc[0]
    # The first 1h gap starts at 1686182400254 ms = 2023-06-08 00:00:00.254 (8-hourly funding before).
    assert first_hourly == pd.Timestamp(1686182400254, unit="ms")
    before = ts.iloc[1:].values <= first_hourly.to_datetime64()
    assert before.sum() > 50 and (gaps[before] == pd.Timedelta(hours=8)).all()
    # After the switch every gap is 1h except one missing hour in the real record (ending 2023-07-02 21:00).
    after = gaps[~before]
    assert (after == pd.Timedelta(hours=1)).sum() == 955 and (after == pd.Timedelta(hours=2)).sum() == 1


def test_funding_with_end_time_exact(cassette_dir):
    raw = response(cassette_dir, "test_get_funding_history[1684811870000].yaml", "fundingHistory")
    df = wire.parse_funding(raw, "BTC")
    assert len(df) == 34
    assert df.iloc[-1]["ts"] == pd.Timestamp(1684800000022, unit="ms")
    assert df.iloc[-1]["rate"] == -0.00018991


def test_meta_28_coins(meta_2023):
    df = wire.parse_universe(meta_2023)
    assert list(df.columns) == wire.UNIVERSE_COLUMNS + wire.CTX_EXTRA_COLUMNS
    assert len(df) == 28
    assert df["asset_index"].tolist() == list(range(28))
    kpepe = df.set_index("coin").loc["kPEPE"]
    assert kpepe["asset_index"] == 15 and kpepe["sz_decimals"] == 0 and kpepe["max_leverage"] == 50
    btc = df.set_index("coin").loc["BTC"]
    assert btc["asset_index"] == 0 and btc["sz_decimals"] == 5
    assert df.iloc[-1]["coin"] == "APT" and df.iloc[-1]["sz_decimals"] == 2
    assert (df["max_leverage"] == 50).all() and not df["is_delisted"].any() and not df["only_isolated"].any()
    assert df[["day_ntl_vlm", "mark_px", "funding"]].isna().all().all()  # plain meta has no contexts
    assert df["asset_index"].dtype == np.int64 and df["is_delisted"].dtype == bool


def test_meta_same_in_every_cassette(cassette_dir, meta_2023):
    for name in ["test_get_candles_snapshot.yaml", "test_get_l2_snapshot.yaml", "test_get_funding_history[None].yaml"]:
        pd.testing.assert_frame_equal(wire.parse_universe(response(cassette_dir, name, "meta")), wire.parse_universe(meta_2023))


def test_delisted_keeps_raw_index_and_contexts(meta_2023):
    meta = copy.deepcopy(meta_2023)
    meta["universe"][2].update(isDelisted=True, marginMode="strictIsolated", onlyIsolated=True)  # ATOM
    ctxs = [
        {"dayNtlVlm": f"{i}000.5", "markPx": f"{i + 1}.25", "oraclePx": f"{i + 1}.2", "openInterest": "7.5",
         "funding": "0.0000125", "premium": None if i == 2 else "0.0001", "midPx": None, "impactPxs": None}
        for i in range(28)
    ]
    df = wire.parse_universe(meta, ctxs)
    atom = df.set_index("coin").loc["ATOM"]
    assert atom["is_delisted"] and atom["only_isolated"] and atom["asset_index"] == 2
    assert np.isnan(atom["premium"]) and atom["day_ntl_vlm"] == 2000.5
    listed = df[~df["is_delisted"]]
    assert len(listed) == 27
    assert listed.set_index("coin").loc["MATIC", "asset_index"] == 3  # not shifted to 2
    assert df.set_index("coin").loc["kPEPE", "mark_px"] == 16.25


def test_meta_ctx_count_mismatch(meta_2023):
    with pytest.raises(WireFormatError, match="27 asset contexts for 28 universe entries"):
        wire.parse_universe(meta_2023, [{}] * 27)


def test_meta_duplicate_and_missing_fields(meta_2023):
    meta = copy.deepcopy(meta_2023)
    meta["universe"][5]["name"] = "BTC"
    with pytest.raises(WireFormatError, match=r"universe\[5\]: coin 'BTC' also appears at universe\[0\]"):
        wire.parse_universe(meta)
    meta = copy.deepcopy(meta_2023)
    del meta["universe"][15]["szDecimals"]
    with pytest.raises(WireFormatError, match=r"universe\[15\] \(kPEPE\): field 'szDecimals' is missing"):
        wire.parse_universe(meta)


def test_meta_and_ctxs_split():
    with pytest.raises(WireFormatError, match="2-element array"):
        wire.split_meta_and_ctxs({"universe": []})


def test_server_time():
    assert wire.parse_server_time({"time": 1752537600000, "specialStatuses": None}) == pd.Timestamp("2025-07-15")
    assert wire.parse_server_time({"specialStatuses": None}) is None
    assert wire.parse_server_time(None) is None


def test_interval_ms():
    assert wire.interval_ms("4h") == 4 * 3600 * 1000
    with pytest.raises(ValueError, match="'1M' not supported"):
        wire.interval_ms("1M")


def _ctxs(n: int) -> list[dict]:
    """Complete asset contexts in the venue's shape (docs §2.2); premium/midPx/impactPxs null as the venue allows."""
    return [{"dayNtlVlm": "1169046.29406", "funding": "0.0000125", "impactPxs": None, "markPx": "14.3161",
             "midPx": None, "openInterest": "688.11", "oraclePx": "14.32", "premium": None, "prevDayPx": "15.322"}
            for _ in range(n)]


@pytest.mark.parametrize("field", ["markPx", "oraclePx", "funding", "openInterest", "dayNtlVlm"])
@pytest.mark.parametrize("how", ["missing", "null"])
def test_required_context_fields_name_coin_and_field(meta_2023, field, how):
    ctxs = _ctxs(28)
    if how == "missing":
        del ctxs[15][field]
    else:
        ctxs[15][field] = None
    with pytest.raises(WireFormatError, match=rf"ctx\[15\] \(coin kPEPE\): field '{field}' is missing"):
        wire.parse_universe(meta_2023, ctxs)


def test_nullable_context_fields_become_nan(meta_2023):
    df = wire.parse_universe(meta_2023, _ctxs(28)).set_index("coin")
    assert df["premium"].isna().all() and df["mid_px"].isna().all()
    assert (df["mark_px"] == 14.3161).all() and (df["oracle_px"] == 14.32).all()
