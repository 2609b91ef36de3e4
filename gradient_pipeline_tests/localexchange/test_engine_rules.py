"""Trading-engine exchange rules on the real recorded market: fills from the book, fees, each error string."""

from __future__ import annotations

import math

import pytest

from gradient_pipeline.localexchange import orders as E
from gradient_pipeline.localexchange.engine import TradingEngine
from gradient_pipeline.localexchange.market import BookConfig
from gradient_pipeline_tests.localexchange.test_engine_support import (
    HOUR,
    funded_trader,
    make_market,
    statuses,
)

THIN = BookConfig(levels=3, level_fraction_of_day_volume=0.0, min_level_usd=2_000.0)


@pytest.fixture
def market(freqtrade_dir):
    return make_market(freqtrade_dir)


@pytest.fixture
def engine(market):
    return TradingEngine(market[0])


@pytest.fixture
def trader(engine):
    return funded_trader(engine)


def test_ioc_buy_fills_at_best_ask_and_pays_taker_fee(engine, trader):
    _, asks = engine.market.book("BTC")
    best_ask = asks[0][0]
    st = trader.order("BTC", True, 0.01, round(best_ask * 1.01))
    assert st["filled"]["totalSz"] == "0.01"
    assert float(st["filled"]["avgPx"]) == best_ask
    (fill,) = trader.fills()
    assert fill["px"] == st["filled"]["avgPx"] and fill["side"] == "B" and fill["crossed"] is True
    assert fill["dir"] == "Open Long" and fill["startPosition"] == "0.0" and fill["feeToken"] == "USDC"
    assert float(fill["fee"]) == pytest.approx(best_ask * 0.01 * 0.00045, abs=1e-6)
    pos = trader.position("BTC")
    assert pos["szi"] == "0.01" and float(pos["entryPx"]) == best_ask
    mark = engine.market.mark("BTC")
    assert float(pos["unrealizedPnl"]) == pytest.approx(0.01 * (mark - best_ask), abs=1e-6)
    assert float(pos["positionValue"]) == pytest.approx(0.01 * mark, abs=1e-6)
    assert float(pos["marginUsed"]) == pytest.approx(0.01 * mark / 20, abs=1e-6)
    summary = trader.state()["marginSummary"]
    # account value = deposit − fee + unrealised PnL
    assert float(summary["accountValue"]) == pytest.approx(10_000 - float(fill["fee"]) + float(pos["unrealizedPnl"]),
                                                           abs=1e-5)


def test_large_ioc_fills_partially_across_levels_then_book_is_depleted(freqtrade_dir):
    market, clock = make_market(freqtrade_dir, book=THIN)
    engine = TradingEngine(market)
    trader = funded_trader(engine, 1_000_000)
    _, asks = market.book("ETH")
    depth = round(sum(sz for _, sz in asks), 4)
    st = trader.order("ETH", True, round(depth * 3, 4), round(asks[-1][0] * 1.02, 1), cloid="0x" + "11" * 16)
    filled = st["filled"]
    assert float(filled["totalSz"]) == pytest.approx(depth)
    assert filled["cloid"] == "0x" + "11" * 16
    fills = list(reversed(trader.fills()))
    assert [(float(f["px"]), float(f["sz"])) for f in fills] == [(px, sz) for px, sz in asks]
    assert len({f["tid"] for f in fills}) == 3 and {f["oid"] for f in fills} == {filled["oid"]}
    vwap = sum(px * sz for px, sz in asks) / depth
    assert float(filled["avgPx"]) == pytest.approx(vwap, rel=1e-9)
    # the IOC remainder is canceled; orderStatus shows what was left of origSz
    status = trader.info("orderStatus", oid=filled["oid"])
    assert status["order"]["status"] == "canceled"
    order = status["order"]["order"]
    assert float(order["origSz"]) == pytest.approx(depth * 3) and float(order["sz"]) == pytest.approx(depth * 2)
    # the same instant: the asks we took are gone
    again = trader.order("ETH", True, 0.01, round(asks[-1][0] * 1.02, 1))
    assert again == {"error": E.with_asset(E.IOC_CANCEL, 1)}
    # a new instant brings a fresh book
    clock.advance(60_000)
    engine.on_clock(clock.now_ms())
    assert "filled" in trader.order("ETH", True, 0.01, round(asks[-1][0] * 1.02, 1))


