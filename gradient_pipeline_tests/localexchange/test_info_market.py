"""The local exchange's /info market data, read through the real SDK client and compared with the feather files."""

from __future__ import annotations

import math

import numpy as np
import pytest
import requests

from gradient_pipeline_tests.localexchange._helpers import HOUR_MS, feather, ms, sdk_info

COINS = ["BTC", "ETH", "AI", "RDNT", "CYBER", "HYPE", "PUMP", "SYRUP"]


def test_meta_lists_started_coins_in_listing_order_and_keeps_delisted_indices(local_exchange_factory, freqtrade_dir):
    ex = local_exchange_factory(start_time="2025-04-05 00:00", coins=COINS)
    info = sdk_info(ex)
    before = info.meta()["universe"]

    # Order = first candle time, then name; computed here from the files themselves.
    first = {c: feather(freqtrade_dir, c, "4h")["t"].iloc[0] for c in COINS}
    started = sorted((c for c in COINS if first[c] <= ms("2025-04-05")), key=lambda c: (first[c], c))
    assert [u["name"] for u in before] == started
    assert "PUMP" not in started and "SYRUP" not in started  # listed later
    assert not any(u.get("isDelisted") for u in before)

    ex.set_time("2025-07-20 00:00")  # after AI/RDNT/CYBER ended (2025-04-11) and after PUMP/SYRUP listed
    after = info.meta()["universe"]
    assert [u["name"] for u in after[: len(before)]] == [u["name"] for u in before]  # indices never shift
    assert [u["name"] for u in after[len(before):]] == ["SYRUP", "PUMP"]  # new listings appended, by listing time
    delisted = {u["name"] for u in after if u.get("isDelisted")}
    assert delisted == {"AI", "RDNT", "CYBER"}
    for u in after:
        assert set(u) >= {"name", "szDecimals", "maxLeverage"}
        assert isinstance(u["szDecimals"], int) and 0 <= u["szDecimals"] <= 5
        assert isinstance(u["maxLeverage"], int) and u["maxLeverage"] >= 3
    by_name = {u["name"]: u for u in after}
    assert by_name["BTC"]["maxLeverage"] == 50 and by_name["BTC"]["szDecimals"] == 5
    assert by_name["ETH"]["szDecimals"] == 4

    # The SDK maps names to asset ids from this meta; delisted coins still resolve to their reserved index.
    sdk = sdk_info(ex)
    assert sdk.name_to_asset("AI") == [u["name"] for u in after].index("AI")


def test_meta_and_asset_ctxs_shape_and_values(local_exchange_factory, freqtrade_dir):
    ex = local_exchange_factory(start_time="2025-05-01 02:30", coins=["BTC", "ETH", "AI", "kPEPE"])
    meta, ctxs = sdk_info(ex).meta_and_asset_ctxs()
    assert len(ctxs) == len(meta["universe"])
    names = [u["name"] for u in meta["universe"]]
    mids = sdk_info(ex).all_mids()
    assert "AI" not in mids and set(mids) == {"BTC", "ETH", "kPEPE"}  # delisted coins have no mid

    h1 = feather(freqtrade_dir, "BTC", "1h")
    now = ms("2025-05-01 02:30")
    closed = h1[(h1.t + HOUR_MS <= now)]
    btc = ctxs[names.index("BTC")]
    for key in ("markPx", "midPx", "oraclePx", "dayNtlVlm", "openInterest", "funding", "prevDayPx", "premium",
                "dayBaseVlm"):
        assert isinstance(btc[key], str), key
    assert float(btc["midPx"]) == closed.close.iloc[-1] == float(mids["BTC"])
    day = closed[closed.t + HOUR_MS > now - 24 * HOUR_MS]
    assert len(day) == 24
    assert float(btc["dayNtlVlm"]) == pytest.approx((day.volume * day.close).sum(), rel=1e-9)
    assert float(btc["dayBaseVlm"]) == pytest.approx(day.volume.sum(), rel=1e-9)
    assert float(btc["prevDayPx"]) == closed[closed.t + HOUR_MS <= now - 24 * HOUR_MS].close.iloc[-1]
    fund = feather(freqtrade_dir, "BTC", "funding")
    assert float(btc["funding"]) == pytest.approx(fund[fund.t <= now].open.iloc[-1])
    lo, hi = map(float, btc["impactPxs"])
    assert lo < float(btc["midPx"]) < hi
    assert float(btc["openInterest"]) > 0

    ai = ctxs[names.index("AI")]
    assert ai["midPx"] is None and float(ai["markPx"]) > 0 and ai["dayNtlVlm"] == "0.0"


