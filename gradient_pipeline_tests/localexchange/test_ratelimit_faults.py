"""Per-IP weight budget (429 + `null`) and fault injection, observed through the real SDK client."""

from __future__ import annotations

import eth_account
import pytest
import requests
from hyperliquid.exchange import Exchange
from hyperliquid.utils.error import ClientError, ServerError

from gradient_pipeline.localexchange.faults import FaultInjector
from gradient_pipeline.localexchange.ratelimit import (
    WeightLimiter,
    exchange_weight,
    info_base_weight,
    info_extra_weight,
)
from gradient_pipeline_tests.localexchange._helpers import NO_SPOT, ms, sdk_info

START = "2025-05-01 02:30"


def test_documented_weights():
    assert [info_base_weight(t) for t in ("l2Book", "allMids", "clearinghouseState", "orderStatus",
                                          "exchangeStatus", "userRole", "meta", "candleSnapshot")] == [
        2, 2, 2, 2, 2, 60, 20, 20]
    assert info_extra_weight("candleSnapshot", [{}] * 119) == 1
    assert info_extra_weight("candleSnapshot", [{}] * 120) == 2
    assert info_extra_weight("fundingHistory", [{}] * 500) == 25
    assert info_extra_weight("userFills", [{}] * 39) == 1
    assert info_extra_weight("meta", {"universe": []}) == 0
    assert exchange_weight({"type": "order", "orders": [{}] * 79}) == 2
    assert exchange_weight({"type": "cancel", "cancels": [{}] * 80}) == 3
    assert exchange_weight({"type": "updateLeverage"}) == 1


def test_token_bucket_refills_over_wall_time():
    t = [0.0]
    lim = WeightLimiter(60, clock=lambda: t[0])  # 1 weight per second
    assert lim.try_acquire("a", 40) and lim.try_acquire("a", 20)
    assert not lim.try_acquire("a", 1)
    assert lim.try_acquire("b", 60)  # per IP
    t[0] += 5
    assert lim.try_acquire("a", 5) and not lim.try_acquire("a", 1)
    lim.charge("a", 10)  # response-size weight may go negative ...
    t[0] += 10
    assert not lim.try_acquire("a", 1)  # ... and delays the next request
    t[0] += 1
    assert lim.try_acquire("a", 1)
    t[0] += 1000
    assert lim.remaining("a") == 60  # capped at the budget


def test_over_budget_gets_429_with_body_null(local_exchange_factory):
    ex = local_exchange_factory(start_time=START, coins=["BTC"], rate_limit_per_minute=80)
    info = sdk_info(ex)  # the SDK fetches meta at construction: 20 weight
    now = ex.now_ms()
    candles = info.candles_snapshot("BTC", "1h", now - 1199 * 3_600_000, now)  # 20 + 1200/60 = 40 weight
    assert len(candles) == 1200
    info.meta()  # 20 more: the budget of 80 is spent
    with pytest.raises(ClientError) as err:
        info.meta()
    assert err.value.status_code == 429 and err.value.error_message == "null"
    raw = requests.post(ex.base_url + "/info", json={"type": "meta"}, timeout=5)
    assert (raw.status_code, raw.text) == (429, "null")
    assert ex.exchange.limiter.rejected == 2  # the exchange counts what it refused (soak test: 0 in a cycle)
    # The operator surface is not rate limited, and a reset refills the budget.
    assert requests.get(ex.base_url + "/_local/clock", timeout=5).status_code == 200
    ex.reset_rate_limits()
    assert info.meta()["universe"][0]["name"] == "BTC"


@pytest.mark.parametrize("kind,status", [("429", 429), ("500", 500), ("502", 502)])
def test_http_error_faults_hit_the_next_n_matching_requests(local_exchange_factory, kind, status):
    ex = local_exchange_factory(start_time=START, coins=["BTC"])
    info = sdk_info(ex)
    ex.inject_fault(kind, count=2, info_type="allMids")
    assert info.meta()["universe"]  # another type is not affected
    for _ in range(2):
        with pytest.raises(ClientError if status < 500 else ServerError) as err:
            info.all_mids()
        assert err.value.status_code == status
    assert info.all_mids() == {"BTC": "94671.0"}  # consumed
    assert ex.exchange.faults.pending() == []


def test_timeout_and_drop_faults_break_the_connection(local_exchange_factory):
    ex = local_exchange_factory(start_time=START, coins=["BTC"])
    info = sdk_info(ex, timeout=0.5)
    ex.inject_fault("timeout", hang_seconds=3)
    with pytest.raises(requests.exceptions.Timeout):
        info.all_mids()
    ex.inject_fault("drop", endpoint="info")
    with pytest.raises(requests.exceptions.RequestException) as err:
        info.all_mids()
    assert not isinstance(err.value, requests.exceptions.Timeout)
    assert info.all_mids() == {"BTC": "94671.0"}


