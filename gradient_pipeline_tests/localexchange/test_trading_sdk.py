"""End to end: the real `hyperliquid-python-sdk` `Exchange`/`Info` trading against the local exchange over HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from eth_account import Account
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.types import Cloid

SPOT_META = {"universe": [], "tokens": []}
START = "2025-03-01 00:05"
COINS = ["BTC", "ETH", "kPEPE"]


class Session:
    def __init__(self, handle, master, agent):
        self.handle = handle
        self.master = master
        self.agent = agent
        self.info = Info(handle.base_url, skip_ws=True, spot_meta=SPOT_META, timeout=10)
        self.meta = self.info.meta()
        self.exchange = Exchange(agent, handle.base_url, account_address=master.address, meta=self.meta,
                                 spot_meta=SPOT_META, timeout=10)

    def position(self, coin):
        for p in self.info.user_state(self.master.address)["assetPositions"]:
            if p["position"]["coin"] == coin:
                return p["position"]
        return None


@pytest.fixture
def session(local_exchange_factory):
    master, agent = Account.create(), Account.create()
    handle = local_exchange_factory(start_time=START, coins=COINS, accounts={master.address: 10_000.0},
                                    agents={agent.address: master.address})
    return Session(handle, master, agent)


def _status(resp):
    assert resp["status"] == "ok", resp
    return resp["response"]["data"]["statuses"][0]


def test_market_open_and_close_through_the_sdk(session):
    ex, info = session.exchange, session.info
    st = _status(ex.market_open("ETH", True, 0.05))
    oid = st["filled"]["oid"]
    assert st["filled"]["totalSz"] == "0.05"
    pos = session.position("ETH")
    assert pos["szi"] == "0.05" and pos["entryPx"] == st["filled"]["avgPx"]
    (fill,) = info.user_fills(session.master.address)
    assert fill["oid"] == oid and fill["dir"] == "Open Long" and fill["crossed"] is True
    assert info.query_order_by_oid(session.master.address, oid)["order"]["status"] == "filled"
    # the agent's own address has no state: the exchange maps the agent to its master
    assert info.user_state(session.agent.address)["assetPositions"] == []
    closed = _status(ex.market_close("ETH"))
    assert closed["filled"]["totalSz"] == "0.05"
    assert session.position("ETH") is None
    fills = info.user_fills(session.master.address)
    assert fills[0]["dir"] == "Close Long" and len(fills) == 2


def test_gtc_with_cloid_rest_query_cancel(session):
    ex, info, addr = session.exchange, session.info, session.master.address
    bids, _ = session.handle.market.book("BTC")
    cloid = Cloid.from_int(42)
    st = _status(ex.order("BTC", True, 0.001, bids[2][0], {"limit": {"tif": "Gtc"}}, cloid=cloid))
    assert st["resting"]["cloid"] == cloid.to_raw()
    oid = st["resting"]["oid"]
    status = info.query_order_by_cloid(addr, cloid)
    assert status["status"] == "order" and status["order"]["status"] == "open"
    assert status["order"]["order"]["oid"] == oid and status["order"]["order"]["cloid"] == cloid.to_raw()
    assert [o["oid"] for o in info.open_orders(addr)] == [oid]
    assert [o["oid"] for o in info.frontend_open_orders(addr)] == [oid]
    resp = ex.cancel_by_cloid("BTC", cloid)
    assert resp["response"]["data"]["statuses"] == ["success"]
    assert info.query_order_by_cloid(addr, cloid)["order"]["status"] == "canceled"
    again = ex.cancel("BTC", oid)["response"]["data"]["statuses"][0]
    assert again["error"].startswith("Order was never placed, already canceled, or filled.")


def test_alo_that_would_cross_is_rejected(session):
    _, asks = session.handle.market.book("BTC")
    st = _status(session.exchange.order("BTC", True, 0.001, asks[0][0], {"limit": {"tif": "Alo"}}))
    assert st["error"].startswith("Post only order would have immediately matched, bbo was ")


def test_partial_ioc_on_a_thin_book(local_exchange_factory):
    master = Account.create()
    handle = local_exchange_factory(start_time=START, coins=COINS, accounts={master.address: 1_000_000.0},
                                    book_levels=2, level_fraction_of_day_volume=0.0, min_level_usd=2_000.0)
    s = Session(handle, master, master)
    _, asks = handle.market.book("ETH")
    depth = round(sum(sz for _, sz in asks), 4)
    st = _status(s.exchange.order("ETH", True, round(depth * 2, 4), round(asks[-1][0] * 1.01, 1),
                                  {"limit": {"tif": "Ioc"}}))
    assert float(st["filled"]["totalSz"]) == pytest.approx(depth)
    order = s.info.query_order_by_oid(master.address, st["filled"]["oid"])["order"]
    assert order["status"] == "canceled" and float(order["order"]["origSz"]) == pytest.approx(depth * 2)
    assert len(s.info.user_fills(master.address)) == len(asks)


def test_resting_order_fills_after_price_move_and_funding_accrues(session):
    ex, info, addr, handle = session.exchange, session.info, session.master.address, session.handle
    limit = round(handle.market.mid("BTC") * 0.99)
    oid = _status(ex.order("BTC", True, 0.002, limit, {"limit": {"tif": "Gtc"}}))["resting"]["oid"]
    handle.price_shock(0.98, "BTC")
    handle.advance(timedelta(minutes=1))  # the 2% drop trades through the bid
    assert info.query_order_by_oid(addr, oid)["order"]["status"] == "filled"
    handle.advance(3)  # hours: three funding payments on the new long
    (fill,) = info.user_fills(addr)
    assert float(fill["px"]) == limit and fill["crossed"] is False
    funding = info.user_funding_history(addr, 0)
    assert len(funding) == 3 and {f["delta"]["coin"] for f in funding} == {"BTC"}


def test_leverage_and_agent_approval_through_the_sdk(session):
    master_ex = Exchange(session.master, session.handle.base_url, meta=session.meta, spot_meta=SPOT_META, timeout=10)
    assert master_ex.update_leverage(5, "ETH") == {"status": "ok", "response": {"type": "default"}}
    resp, agent_key = master_ex.approve_agent()
    assert resp == {"status": "ok", "response": {"type": "default"}}
    agent_ex = Exchange(Account.from_key(agent_key), session.handle.base_url, account_address=session.master.address,
                        meta=session.meta, spot_meta=SPOT_META, timeout=10)
    assert "filled" in _status(agent_ex.market_open("ETH", False, 0.01))
    assert session.position("ETH")["leverage"] == {"type": "cross", "value": 5}


def test_unknown_wallet_and_malformed_body(session):
    stranger = Account.create()
    ex = Exchange(stranger, session.handle.base_url, meta=session.meta, spot_meta=SPOT_META, timeout=10)
    assert ex.update_leverage(3, "ETH") == {
        "status": "err", "response": f"User or API Wallet {stranger.address} does not exist."}
    r = requests.post(session.handle.base_url + "/exchange", json={"action": {"type": "order"}, "nonce": 1},
                      timeout=10)
    assert r.status_code == 422
