"""Signatures (recovered with the SDK), agent → master mapping, approveAgent, nonces and expiresAfter."""

from __future__ import annotations

import copy
import time

import pytest
from eth_account import Account
from hyperliquid.utils.signing import sign_agent, sign_l1_action

from gradient_pipeline.localexchange.engine import TradingEngine
from gradient_pipeline.localexchange.market import BadRequest
from gradient_pipeline_tests.localexchange.test_engine_support import (
    Trader,
    funded_trader,
    make_market,
    next_nonce,
)

DAY = 86_400_000


@pytest.fixture
def engine(freqtrade_dir):
    return TradingEngine(make_market(freqtrade_dir)[0])


def _leverage_action(engine, lev=10):
    return {"type": "updateLeverage", "asset": engine.market.coin("ETH").asset_index, "isCross": True,
            "leverage": lev}


def test_unknown_signer_is_reported_with_the_recovered_address(engine):
    stranger = Trader(engine)  # never funded
    resp = stranger.send(_leverage_action(engine))
    assert resp == {"status": "err", "response": f"User or API Wallet {stranger.wallet.address} does not exist."}


def test_tampered_action_recovers_a_different_address(engine):
    trader = funded_trader(engine)
    action = _leverage_action(engine, 10)
    nonce = next_nonce()
    sig = sign_l1_action(trader.wallet, action, None, nonce, None, False)
    tampered = dict(action, leverage=11)
    resp = engine.handle_exchange({"action": tampered, "nonce": nonce, "signature": sig, "vaultAddress": None,
                                   "expiresAfter": None})
    assert resp["status"] == "err" and resp["response"].startswith("User or API Wallet 0x")
    assert trader.wallet.address not in resp["response"]


def test_mainnet_signature_is_not_accepted(engine):
    trader = funded_trader(engine)
    action, nonce = _leverage_action(engine), next_nonce()
    sig = sign_l1_action(trader.wallet, action, None, nonce, None, True)  # what the SDK signs for mainnet
    resp = engine.handle_exchange({"action": action, "nonce": nonce, "signature": sig, "vaultAddress": None,
                                   "expiresAfter": None})
    assert resp["status"] == "err" and trader.wallet.address not in resp["response"]


def test_agent_trades_for_its_master(engine):
    master = Account.create()
    engine.fund(master.address, 5_000)
    agent = Account.create()
    engine.approve_agent(agent.address, master.address)
    trader = Trader(engine, wallet=agent, master=master.address)
    ask = engine.market.book("ETH")[1][0][0]
    st = trader.order("ETH", True, 0.01, round(ask * 1.01, 1))
    assert "filled" in st
    master_state = engine.handle_info({"type": "clearinghouseState", "user": master.address})
    assert master_state["assetPositions"][0]["position"]["szi"] == "0.01"
    agent_state = engine.handle_info({"type": "clearinghouseState", "user": agent.address})
    assert agent_state["assetPositions"] == []  # querying with the agent address gives an empty state
    assert engine.handle_info({"type": "userRole", "user": agent.address}) == {
        "role": "agent", "data": {"user": master.address.lower()}}
    assert engine.handle_info({"type": "userRole", "user": master.address}) == {"role": "user"}