def test_candle_snapshot_matches_recorded_rows_and_includes_the_forming_candle(local_exchange_factory, freqtrade_dir):
    now = ms("2025-05-01 02:30")
    ex = local_exchange_factory(start_time=now, coins=["BTC", "ETH"])
    info = sdk_info(ex)
    start, end = ms("2025-04-28 05:00"), now
    got = info.candles_snapshot("ETH", "4h", start, end)

    h4 = feather(freqtrade_dir, "ETH", "4h")
    # Overlap semantics: the candle containing startTime (opened 04:00) is included; nothing opens after now.
    rows = h4[(h4.t + 4 * HOUR_MS - 1 >= start) & (h4.t <= end)]
    assert [c["t"] for c in got] == rows.t.tolist()
    assert got[0]["t"] == ms("2025-04-28 04:00")
    closed, forming = got[:-1], got[-1]
    for c, (_, r) in zip(closed, rows.iloc[:-1].iterrows(), strict=True):
        assert c["T"] == c["t"] + 4 * HOUR_MS - 1 and c["s"] == "ETH" and c["i"] == "4h"
        assert all(isinstance(c[k], str) for k in "ohlcv") and isinstance(c["n"], int)
        assert (float(c["o"]), float(c["h"]), float(c["l"]), float(c["c"]), float(c["v"])) == (
            r.open, r.high, r.low, r.close, r.volume)

    # The still-forming 00:00 candle: built from the 1h candles that closed before now (00:00 and 01:00).
    h1 = feather(freqtrade_dir, "ETH", "1h")
    inside = h1[(h1.t >= forming["t"]) & (h1.t + HOUR_MS <= now)]
    assert len(inside) == 2
    assert forming["t"] == ms("2025-05-01 00:00") and forming["T"] > now
    assert float(forming["o"]) == rows.open.iloc[-1]
    assert float(forming["c"]) == inside.close.iloc[-1] == float(info.all_mids()["ETH"])
    assert float(forming["h"]) == max(rows.open.iloc[-1], inside.high.max())
    assert float(forming["l"]) == min(rows.open.iloc[-1], inside.low.min())
    assert float(forming["v"]) == pytest.approx(inside.volume.sum())
    assert float(forming["v"]) < rows.volume.iloc[-1]  # the recorded full candle has more volume

    # 1h interval: rows exactly, and the forming 1h candle has only its open so far.
    got1 = info.candles_snapshot("BTC", "1h", now - 5 * HOUR_MS, now)
    b1 = feather(freqtrade_dir, "BTC", "1h")
    want = b1[(b1.t + HOUR_MS - 1 >= now - 5 * HOUR_MS) & (b1.t <= now)]
    assert [c["t"] for c in got1] == want.t.tolist()
    assert [float(c["c"]) for c in got1[:-1]] == want.close.iloc[:-1].tolist()
    assert got1[-1]["o"] == got1[-1]["c"] and float(got1[-1]["v"]) == 0.0


def test_candle_snapshot_serves_only_the_most_recent_5000_candles(local_exchange_factory, freqtrade_dir):
    now = ms("2025-07-20 00:30")
    ex = local_exchange_factory(start_time=now, coins=["BTC"])
    info = sdk_info(ex)
    b1 = feather(freqtrade_dir, "BTC", "1h")
    upto = b1[b1.t <= now]
    assert len(upto) > 5000  # the window below overlaps more than 5000 recorded candles

    got = info.candles_snapshot("BTC", "1h", 0, now)
    assert len(got) == 5000
    assert [c["t"] for c in got] == upto.t.iloc[-5000:].tolist()  # the newest 5000, ending with the forming one
    assert got[-1]["T"] > now

    too_old = int(upto.t.iloc[-5001])
    assert info.candles_snapshot("BTC", "1h", 0, too_old) == []  # older candles are not available at all
    assert info.candles_snapshot("BTC", "1h", now + HOUR_MS, now + 10 * HOUR_MS) == []  # no future candles


def test_funding_history_paginates_500_at_a_time(local_exchange_factory, freqtrade_dir):
    now = ms("2025-03-01 00:00")
    ex = local_exchange_factory(start_time=now, coins=["ETH"])
    info = sdk_info(ex)
    start = ms("2025-01-20 00:00")
    pages, cursor = [], start
    while True:
        page = info.funding_history("ETH", cursor)
        pages.append(page)
        if len(page) < 500:
            break
        cursor = page[-1]["time"] + 1
    assert [len(p) for p in pages[:-1]] == [500] * (len(pages) - 1) and len(pages) >= 2
    rows = [r for p in pages for r in p]
    f = feather(freqtrade_dir, "ETH", "funding")
    want = f[(f.t >= start) & (f.t <= now)]
    assert [r["time"] for r in rows] == want.t.tolist()
    assert [float(r["fundingRate"]) for r in rows] == pytest.approx(want.open.tolist(), abs=0)
    assert set(rows[0]) == {"coin", "fundingRate", "premium", "time"} and rows[0]["coin"] == "ETH"

    # endTime bounds the answer, and the recorded future stays hidden.
    window = info.funding_history("ETH", ms("2025-02-01"), ms("2025-02-01 05:30"))
    assert len(window) == 6
    assert info.funding_history("ETH", now + 1) == []