def test_ioc_that_cannot_match_is_rejected_with_ioc_cancel(engine, trader):
    bids, _ = engine.market.book("BTC")
    st = trader.order("BTC", True, 0.01, round(bids[0][0] * 0.99), cloid="0x" + "22" * 16)
    assert st == {"error": "Order could not immediately match against any resting orders. asset=0"}
    assert trader.info("orderStatus", oid="0x" + "22" * 16)["order"]["status"] == "iocCancelRejected"
    assert trader.fills() == [] and trader.position("BTC") is None


@pytest.mark.parametrize("coin,px_text,ok", [
    ("BTC", "84310.5", False),   # 6 significant figures
    ("BTC", "84311", True),      # integers always valid
    ("BTC", "123456", True),
    ("ETH", "2217.55", False),   # szDecimals 4 -> at most 2 decimals, and 6 sig figs
    ("ETH", "2217.5", True),
    ("kPEPE", "0.0062345", False),  # 7 decimals > 6 - 0
    ("kPEPE", "0.006234", True),
])
def test_price_precision(engine, trader, coin, px_text, ok):
    meta = engine.market.coin(coin)
    size = str(math.ceil(20 / float(px_text))) if coin == "kPEPE" else "0.01"  # above $10 either way
    wire = {"a": meta.asset_index, "b": True, "p": px_text, "s": size, "r": False, "t": {"limit": {"tif": "Alo"}}}
    (st,) = statuses(trader.orders([wire]))
    if ok:  # valid prices pass the tick rule (and then rest, cross as Alo, or hit the price band)
        assert "resting" in st or not st["error"].startswith("Price must be divisible")
    else:
        assert st == {"error": f"Price must be divisible by tick size. asset={meta.asset_index}"}


def test_size_precision_and_zero(engine, trader):
    wire = {"a": 0, "b": True, "p": "90000", "s": "0.000001", "r": False, "t": {"limit": {"tif": "Ioc"}}}
    assert statuses(trader.orders([wire])) == [{"error": "Order has invalid size. asset=0"}]
    wire["s"] = "0"
    assert statuses(trader.orders([wire])) == [{"error": "Order has zero size. asset=0"}]


def test_minimum_notional(engine, trader):
    ask = engine.market.book("BTC")[1][0][0]
    st = trader.order("BTC", True, 0.0001, round(ask * 1.01))  # ~$8.5
    assert st == {"error": "Order must have minimum value of $10. asset=0"}


def test_reduce_only_rules_and_full_close_under_ten_dollars(engine, trader):
    bids, asks = engine.market.book("BTC")
    buy_px, sell_px = round(asks[0][0] * 1.01), round(bids[0][0] * 0.99)
    ro = "Reduce only order would increase position. asset=0"
    assert trader.order("BTC", False, 0.001, sell_px, reduce_only=True) == {"error": ro}  # no position
    assert "filled" in trader.order("BTC", True, 0.0003, buy_px)  # ~$25 long
    assert trader.order("BTC", True, 0.0002, buy_px, reduce_only=True) == {"error": ro}  # same side
    assert trader.order("BTC", False, 0.0004, sell_px, reduce_only=True) == {"error": ro}  # larger than position
    assert "filled" in trader.order("BTC", False, 0.0002, sell_px, reduce_only=True)  # ~$17 partial close
    assert trader.position("BTC")["szi"] == "0.0001"  # ~$8.4 left
    # a plain order of that size is under the minimum; a reduce-only full close is accepted
    assert trader.order("BTC", False, 0.0001, sell_px) == {"error": "Order must have minimum value of $10. asset=0"}
    st = trader.order("BTC", False, 0.0001, sell_px, reduce_only=True)
    assert st["filled"]["totalSz"] == "0.0001"
    assert trader.position("BTC") is None
    assert [f["dir"] for f in reversed(trader.fills())] == ["Open Long", "Close Long", "Close Long"]


