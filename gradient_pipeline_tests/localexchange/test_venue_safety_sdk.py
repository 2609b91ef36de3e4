"""The venue's safety valves and account reads, through the real SDK against a running local exchange:
scheduleCancel on the one venue clock, expiresAfter, account modes, extraAgents, builder approval, and order /
trade ids that never repeat across a restart."""

from __future__ import annotations

import eth_account
import pytest
from hyperliquid.exchange import Exchange
from hyperliquid.utils.signing import get_timestamp_ms

from gradient_pipeline.exchange.hyperliquid.rounding import round_price
from gradient_pipeline.localexchange.engine import DAY_MS
from gradient_pipeline_tests.localexchange._helpers import NO_SPOT, sdk_info

START = "2025-03-01 00:05"
COINS = ["BTC", "ETH"]
TOO_EARLY = "Scheduled cancel time too early, must be at least 5 seconds from now."


@pytest.fixture
def venue(local_exchange_factory):
    master = eth_account.Account.create()
    handle = local_exchange_factory(start_time=START, coins=COINS, accounts={master.address: 10_000.0})
    info = sdk_info(handle)
    ex = Exchange(master, handle.base_url, meta=info.meta(), spot_meta=NO_SPOT, timeout=10)
    return handle, master, info, ex


def rest_bid(handle, ex, coin="ETH", sz=0.01) -> int:
    """A Gtc buy below the best bid (rests; the frozen replay clock never trades into it)."""
    bids, _ = handle.market.book(coin)
    px = round_price(bids[-1][0] * 0.99, handle.market.coin(coin).sz_decimals, is_buy=False)
    resp = ex.order(coin, True, sz, px, {"limit": {"tif": "Gtc"}})
    return resp["response"]["data"]["statuses"][0]["resting"]["oid"]


def order_status(info, master, oid) -> str:
    return info.query_order_by_oid(master.address, oid)["order"]["status"]


def test_sdk_style_now_plus_60s_fires_on_the_venue_clock_and_cancels_resting_orders(venue):
    handle, master, info, ex = venue
    oids = [rest_bid(handle, ex), rest_bid(handle, ex, "BTC", 0.001)]
    assert ex.schedule_cancel(get_timestamp_ms() + 60_000) == {"status": "ok", "response": {"type": "default"}}
    handle.advance(4)  # four hours of market time: not venue time, nothing fires
    handle.advance_venue_clock(50)
    assert {order_status(info, master, o) for o in oids} == {"open"}
    assert handle.scheduled_cancel_ms(master.address) is not None
    handle.advance_venue_clock(11)  # now past wall + 60 s on the venue clock
    assert [order_status(info, master, o) for o in oids] == ["scheduledCancel", "scheduledCancel"]
    assert info.open_orders(master.address) == []
    assert handle.scheduled_cancel_ms(master.address) is None


def test_schedule_cancel_less_than_5s_ahead_is_refused_with_the_live_text(venue):
    _, _, _, ex = venue
    assert ex.schedule_cancel(get_timestamp_ms() + 1_000) == {"status": "err", "response": TOO_EARLY}
    assert ex.schedule_cancel(get_timestamp_ms() - 60_000) == {"status": "err", "response": TOO_EARLY}


def test_schedule_cancel_without_time_clears_it(venue):
    handle, master, info, ex = venue
    oid = rest_bid(handle, ex)
    assert ex.schedule_cancel(get_timestamp_ms() + 10_000)["status"] == "ok"
    assert ex.schedule_cancel(None) == {"status": "ok", "response": {"type": "default"}}
    assert handle.scheduled_cancel_ms(master.address) is None
    handle.advance_venue_clock(30)
    assert order_status(info, master, oid) == "open"