def test_signed_approve_agent_as_the_sdk_sends_it(engine):
    master = Account.create()
    engine.fund(master.address, 1_000)
    agent = Account.create()
    nonce = next_nonce()
    # exactly Exchange.approve_agent(name=None): sign with agentName "", then drop the key before sending
    action = {"type": "approveAgent", "agentAddress": agent.address, "agentName": "", "nonce": nonce}
    sig = sign_agent(master, action, False)
    del action["agentName"]
    resp = engine.handle_exchange({"action": action, "nonce": nonce, "signature": sig, "vaultAddress": None,
                                   "expiresAfter": None})
    assert resp == {"status": "ok", "response": {"type": "default"}}
    trader = Trader(engine, wallet=agent, master=master.address)
    assert trader.send(_leverage_action(engine, 5)) == {"status": "ok", "response": {"type": "default"}}
    # a second unnamed agent replaces the first
    agent2 = Account.create()
    nonce2 = next_nonce()
    action2 = {"type": "approveAgent", "agentAddress": agent2.address, "agentName": "", "nonce": nonce2}
    sig2 = sign_agent(master, action2, False)
    del action2["agentName"]
    engine.handle_exchange({"action": action2, "nonce": nonce2, "signature": sig2, "vaultAddress": None,
                            "expiresAfter": None})
    resp = trader.send(_leverage_action(engine, 6))
    assert resp == {"status": "err", "response": f"User or API Wallet {agent.address} does not exist."}


def test_approve_agent_from_unknown_master_is_refused(engine):
    master, agent = Account.create(), Account.create()
    nonce = next_nonce()
    action = {"type": "approveAgent", "agentAddress": agent.address, "agentName": "", "nonce": nonce}
    sig = sign_agent(master, action, False)
    resp = engine.handle_exchange({"action": action, "nonce": nonce, "signature": sig, "vaultAddress": None,
                                   "expiresAfter": None})
    assert resp == {"status": "err", "response": f"User or API Wallet {master.address} does not exist."}


def test_duplicate_nonce_is_rejected_per_signer(engine):
    a, b = funded_trader(engine), funded_trader(engine)
    nonce = next_nonce()
    assert a.send(_leverage_action(engine), nonce=nonce)["status"] == "ok"
    assert a.send(_leverage_action(engine), nonce=nonce) == {
        "status": "err", "response": f"Invalid nonce: duplicate nonce {nonce}"}
    assert b.send(_leverage_action(engine), nonce=nonce)["status"] == "ok"  # nonces are per signer


def test_nonce_consumed_even_when_the_order_is_rejected(engine):
    trader = funded_trader(engine)
    nonce = next_nonce()
    st = trader.order("BTC", True, 0.0001, 90000, nonce=nonce)  # under $10
    assert st["error"].startswith("Order must have minimum value of $10.")
    assert trader.send(_leverage_action(engine), nonce=nonce)["response"] == f"Invalid nonce: duplicate nonce {nonce}"


def test_only_the_hundred_highest_nonces_are_kept(engine):
    trader = funded_trader(engine)
    base = int(time.time() * 1000) - 60_000
    for k in range(1, 101):
        assert trader.send(_leverage_action(engine), nonce=base + 10 * k)["status"] == "ok"
    smallest = base + 10
    resp = trader.send(_leverage_action(engine), nonce=base + 5)
    assert resp == {"status": "err", "response": f"Invalid nonce: nonce too low {base + 5} < {smallest}"}
    # an unused nonce between kept ones is fine
    assert trader.send(_leverage_action(engine), nonce=base + 15)["status"] == "ok"
    # ...and pushes out the smallest, so the next one must beat the new smallest (base + 15)
    resp = trader.send(_leverage_action(engine), nonce=base + 12)
    assert resp == {"status": "err", "response": f"Invalid nonce: nonce too low {base + 12} < {base + 15}"}


def test_nonce_must_be_within_the_time_window(engine):
    trader = funded_trader(engine)
    now = int(time.time() * 1000)
    old, new = now - 2 * DAY - 60_000, now + DAY + 60_000
    low = trader.send(_leverage_action(engine), nonce=old)
    assert low["status"] == "err" and low["response"].startswith(f"Invalid nonce: nonce too low {old} < ")
    high = trader.send(_leverage_action(engine), nonce=new)
    assert high["status"] == "err" and high["response"].startswith(f"Invalid nonce: nonce too high {new} > ")
    assert trader.send(_leverage_action(engine), nonce=now - DAY)["status"] == "ok"


