"""Money safety: mainnet is unreachable without the flag; the ledger's fill ingestion is idempotent."""

import eth_account
import pandas as pd
import pytest

from gradient_pipeline.config import MAINNET_API_URL, ConfigError, parse_config
from gradient_pipeline.exchange.hyperliquid.client import HyperliquidClient
from gradient_pipeline.exchange.hyperliquid.trading import TradingClient
from gradient_pipeline.venue.errors import TradingConfigError
from gradient_pipeline import book
from gradient_pipeline.book import ledger
from gradient_pipeline.exchange.hyperliquid.factory import trading_client
from gradient_pipeline.exchange.hyperliquid.payloads import parse_fill


def test_mainnet_needs_mode_and_flag():
    with pytest.raises(ConfigError, match="allow_mainnet"):
        parse_config({"mode": "mainnet"})
    with pytest.raises(ConfigError, match="points at mainnet"):
        parse_config({"mode": "paper", "exchange_base_url": MAINNET_API_URL})
    with pytest.raises(ConfigError, match="points at mainnet"):
        parse_config({"mode": "testnet", "exchange_base_url": MAINNET_API_URL})


def test_trading_client_refuses_to_sign_for_mainnet_before_any_request(monkeypatch):
    wallet = eth_account.Account.create()
    # No network here: the refusal must come before the first request (meta), or this would hang or fail differently.
    client = HyperliquidClient(MAINNET_API_URL, parse_config({}).rate_limit, 0.01)
    with pytest.raises(TradingConfigError, match="refusing to sign for mainnet"):
        TradingClient(client, wallet, wallet.address, allow_mainnet=False)
    # dry_run pointed at mainnet sends nothing, so it never loads a key
    monkeypatch.setenv("GRADIENT_PRIVATE_KEY", wallet.key.hex())
    cfg = parse_config({"mode": "dry_run", "dry_run_network": "mainnet"})
    assert not cfg.sends_orders and cfg.base_url == MAINNET_API_URL


def test_key_errors_do_not_echo_the_key(monkeypatch):
    bad = "0x" + "zz" * 32
    monkeypatch.setenv("GRADIENT_PRIVATE_KEY", bad)
    cfg = parse_config({"mode": "paper", "exchange_base_url": "http://127.0.0.1:9"})
    with pytest.raises(TradingConfigError) as err:
        trading_client(cfg)
    assert "zz" not in str(err.value) and "GRADIENT_PRIVATE_KEY" in str(err.value)
    monkeypatch.delenv("GRADIENT_PRIVATE_KEY")
    with pytest.raises(TradingConfigError, match="GRADIENT_PRIVATE_KEY is not set"):
        trading_client(cfg)


def test_fill_ingestion_is_idempotent(tmp_path, book_backend):
    fill = {"coin": "BTC", "px": "84310.0", "sz": "0.01", "side": "B", "time": 1740787500000, "fee": "0.38",
            "feeToken": "USDC", "tid": 77, "oid": 5, "crossed": False, "closedPnl": "0.0", "dir": "Open Long",
            "hash": "0xabc"}
    with book.connect(tmp_path / "l.duckdb") as conn:
        ledger.record_orders(conn, [{"cloid": "0x" + "1" * 32, "rebalance_id": "r1", "coin": "BTC", "leg": "open",
                                     "attempt": 0, "side": "buy", "sz": 0.01, "status": "sending"}])
        ledger.update_order(conn, "0x" + "1" * 32, "filled", oid=5)
        fill = parse_fill(fill)
        assert ledger.ingest_fills(conn, [fill]) == 1
        first = ledger.table_frame(conn, "fills")
        assert ledger.ingest_fills(conn, [fill, fill]) == 0
        again = ledger.table_frame(conn, "fills")
        pd.testing.assert_frame_equal(first, again)
        row = again.iloc[0]
        assert row["rebalance_id"] == "r1" and row["liquidity"] == "maker" and row["notional_usd"] == pytest.approx(843.1)
        # re-recording an order (a resumed run's write-ahead) never overwrites what is known
        ledger.record_orders(conn, [{"cloid": "0x" + "1" * 32, "rebalance_id": "r1", "coin": "BTC", "leg": "open",
                                     "attempt": 0, "side": "buy", "sz": 0.01, "status": "sending"}])
        assert ledger.table_frame(conn, "orders")["status"].tolist() == ["filled"]