def test_insufficient_margin_depends_on_leverage(engine, trader):
    ask = engine.market.book("BTC")[1][0][0]
    px = round(ask * 1.001)
    sz = 3.0  # ~$253k notional: needs ~$12.6k at 20x (rejected), ~$5.1k at 50x (accepted)
    assert trader.order("BTC", True, sz, px) == {"error": "Insufficient margin to place order. asset=0"}
    assert trader.leverage("BTC", 51) == {"status": "err", "response": trader.leverage("BTC", 51)["response"]}
    assert trader.leverage("BTC", 51)["status"] == "err"
    assert trader.leverage("BTC", 50) == {"status": "ok", "response": {"type": "default"}}
    st = trader.order("BTC", True, sz, px)
    assert st["filled"]["totalSz"] == "3.0"
    pos = trader.position("BTC")
    assert pos["leverage"] == {"type": "cross", "value": 50}
    assert float(pos["marginUsed"]) == pytest.approx(3 * engine.market.mark("BTC") / 50, abs=1e-5)
    assert pos["liquidationPx"] is not None and float(pos["liquidationPx"]) < float(pos["entryPx"])
    # going back to 20x would need more margin than the account has
    assert trader.leverage("BTC", 20) == {"status": "err", "response": "Insufficient margin to place order."}


def test_alo_crossing_rejected_with_bbo_and_passive_alo_rests(engine, trader):
    bids, asks = engine.market.book("BTC")
    st = trader.order("BTC", True, 0.01, asks[0][0], tif="Alo")
    bbo = f"{bids[0][0]:.1f}@{asks[0][0]:.1f}"
    assert st == {"error": f"Post only order would have immediately matched, bbo was {bbo}. asset=0"}
    st = trader.order("BTC", True, 0.01, bids[0][0], tif="Alo", cloid="0x" + "33" * 16)
    oid = st["resting"]["oid"]
    assert st["resting"]["cloid"] == "0x" + "33" * 16
    (row,) = trader.info("openOrders", dex="")
    assert row["oid"] == oid and row["side"] == "B" and row["sz"] == "0.01" and float(row["limitPx"]) == bids[0][0]
    (front,) = trader.info("frontendOpenOrders", dex="")
    assert front["tif"] == "Alo" and front["origSz"] == "0.01" and front["orderType"] == "Limit"
    # margin is reserved for the resting order
    assert float(trader.state()["withdrawable"]) == pytest.approx(10_000 - 0.01 * bids[0][0] / 20, abs=1e-5)
    assert trader.cancel("BTC", oid)["response"]["data"]["statuses"] == ["success"]
    assert trader.info("openOrders") == []
    assert trader.info("orderStatus", oid=oid)["order"]["status"] == "canceled"
    missing = "Order was never placed, already canceled, or filled. asset=0"
    assert trader.cancel("BTC", oid)["response"]["data"]["statuses"] == [{"error": missing}]
    assert trader.cancel("BTC", 987654)["response"]["data"]["statuses"] == [{"error": missing}]


def test_cancel_by_cloid(engine, trader):
    bids, _ = engine.market.book("ETH")
    cloid = "0x" + "44" * 16
    trader.order("ETH", True, 0.01, bids[0][0], tif="Gtc", cloid=cloid)
    resp = trader.cancel_cloid("ETH", cloid)
    assert resp == {"status": "ok", "response": {"type": "cancel", "data": {"statuses": ["success"]}}}
    assert trader.info("orderStatus", oid=cloid)["order"]["status"] == "canceled"
    again = trader.cancel_cloid("ETH", cloid)["response"]["data"]["statuses"]
    assert again == [{"error": "Order was never placed, already canceled, or filled. asset=1"}]


def test_resting_order_fills_as_maker_when_price_moves_through(freqtrade_dir):
    market, clock = make_market(freqtrade_dir)
    engine = TradingEngine(market)
    trader = funded_trader(engine)
    mid = market.mid("BTC")
    limit = round(mid * 0.99)
    oid = trader.order("BTC", True, 0.01, limit, tif="Gtc")["resting"]["oid"]
    clock.advance(60_000)
    engine.on_clock(clock.now_ms())
    assert trader.fills() == []  # price has not come down yet
    market.shock(0.98, "BTC")  # the market drops 2% from replay-now on
    clock.advance(60_000)
    engine.on_clock(clock.now_ms())
    (fill,) = trader.fills()
    assert float(fill["px"]) == limit and fill["crossed"] is False and fill["oid"] == oid
    assert float(fill["fee"]) == pytest.approx(limit * 0.01 * 0.00015, abs=1e-6)
    assert trader.info("orderStatus", oid=oid)["order"]["status"] == "filled"
    assert trader.info("openOrders") == []


