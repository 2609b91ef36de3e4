"""Retries, back-off, timeouts and error classification against the real local exchange's injected faults."""

from __future__ import annotations

import eth_account
import pandas as pd
import pytest
import requests

from gradient_pipeline.config import RateLimitConfig
from gradient_pipeline.exchange.hyperliquid import (
    ExchangeRequestError,
    ExchangeUnavailableError,
    HyperliquidClient,
    RateLimitedError,
)

START = "2025-03-01 06:30"


def test_429_backs_off_and_succeeds(local_exchange_factory, connect):
    ex = local_exchange_factory(start_time=START, coins=["BTC"])
    client, md = connect(ex)
    ex.inject_fault("429", count=2, info_type="candleSnapshot")
    df = md.candles("BTC", "2025-02-28")
    assert len(df) == 7
    s = client.limiter.stats()
    assert s.rate_limited == 2 and s.retries == 2 and s.backoff_wait_s > 0


def test_429_every_time_gives_up_with_named_error(local_exchange_factory, connect):
    ex = local_exchange_factory(start_time=START, coins=["BTC"])
    client, md = connect(ex, max_retries=2)
    ex.inject_fault("429", count=10, info_type="candleSnapshot")
    with pytest.raises(RateLimitedError, match=r"/info candleSnapshot coin=BTC interval=4h at http://127\.0\.0\.1:\d+: "
                       r"rate limited \(HTTP 429\) after 3 attempt"):
        md.candles("BTC", "2025-02-28")
    assert client.limiter.stats().rate_limited == 3


def test_server_budget_smaller_than_configured_budget(local_exchange_factory, connect):
    # The exchange allows 60 weight/min but the client believes 1200: the server's own limiter answers 429,
    # the client backs off until the bucket refills (1 weight/s), and every request still succeeds.
    ex = local_exchange_factory(start_time=START, coins=["BTC"], rate_limit_per_minute=60)
    client, md = connect(ex, max_retries=8, backoff_max_s=2.0)
    times = [md.server_time() for _ in range(31)]  # 31 x weight 2 > 60
    assert times == [pd.Timestamp(START)] * 31
    assert client.limiter.stats().rate_limited >= 1


def test_timeout_is_honoured_and_retried_for_reads(local_exchange_factory, connect):
    ex = local_exchange_factory(start_time=START, coins=["BTC"])
    client, md = connect(ex, timeout_s=0.3)
    ex.inject_fault("timeout", count=1, info_type="exchangeStatus", hang_seconds=20)
    assert md.server_time() == pd.Timestamp(START)
    assert client.limiter.stats().retries == 1


def test_timeout_exhausted_raises_unavailable(local_exchange_factory, connect):
    ex = local_exchange_factory(start_time=START, coins=["BTC"])
    client, md = connect(ex, timeout_s=0.3, max_retries=0)
    ex.inject_fault("timeout", count=1, info_type="exchangeStatus", hang_seconds=20)
    with pytest.raises(ExchangeUnavailableError, match=r"/info exchangeStatus .*timed out") as err:
        md.server_time()
    # The client's read timeout fired (the server would have hung for 20 s and then dropped the connection).
    assert isinstance(err.value.__cause__, requests.exceptions.ReadTimeout)
    assert not err.value.may_have_executed


@pytest.mark.parametrize("kind", ["500", "502", "drop"])
def test_server_errors_and_drops_retried_for_reads(local_exchange_factory, connect, kind):
    ex = local_exchange_factory(start_time=START, coins=["BTC", "ETH"])
    client, md = connect(ex)
    ex.inject_fault(kind, count=2, info_type="metaAndAssetCtxs")
    assert md.universe()["coin"].tolist() == ["BTC", "ETH"]
    assert client.limiter.stats().retries == 2 and client.limiter.stats().rate_limited == 0


def test_bad_request_not_retried(local_exchange_factory, connect):
    ex = local_exchange_factory(start_time=START, coins=["BTC"])
    client, _ = connect(ex)
    with pytest.raises(ExchangeRequestError, match=r"/info noSuchType .*rejected, HTTP 422") as err:
        client.info_post({"type": "noSuchType"})
    assert err.value.status_code == 422 and client.limiter.stats().retries == 0


def test_connection_refused_is_unavailable():
    # Nothing listens on port 9 (discard) on loopback: connection refused, retried, then a named error.
    client = HyperliquidClient("http://127.0.0.1:9", RateLimitConfig(backoff_base_s=0.01, max_retries=1), 1.0)
    with pytest.raises(ExchangeUnavailableError, match=r"/info meta at http://127\.0\.0\.1:9: connection failed"):
        client.meta()
    assert client.limiter.stats().requests == 2


def test_writes_retry_429_but_never_resend_after_a_lost_answer(local_exchange_factory, connect):
    ex = local_exchange_factory(start_time=START, coins=["BTC"])
    client, _ = connect(ex)
    exchange = client.build_exchange(eth_account.Account.create())
    assert exchange.info is client.info()
    ex.inject_fault("429", count=1, action_type="updateLeverage")
    exchange.update_leverage(3, "BTC")  # the engine answers (probably an error for an unfunded user): no raise
    assert client.limiter.stats().retries == 1
    ex.inject_fault("502", count=1, action_type="updateLeverage")
    with pytest.raises(ExchangeUnavailableError, match=r"/exchange updateLeverage .*may have executed") as err:
        exchange.update_leverage(3, "BTC")
    assert err.value.may_have_executed
    assert client.limiter.stats().retries == 1  # not retried


def test_client_rejects_bad_construction():
    with pytest.raises(ValueError, match="trailing slash"):
        HyperliquidClient("http://127.0.0.1:8731/", RateLimitConfig(), 1.0)
    with pytest.raises(ValueError, match="timeout_s must be positive"):
        HyperliquidClient("http://127.0.0.1:8731", RateLimitConfig(), 0)