def test_lost_response_processes_the_order_then_fails_the_response(local_exchange_factory):
    wallet = eth_account.Account.create()
    ex = local_exchange_factory(start_time=START, coins=["BTC", "ETH"], accounts={wallet.address: 10_000.0})
    if ex.engine is None:
        pytest.fail("trading engine (localexchange/engine.py) is not available")
    exchange = Exchange(wallet, ex.base_url, spot_meta=NO_SPOT, timeout=5)
    info = sdk_info(ex)

    ex.inject_fault("lost_response", action_type="order")
    with pytest.raises(ServerError) as err:
        exchange.market_open("ETH", True, 0.01)
    assert err.value.status_code == 502
    positions = info.user_state(wallet.address)["assetPositions"]
    assert [(p["position"]["coin"], float(p["position"]["szi"])) for p in positions] == [("ETH", 0.01)]

    ex.inject_fault("lost_response_drop", action_type="order")
    with pytest.raises(requests.exceptions.RequestException):
        exchange.market_open("ETH", True, 0.01)
    positions = info.user_state(wallet.address)["assetPositions"]
    assert float(positions[0]["position"]["szi"]) == pytest.approx(0.02)

    ex.inject_fault("502", action_type="order")  # a plain 502 is NOT processed
    with pytest.raises(ServerError):
        exchange.market_open("ETH", True, 0.01)
    assert float(info.user_state(wallet.address)["assetPositions"][0]["position"]["szi"]) == pytest.approx(0.02)


def test_fault_injector_rejects_bad_specs_and_matches_narrowly():
    faults = FaultInjector()
    with pytest.raises(ValueError, match="unknown fault kind 'boom'"):
        faults.inject("boom")
    with pytest.raises(ValueError, match="count must be >= 1"):
        faults.inject("500", 0)
    faults.inject("500", info_type="l2Book")
    faults.inject("429", action_type="order")
    assert faults.take("exchange", None, "cancel") is None
    assert faults.take("info", "allMids", None) is None
    assert faults.take("info", "l2Book", None).kind == "500"
    assert faults.take("exchange", None, "order").kind == "429"
    assert faults.take("exchange", None, "order") is None


def test_operator_endpoints_over_http(local_exchange_factory):
    ex = local_exchange_factory(start_time=START, coins=["BTC"])
    base = ex.base_url + "/_local"
    assert requests.get(base + "/clock", timeout=5).json()["now_ms"] == ms(START)
    assert requests.post(base + "/clock", json={"time": "2025-05-02 00:00"}, timeout=5).json()["now_ms"] == ms(
        "2025-05-02")
    assert requests.post(base + "/clock/advance", json={"hours": 1.5}, timeout=5).json()["now"] == "2025-05-02 01:30:00"
    assert ex.now_ms() == ms("2025-05-02 01:30")
    r = requests.post(base + "/faults", json={"kind": "500", "count": 1, "info_type": "allMids"}, timeout=5)
    assert r.status_code == 200 and r.json()["remaining"] == 1
    assert requests.post(ex.base_url + "/info", json={"type": "allMids"}, timeout=5).status_code == 500
    mid = float(requests.post(ex.base_url + "/info", json={"type": "allMids"}, timeout=5).json()["BTC"])
    assert requests.post(base + "/price_shock", json={"factor": 0.5}, timeout=5).status_code == 200
    shocked = float(requests.post(ex.base_url + "/info", json={"type": "allMids"}, timeout=5).json()["BTC"])
    assert shocked == pytest.approx(mid / 2, rel=1e-4)
    bad = requests.post(base + "/clock/advance", json={"days": 1}, timeout=5)
    assert bad.status_code == 400 and "exactly one of 'ms', 'seconds', 'hours'" in bad.json()["error"]
    bad = requests.post(base + "/price_shock", json={"factor": 0.5, "coin": "NOPE"}, timeout=5)
    assert bad.status_code == 400 and "NOPE" in bad.json()["error"]
    status = requests.get(base + "/status", timeout=5).json()
    assert status["coins_listed"] == 1 and status["faults"] == []

    master = eth_account.Account.create().address
    assert requests.post(base + "/fund", json={"address": master, "usdc": 1234.5}, timeout=5).status_code == 200
    state = sdk_info(ex).user_state(master)
    assert float(state["marginSummary"]["accountValue"]) == 1234.5
    agent = eth_account.Account.create().address
    assert requests.post(base + "/agents", json={"agent": agent, "master": master}, timeout=5).status_code == 200
    role = requests.post(ex.base_url + "/info", json={"type": "userRole", "user": agent}, timeout=5).json()
    assert role["role"] == "agent"