def test_replay_venue_clock(freqtrade_dir):
    market, clock = make_market(freqtrade_dir)
    engine = TradingEngine(market, {"venue_clock": "replay"})
    trader = funded_trader(engine)
    replay_now = clock.now_ms()
    assert trader.send(_leverage_action(engine), nonce=replay_now + 1)["status"] == "ok"
    wall = trader.send(_leverage_action(engine), nonce=int(time.time() * 1000))
    assert wall["response"].startswith("Invalid nonce: nonce too high")
    expired = trader.send(_leverage_action(engine), nonce=replay_now + 2, expires_after=replay_now - 1)
    assert expired == {"status": "err", "response": "Action already expired"}


def test_expires_after(engine):
    trader = funded_trader(engine)
    past = int(time.time() * 1000) - 1000
    assert trader.send(_leverage_action(engine), expires_after=past) == {
        "status": "err", "response": "Action already expired"}
    future = int(time.time() * 1000) + 60_000
    assert trader.send(_leverage_action(engine), expires_after=future)["status"] == "ok"


def test_vault_address_is_not_registered(engine):
    trader = funded_trader(engine)
    vault = "0x" + "12" * 20
    resp = trader.send(_leverage_action(engine), vault=vault)
    assert resp == {"status": "err", "response": f"Vault not registered: {vault}"}


@pytest.mark.parametrize("mutate", [
    lambda b: b.pop("nonce"),
    lambda b: b.__setitem__("signature", {"r": "0x1"}),
    lambda b: b["action"].pop("type"),
    lambda b: b["action"]["orders"][0].pop("s"),
    lambda b: b["action"]["orders"][0].__setitem__("t", {"limit": {"tif": "Fok"}}),
])
def test_malformed_bodies_raise_bad_request(engine, mutate):
    trader = funded_trader(engine)
    action = {"type": "order", "orders": [trader.wire("ETH", True, 0.01, 2000.0)], "grouping": "na"}
    nonce = next_nonce()
    body = {"action": action, "nonce": nonce, "signature": sign_l1_action(trader.wallet, action, None, nonce, None,
                                                                           False),
            "vaultAddress": None, "expiresAfter": None}
    body = copy.deepcopy(body)
    mutate(body)
    with pytest.raises(BadRequest):
        engine.handle_exchange(body)


def test_address_request_budget(freqtrade_dir):
    engine = TradingEngine(make_market(freqtrade_dir)[0], {"request_buffer": 3})
    trader = funded_trader(engine)
    for _ in range(3):
        assert trader.send(_leverage_action(engine))["status"] == "ok"
    resp = trader.send(_leverage_action(engine))
    assert resp == {"status": "err", "response": "Too many cumulative requests sent (4 > 3) for cumulative volume "
                    "traded $0.00. Place taker orders to free up 1 request per USDC traded."}
    assert trader.info("userRateLimit") == {"cumVlm": "0.0", "nRequestsUsed": 3, "nRequestsCap": 3,
                                            "nRequestsSurplus": 0}


def test_operator_registered_agents_coexist(engine):
    master = Account.create()
    engine.fund(master.address, 1_000)
    first, second = Account.create(), Account.create()
    engine.approve_agent(first.address, master.address)
    engine.approve_agent(second.address, master.address)
    for agent, lev in ((first, 3), (second, 4)):
        resp = Trader(engine, wallet=agent, master=master.address).send(_leverage_action(engine, lev))
        assert resp == {"status": "ok", "response": {"type": "default"}}


def test_master_that_never_deposited_must_deposit_first(engine):
    master, agent = Account.create(), Account.create()
    engine.approve_agent(agent.address, master.address)
    resp = Trader(engine, wallet=agent, master=master.address).send(_leverage_action(engine))
    assert resp == {"status": "err", "response": f"Must deposit before performing actions. User: {master.address.lower()}"}
    engine.fund(master.address, 100)
    assert Trader(engine, wallet=agent, master=master.address).send(_leverage_action(engine))["status"] == "ok"