def test_duplicate_cloid_is_rejected_and_never_fills_twice(engine, trader):
    ask = engine.market.book("BTC")[1][0][0]
    cloid = "0x" + "55" * 16
    first = trader.order("BTC", True, 0.001, round(ask * 1.01), cloid=cloid)
    assert "filled" in first
    second = trader.order("BTC", True, 0.001, round(ask * 1.01), cloid=cloid)
    assert second == {"error": f"{E.DUPLICATE_CLOID} asset=0"}
    assert len(trader.fills()) == 1 and trader.position("BTC")["szi"] == "0.001"
    # a cloid whose order was rejected may be retried
    retry = "0x" + "66" * 16
    assert "error" in trader.order("BTC", True, 0.0001, round(ask * 1.01), cloid=retry)
    assert trader.info("orderStatus", oid=retry)["order"]["status"] == "minTradeNtlRejected"
    assert "filled" in trader.order("BTC", True, 0.001, round(ask * 1.01), cloid=retry)
    assert trader.info("orderStatus", oid=retry)["order"]["status"] == "filled"


def test_order_status_by_oid_and_cloid_is_per_user(engine, trader):
    other = funded_trader(engine)
    bids, _ = engine.market.book("ETH")
    cloid = "0x" + "77" * 16
    oid = trader.order("ETH", True, 0.01, bids[0][0], tif="Gtc", cloid=cloid)["resting"]["oid"]
    by_oid = trader.info("orderStatus", oid=oid)
    by_cloid = trader.info("orderStatus", oid=cloid)
    assert by_oid == by_cloid
    assert by_oid["status"] == "order" and by_oid["order"]["status"] == "open"
    assert by_oid["order"]["order"]["cloid"] == cloid and by_oid["order"]["order"]["oid"] == oid
    assert other.info("orderStatus", oid=oid) == {"status": "unknownOid"}
    assert other.info("orderStatus", oid=cloid) == {"status": "unknownOid"}
    assert trader.info("orderStatus", oid=oid + 1000) == {"status": "unknownOid"}


def test_price_band_rejects_the_whole_batch(engine, trader):
    ask = engine.market.book("BTC")[1][0][0]
    good = trader.wire("BTC", True, 0.001, round(ask * 1.01))
    far = trader.wire("BTC", True, 0.001, round(ask * 1.9))
    sts = statuses(trader.orders([good, far]))
    assert sts == [{"error": "Order price cannot be more than 80% away from the reference price asset=0"}] * 2
    assert trader.fills() == []


def test_batch_statuses_are_in_order(engine, trader):
    bids, asks = engine.market.book("BTC")
    wires = [trader.wire("BTC", True, 0.001, round(asks[0][0] * 1.01)),
             trader.wire("BTC", True, 0.0001, round(asks[0][0] * 1.01)),
             trader.wire("BTC", True, 0.001, bids[1][0], tif="Gtc")]
    sts = statuses(trader.orders(wires))
    assert "filled" in sts[0] and sts[1] == {"error": "Order must have minimum value of $10. asset=0"}
    assert "resting" in sts[2]


def test_flip_long_to_short_realises_pnl(freqtrade_dir):
    market, clock = make_market(freqtrade_dir)
    engine = TradingEngine(market)
    trader = funded_trader(engine)
    buy = trader.order("ETH", True, 0.1, round(market.mid("ETH") * 1.01, 1))
    entry = float(buy["filled"]["avgPx"])
    clock.advance(6 * HOUR)
    engine.on_clock(clock.now_ms())
    sell = trader.order("ETH", False, 0.3, round(market.mid("ETH") * 0.99, 1))
    exit_px = float(sell["filled"]["avgPx"])
    flip = trader.fills()[0]
    assert flip["dir"] == "Long > Short" and flip["startPosition"] == "0.1"
    assert float(flip["closedPnl"]) == pytest.approx(0.1 * (exit_px - entry), abs=1e-6)
    pos = trader.position("ETH")
    assert pos["szi"] == "-0.2" and float(pos["entryPx"]) == exit_px