def test_clock_moves_prices_and_exchange_status(local_exchange_factory, freqtrade_dir):
    ex = local_exchange_factory(start_time="2025-05-01 02:30", coins=["BTC", "ETH"])
    info = sdk_info(ex)
    assert info.post("/info", {"type": "exchangeStatus"}) == {"time": ms("2025-05-01 02:30"), "specialStatuses": None}
    b1 = feather(freqtrade_dir, "BTC", "1h").set_index("t")
    assert float(info.all_mids()["BTC"]) == b1.close[ms("2025-05-01 01:00")]
    ex.advance(1)
    assert float(info.all_mids()["BTC"]) == b1.close[ms("2025-05-01 02:00")]
    assert info.post("/info", {"type": "exchangeStatus"})["time"] == ms("2025-05-01 03:30")
    ex.set_time("2025-05-02 00:00", speed=3600.0)  # one replay hour per wall second
    t0 = info.post("/info", {"type": "exchangeStatus"})["time"]
    t1 = info.post("/info", {"type": "exchangeStatus"})["time"]
    assert ms("2025-05-02 00:00") <= t0 <= t1


def test_price_shock_scales_prices_from_now_on(local_exchange_factory):
    ex = local_exchange_factory(start_time="2025-05-01 02:30", coins=["BTC", "ETH"])
    info = sdk_info(ex)
    before = {k: float(v) for k, v in info.all_mids().items()}
    ex.price_shock(0.5, coin="BTC")
    after = {k: float(v) for k, v in info.all_mids().items()}
    assert after["BTC"] == pytest.approx(before["BTC"] * 0.5, rel=1e-4) and after["ETH"] == before["ETH"]
    ex.price_shock(0.8)
    shocked = {k: float(v) for k, v in info.all_mids().items()}
    assert shocked["BTC"] == pytest.approx(before["BTC"] * 0.4, rel=1e-4)
    assert shocked["ETH"] == pytest.approx(before["ETH"] * 0.8, rel=1e-4)
    ctx = dict(zip([u["name"] for u in info.meta()["universe"]], info.meta_and_asset_ctxs()[1], strict=True))
    assert float(ctx["ETH"]["markPx"]) == shocked["ETH"]
    assert ex.market.mark("ETH") == shocked["ETH"]
    ex.set_time("2025-05-01 02:00")  # before the shocks: not applied
    assert float(info.all_mids()["ETH"]) != pytest.approx(shocked["ETH"], rel=1e-3)


def test_l2_book_is_a_valid_synthetic_book_around_mid(local_exchange_factory):
    ex = local_exchange_factory(start_time="2025-05-01 02:30", coins=["BTC", "kPEPE"], spread_bps=4.0)
    info = sdk_info(ex)
    sz_dec = {u["name"]: u["szDecimals"] for u in info.meta()["universe"]}
    for coin in ("BTC", "kPEPE"):
        book = info.l2_snapshot(coin)
        mid = float(info.all_mids()[coin])
        bids, asks = book["levels"]
        assert book["coin"] == coin and book["time"] == ex.now_ms()
        assert len(bids) == len(asks) == 20
        bpx = [float(b["px"]) for b in bids]
        apx = [float(a["px"]) for a in asks]
        assert bpx == sorted(bpx, reverse=True) and len(set(bpx)) == 20
        assert apx == sorted(apx) and len(set(apx)) == 20
        assert bpx[0] < mid < apx[0]
        assert (apx[0] - bpx[0]) / mid == pytest.approx(4e-4, abs=2e-4)
        for level in bids + asks:
            px, sz = float(level["px"]), float(level["sz"])
            assert sz > 0 and round(sz, sz_dec[coin]) == sz
            if px < 100_000:  # 5 significant figures, at most 6 - szDecimals decimals
                assert float(f"{px:.5g}") == px
                assert round(px, 6 - sz_dec[coin]) == px
        assert ex.market.book(coin)[0][0] == (bpx[0], float(bids[0]["sz"]))


def test_wire_errors_match_the_exchange(local_exchange_factory):
    ex = local_exchange_factory(start_time="2025-05-01 02:30", coins=["BTC"])
    for body in ({"type": "l2book", "coin": "BTC"}, {"type": "candleSnapshot", "req": {"coin": "BTC"}}, [1]):
        r = requests.post(ex.base_url + "/info", json=body, timeout=5)
        assert (r.status_code, r.text) == (422, "Failed to deserialize the JSON body into the target type")
    r = requests.post(ex.base_url + "/info", json={"type": "spotMeta"}, timeout=5)
    assert r.json() == {"universe": [], "tokens": []}
    r = requests.post(ex.base_url + "/info", json={"type": "allMids", "dex": ""}, timeout=5)
    assert set(r.json()) == {"BTC"} and not math.isnan(float(r.json()["BTC"]))
    # Values are exact decimal strings of the recorded floats (round-trip), never scientific notation.
    r = requests.post(ex.base_url + "/info", json={"type": "candleSnapshot", "req": {
        "coin": "BTC", "interval": "4h", "startTime": ms("2025-04-01"), "endTime": ms("2025-04-02")}}, timeout=5)
    assert all("e" not in c[k].lower() for c in r.json() for k in "ohlcv")
    assert np.all(np.diff([c["t"] for c in r.json()]) == 4 * HOUR_MS)
