"""`HyperliquidClient.from_config`: the URL the mode implies, the configured timeout and budget."""

from __future__ import annotations

from gradient_pipeline.config import LOCAL_API_URL, TESTNET_API_URL, parse_config
from gradient_pipeline.exchange.hyperliquid import HyperliquidClient


def test_from_config_paper_uses_local_exchange_and_timeouts():
    cfg = parse_config({"mode": "paper", "rate_limit": {"request_timeout_s": 2.5, "budget_per_minute": 600}})
    client = HyperliquidClient.from_config(cfg)
    assert client.base_url == LOCAL_API_URL
    assert client.timeout_s == 2.5 and client._transport.timeout == 2.5
    assert client.limiter.capacity == 540  # 600 x 0.9


def test_from_config_override_url():
    cfg = parse_config({"mode": "testnet"})
    assert HyperliquidClient.from_config(cfg).base_url == TESTNET_API_URL
    cfg = parse_config({"mode": "paper", "exchange_base_url": "http://127.0.0.1:9999"})
    assert HyperliquidClient.from_config(cfg).base_url == "http://127.0.0.1:9999"