def test_delisted_and_unknown_assets_are_rejected(freqtrade_dir):
    market, _ = make_market(freqtrade_dir, start="2025-05-01 00:00")
    engine = TradingEngine(market)
    trader = funded_trader(engine)
    rlb = market.coin("RLB")
    assert rlb.is_delisted
    wire = {"a": rlb.asset_index, "b": True, "p": "1", "s": "100", "r": False, "t": {"limit": {"tif": "Ioc"}}}
    assert statuses(trader.orders([wire])) == [{"error": f"{E.DELISTED} asset={rlb.asset_index}"}]
    wire["a"] = 99
    assert statuses(trader.orders([wire])) == [{"error": f"{E.UNKNOWN_ASSET} asset=99"}]


def test_schedule_cancel_runs_on_the_venue_clock_not_the_replay_clock(freqtrade_dir):
    market, clock = make_market(freqtrade_dir)
    engine = TradingEngine(market)
    trader = funded_trader(engine)
    far_below = round(market.book("ETH")[0][2][0] * 0.5, 1)  # no candle of the next hours trades through it
    oid = trader.order("ETH", True, 0.01, far_below, tif="Gtc")["resting"]["oid"]
    venue_now = engine.venue.now_ms()
    too_early = trader.send({"type": "scheduleCancel", "time": venue_now + 1000})
    assert too_early == {"status": "err",
                         "response": "Scheduled cancel time too early, must be at least 5 seconds from now."}
    assert trader.send({"type": "scheduleCancel", "time": venue_now + 10_000}) == {
        "status": "ok", "response": {"type": "default"}}
    clock.advance(4 * HOUR)  # market time passing does not move the venue clock
    engine.on_clock(clock.now_ms())
    assert trader.info("orderStatus", oid=oid)["order"]["status"] == "open"
    engine.advance_venue_clock(11_000)
    assert trader.info("orderStatus", oid=oid)["order"]["status"] == "scheduledCancel"
    assert trader.info("openOrders") == []


def test_account_info_shapes_for_unknown_user(engine):
    user = "0x" + "ab" * 20
    state = engine.handle_info({"type": "clearinghouseState", "user": user, "dex": ""})
    assert state["assetPositions"] == [] and state["marginSummary"]["accountValue"] == "0.0"
    assert state["time"] == engine.market.now_ms()
    assert engine.handle_info({"type": "userRole", "user": user}) == {"role": "missing"}
    assert engine.handle_info({"type": "userFills", "user": user}) == []
    fees = engine.handle_info({"type": "userFees", "user": user})
    assert fees["userCrossRate"] == "0.00045" and fees["userAddRate"] == "0.00015"


def test_historical_orders_and_deposit_ledger(engine, trader):
    bids, asks = engine.market.book("BTC")
    trader.order("BTC", True, 0.001, round(bids[0][0] * 0.99))  # IOC that cannot match
    trader.order("BTC", True, 0.001, round(asks[0][0] * 1.01))
    hist = trader.info("historicalOrders")
    assert [h["status"] for h in hist] == ["filled", "iocCancelRejected"]
    assert hist[1]["order"]["tif"] == "Ioc" and hist[1]["order"]["sz"] == "0.001"
    ledger = trader.info("userNonFundingLedgerUpdates", startTime=0)
    assert [r["delta"] for r in ledger] == [{"type": "deposit", "usdc": "10000.0"}]


def test_delisting_settles_positions_and_cancels_orders(freqtrade_dir):
    market, clock = make_market(freqtrade_dir, start="2025-04-01 00:05")
    engine = TradingEngine(market)
    trader = funded_trader(engine)
    rlb = market.coin("RLB")
    assert not rlb.is_delisted
    bids, asks = market.book("RLB")
    size = float(math.ceil(30 / asks[0][0]))
    assert "filled" in trader.order("RLB", True, size, asks[2][0])
    resting = trader.order("RLB", True, size, bids[3][0], tif="Gtc")["resting"]["oid"]
    clock.set(clock.now_ms() + 3 * 24 * HOUR)  # past RLB's last recorded candle
    engine.on_clock(clock.now_ms())
    assert market.coin("RLB").is_delisted
    assert trader.position("RLB") is None
    settle = trader.fills()[0]
    assert settle["dir"] == "Close Long" and settle["fee"] == "0.0" and float(settle["px"]) == market.mark("RLB")
    assert trader.info("orderStatus", oid=resting)["order"]["status"] == "delistedCanceled"
