"""Hourly funding over replay-clock moves, and concurrent use of one engine."""

from __future__ import annotations

import json
import threading
import time

import pytest

from gradient_pipeline.localexchange.engine import TradingEngine
from gradient_pipeline.localexchange.state import StateError
from gradient_pipeline_tests.localexchange.test_engine_support import HOUR, funded_trader, make_market


@pytest.fixture
def setup(freqtrade_dir):
    market, clock = make_market(freqtrade_dir)
    engine = TradingEngine(market)
    long_, short = funded_trader(engine), funded_trader(engine)
    long_.order("ETH", True, 0.5, round(market.mid("ETH") * 1.01, 1))
    short.order("ETH", False, 0.5, round(market.mid("ETH") * 0.99, 1))
    return market, clock, engine, long_, short


def _balance(engine, trader) -> float:
    state = trader.state()
    return float(state["marginSummary"]["accountValue"]) - sum(
        float(p["position"]["unrealizedPnl"]) for p in state["assetPositions"])


def test_each_whole_hour_crossed_pays_funding_once(setup):
    market, clock, engine, long_, short = setup
    start = clock.now_ms()  # 00:05
    before_long, before_short = _balance(engine, long_), _balance(engine, short)
    clock.advance(5 * HOUR)  # crosses 01:00 .. 05:00 in one jump
    engine.on_clock(clock.now_ms())
    rows = long_.info("userFunding", startTime=0)
    hours = [(start // HOUR + k) * HOUR for k in range(1, 6)]
    assert [r["time"] for r in rows] == hours
    oracle = market.oracle("ETH")
    expected = []
    for row, hour in zip(rows, hours):
        rate = market.funding_rate("ETH", hour)
        assert rate is not None and float(row["delta"]["fundingRate"]) == pytest.approx(rate, abs=1e-12)
        assert row["delta"]["szi"] == "0.5" and row["delta"]["coin"] == "ETH" and row["delta"]["type"] == "funding"
        expected.append(-0.5 * oracle * rate)  # positive rate: the long pays
        assert float(row["delta"]["usdc"]) == pytest.approx(expected[-1], abs=1e-6)
    assert _balance(engine, long_) - before_long == pytest.approx(sum(expected), abs=1e-5)
    # the short receives exactly what the long pays
    short_rows = short.info("userFunding", startTime=0)
    assert [float(r["delta"]["usdc"]) for r in short_rows] == pytest.approx([-x for x in expected], abs=1e-6)
    assert _balance(engine, short) - before_short == pytest.approx(-sum(expected), abs=1e-5)
    cum = long_.position("ETH")["cumFunding"]
    assert float(cum["allTime"]) == pytest.approx(-sum(expected), abs=1e-5)  # paid is positive
    assert float(cum["sinceOpen"]) == pytest.approx(-sum(expected), abs=1e-5)
    # the same instant again, or a rewind, pays nothing more
    engine.on_clock(clock.now_ms())
    clock.set(start)
    engine.on_clock(clock.now_ms())
    assert len(long_.info("userFunding", startTime=0, endTime=hours[-1])) == 5
    # the time filter
    assert len(long_.info("userFunding", startTime=hours[1], endTime=hours[2])) == 2


def test_moves_inside_an_hour_pay_nothing(setup):
    _, clock, engine, long_, _ = setup
    for _ in range(5):
        clock.advance(10 * 60_000)  # 00:05 -> 00:55
        engine.on_clock(clock.now_ms())
    assert long_.info("userFunding", startTime=0) == []
    clock.advance(10 * 60_000)
    engine.on_clock(clock.now_ms())
    assert len(long_.info("userFunding", startTime=0)) == 1


def test_public_calls_catch_up_with_the_market_clock(setup):
    """A missed on_clock notification cannot skip funding: every call first syncs with market.now_ms()."""
    _, clock, _, long_, _ = setup
    clock.advance(2 * HOUR)
    assert len(long_.info("userFunding", startTime=0)) == 2


def test_concurrent_orders_get_unique_ids_and_consistent_fills(freqtrade_dir):
    market, _ = make_market(freqtrade_dir)
    engine = TradingEngine(market)
    traders = [funded_trader(engine, 100_000) for _ in range(4)]
    px = round(market.mid("ETH") * 1.01, 1)
    results: list[dict] = []
    lock = threading.Lock()

    def run(trader):
        for _ in range(5):
            st = trader.order("ETH", True, 0.01, px)
            with lock:
                results.append(st)

    threads = [threading.Thread(target=run, args=(t,)) for t in traders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    oids = [r["filled"]["oid"] for r in results]
    assert len(oids) == 20 and len(set(oids)) == 20
    tids = [f["tid"] for t in traders for f in t.fills()]
    assert len(tids) == len(set(tids)) >= 20
    assert all(t.position("ETH")["szi"] == "0.05" for t in traders)


def test_underwater_account_is_liquidated(freqtrade_dir):
    market, clock = make_market(freqtrade_dir)
    engine = TradingEngine(market)
    trader = funded_trader(engine, 1_000)
    assert trader.leverage("ETH", 50)["status"] == "ok"
    mid = market.mid("ETH")
    assert "filled" in trader.order("ETH", True, 20.0, round(mid * 1.01, 1))  # ~$44k on $1k: ~44x
    pos = trader.position("ETH")
    liq = float(pos["liquidationPx"])
    assert mid * 0.95 < liq < mid
    bid = trader.order("ETH", True, 0.01, round(mid * 0.9, 1), tif="Gtc")["resting"]["oid"]
    market.shock(0.97)  # 3% down: below the liquidation price
    clock.advance(60_000)
    engine.on_clock(clock.now_ms())
    assert trader.position("ETH") is None
    last = trader.fills()[0]
    assert last["dir"] == "Close Long" and last["liquidation"]["liquidatedUser"] == trader.address.lower()
    assert float(last["px"]) == market.mark("ETH")
    assert trader.info("orderStatus", oid=bid)["order"]["status"] == "liquidatedCanceled"


def test_state_survives_export_and_import_through_json(setup):
    market, clock, engine, long_, _ = setup
    bids, _ = market.book("ETH")
    oid = long_.order("ETH", True, 0.01, bids[3][0], tif="Gtc", cloid="0x" + "99" * 16)["resting"]["oid"]
    nonce = 1_000 + int(time.time() * 1000)
    assert long_.send({"type": "updateLeverage", "asset": 1, "isCross": True, "leverage": 8}, nonce=nonce)[
        "status"] == "ok"
    saved = json.loads(json.dumps(engine.export_state()))
    fresh = TradingEngine(market)
    fresh.import_state(saved)
    long_.engine = fresh
    assert long_.state() == engine.handle_info({"type": "clearinghouseState", "user": long_.address})
    assert long_.fills() == engine.handle_info({"type": "userFills", "user": long_.address})
    assert long_.info("orderStatus", oid="0x" + "99" * 16)["order"]["order"]["oid"] == oid
    assert long_.position("ETH")["leverage"]["value"] == 8
    # nonce history came along: the same nonce is still a duplicate; new oids do not collide
    again = long_.send({"type": "updateLeverage", "asset": 1, "isCross": True, "leverage": 9}, nonce=nonce)
    assert again == {"status": "err", "response": f"Invalid nonce: duplicate nonce {nonce}"}
    assert long_.order("ETH", True, 0.01, bids[3][0], tif="Gtc")["resting"]["oid"] > oid
    # funding continues from the saved time
    clock.advance(HOUR)
    fresh.on_clock(clock.now_ms())
    assert len(long_.info("userFunding", startTime=0)) == 1
    with pytest.raises(StateError, match="version"):
        fresh.import_state({"version": 99})
    broken = dict(saved, accounts=[dict(saved["accounts"][0], open_oids=[123456])])
    with pytest.raises(StateError, match="open order"):
        fresh.import_state(broken)