def test_the_eleventh_trigger_of_a_utc_day_is_refused_and_the_count_resets_at_midnight(venue):
    handle, master, info, ex = venue
    now = handle.venue_now_ms()
    if (now + 300_000) // DAY_MS != now // DAY_MS:  # too close to midnight for ten triggers: start the new day
        handle.advance_venue_clock(((now // DAY_MS + 1) * DAY_MS - now) / 1000 + 1)
    for i in range(10):
        # re-arming is free: only a switch that fires counts
        assert ex.schedule_cancel(handle.venue_now_ms() + 30_000)["status"] == "ok"
        assert ex.schedule_cancel(handle.venue_now_ms() + 6_000)["status"] == "ok", i
        handle.advance_venue_clock(7)
        assert handle.scheduled_cancel_ms(master.address) is None  # fired
    refused = ex.schedule_cancel(handle.venue_now_ms() + 6_000)
    assert refused == {"status": "err", "response": "Too many scheduled cancel triggers today"}
    assert ex.schedule_cancel(None)["status"] == "ok"  # clearing is always allowed
    now = handle.venue_now_ms()
    handle.advance_venue_clock(((now // DAY_MS + 1) * DAY_MS - now) / 1000 + 1)  # 00:00 UTC: the count resets
    assert ex.schedule_cancel(handle.venue_now_ms() + 6_000)["status"] == "ok"


def test_expired_action_is_refused_and_a_fresh_one_is_accepted(venue):
    handle, master, info, ex = venue
    ex.set_expires_after(get_timestamp_ms() - 1)
    assert ex.update_leverage(5, "ETH") == {"status": "err", "response": "Action already expired"}
    bids, _ = handle.market.book("ETH")
    expired = ex.order("ETH", True, 0.01, round(bids[-1][0] * 0.99, 1), {"limit": {"tif": "Gtc"}})
    assert expired == {"status": "err", "response": "Action already expired"}
    assert info.open_orders(master.address) == []
    ex.set_expires_after(get_timestamp_ms() + 20_000)
    assert ex.update_leverage(5, "ETH")["status"] == "ok"
    # the same expiry, 21 s later on the venue clock: a request that arrives late is refused
    handle.advance_venue_clock(21)
    assert ex.update_leverage(4, "ETH") == {"status": "err", "response": "Action already expired"}


@pytest.mark.parametrize("mode, wire", [("unified-account", "unifiedAccount"), ("portfolio-margin", "portfolioMargin")])
def test_unified_and_portfolio_margin_accounts_report_cash_in_the_spot_state(local_exchange_factory, mode, wire):
    master = eth_account.Account.create()
    handle = local_exchange_factory(start_time=START, coins=COINS,
                                    accounts={master.address: {"usdc": 10_000.0, "mode": mode}})
    info = sdk_info(handle)
    assert info.query_user_abstraction_state(master.address) == wire
    perp = info.user_state(master.address)
    assert perp["marginSummary"]["accountValue"] == "0.0" and perp["withdrawable"] == "0.0"
    spot = info.spot_user_state(master.address)
    assert spot["balances"][0]["coin"] == "USDC" and float(spot["balances"][0]["total"]) == 10_000.0
    ex = Exchange(master, handle.base_url, meta=info.meta(), spot_meta=NO_SPOT, timeout=10)
    _, asks = handle.market.book("ETH")
    assert "filled" in ex.order("ETH", True, 1.0, round(asks[0][0] * 1.01, 1),
                                {"limit": {"tif": "Ioc"}})["response"]["data"]["statuses"][0]
    handle.advance(1)  # the mark moves: unrealised PnL appears on the perp side only
    perp = info.user_state(master.address)
    upnl = float(perp["assetPositions"][0]["position"]["unrealizedPnl"])
    assert upnl != 0 and float(perp["marginSummary"]["accountValue"]) == pytest.approx(upnl, abs=1e-6)
    spot = info.spot_user_state(master.address)["balances"][0]
    assert float(spot["hold"]) > 0  # margin in use
    engine_value = handle.engine.summary(handle.engine._accounts[master.address.lower()]).account_value
    assert float(spot["total"]) + upnl == pytest.approx(engine_value, abs=1e-5)


def test_standard_account_has_no_spot_balance(venue):
    handle, master, info, _ = venue
    assert info.query_user_abstraction_state(master.address) == "default"
    assert info.spot_user_state(master.address) == {"balances": []}
    assert info.user_state(master.address)["marginSummary"]["accountValue"] == "10000.0"


def test_extra_agents_lists_operator_and_signed_approvals(local_exchange_factory):
    master, agent = eth_account.Account.create(), eth_account.Account.create()
    handle = local_exchange_factory(start_time=START, coins=COINS, accounts={master.address: 1_000.0},
                                    agents={agent.address: master.address})
    info = sdk_info(handle)
    ex = Exchange(master, handle.base_url, meta=info.meta(), spot_meta=NO_SPOT, timeout=10)
    resp, key = ex.approve_agent("bot")
    assert resp["status"] == "ok"
    rows = {r["name"]: r for r in info.extra_agents(master.address)}
    assert set(rows) == {"operator", "bot"}
    assert rows["operator"]["address"] == agent.address.lower()
    assert rows["bot"]["address"] == eth_account.Account.from_key(key).address.lower()
    assert rows["bot"]["validUntil"] > get_timestamp_ms() + 179 * DAY_MS
    assert info.extra_agents(agent.address) == []  # asked with the agent's own address: nothing


def test_order_with_an_unapproved_builder_is_refused(venue):
    handle, master, info, ex = venue
    builder = eth_account.Account.create().address
    bids, _ = handle.market.book("ETH")
    px = round(bids[-1][0] * 0.99, 1)
    gtc = {"limit": {"tif": "Gtc"}}
    refused = ex.order("ETH", True, 0.01, px, gtc, builder={"b": builder, "f": 0})
    assert refused == {"status": "err", "response": "Builder fee has not been approved."}
    assert info.open_orders(master.address) == []
    assert ex.approve_builder_fee(builder, "0.01%")["status"] == "ok"  # 0.01% = 10 tenths of a bp
    assert info.post("/info", {"type": "maxBuilderFee", "user": master.address, "builder": builder}) == 10
    ok = ex.order("ETH", True, 0.01, px, gtc, builder={"b": builder, "f": 10})
    assert "resting" in ok["response"]["data"]["statuses"][0]
    too_high = ex.order("ETH", True, 0.01, px, gtc, builder={"b": builder, "f": 11})
    assert too_high == {"status": "err", "response": "Builder fee has not been approved."}
    assert "resting" in ex.order("ETH", True, 0.01, px, gtc)["response"]["data"]["statuses"][0]  # no builder: fine


def _trade(handle, master):
    info = sdk_info(handle)
    ex = Exchange(master, handle.base_url, meta=info.meta(), spot_meta=NO_SPOT, timeout=10)
    _, asks = handle.market.book("ETH")
    ex.order("ETH", True, 0.01, round(asks[0][0] * 1.01, 1), {"limit": {"tif": "Ioc"}})
    rest_bid(handle, ex)
    fills = info.user_fills(master.address)
    oids = {f["oid"] for f in fills} | {o["oid"] for o in info.open_orders(master.address)}
    return oids, {f["tid"] for f in fills}


def test_order_and_trade_ids_never_repeat_across_a_restart(local_exchange_factory):
    master = eth_account.Account.create()
    first = local_exchange_factory(start_time=START, coins=COINS, accounts={master.address: 10_000.0})
    oids1, tids1 = _trade(first, master)
    first.stop()
    # a fresh process with no saved state (what a restart of the paper exchange is)
    second = local_exchange_factory(start_time=START, coins=COINS, accounts={master.address: 10_000.0})
    oids2, tids2 = _trade(second, master)
    assert len(oids1) == 2 and len(oids2) == 2 and tids1 and tids2
    assert min(oids2) > max(oids1) and min(tids2) > max(tids1)
    # and restoring a saved state never lowers the counters
    saved = second.engine.export_state()
    third = local_exchange_factory(start_time=START, coins=COINS)
    third.engine.import_state(saved)
    oids3, _ = _trade(third, master)
    assert min(oids3 - oids2) > max(oids2)
