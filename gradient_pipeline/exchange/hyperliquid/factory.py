"""Build the trading client a mode needs, from the configuration and the environment (never from files).

- paper / testnet / mainnet: the API-wallet key from `GRADIENT_PRIVATE_KEY`, the master from
  `GRADIENT_ACCOUNT_ADDRESS` (defaults to the key's own address); mainnet needs `mode: mainnet` and
  `allow_mainnet: true` in the configuration;
- dry_run: no key; the account read is `GRADIENT_ACCOUNT_ADDRESS` on `dry_run_network`.
"""

from __future__ import annotations

import logging

from gradient_pipeline.config import MAINNET_API_URL, GradientConfig
from gradient_pipeline.exchange.hyperliquid.client import HyperliquidClient, shared_ledger_path
from gradient_pipeline.exchange.hyperliquid.trading import (
    TradingClient,
    TradingConfigError,
    account_address_from_env,
    load_wallet_from_env,
)

log = logging.getLogger(__name__)


def trading_client(cfg: GradientConfig, base_url: str | None = None) -> TradingClient:
    url = base_url or cfg.base_url
    if url == MAINNET_API_URL and cfg.sends_orders and not (cfg.mode == "mainnet" and cfg.allow_mainnet):
        raise TradingConfigError("mainnet URL but mode is not mainnet with allow_mainnet: true; refusing")
    client = HyperliquidClient(url, cfg.rate_limit, cfg.execution.request_timeout_s,
                                ledger_path=shared_ledger_path(cfg))  # the one per-IP budget
    if cfg.sends_orders:
        wallet = load_wallet_from_env()
        account = account_address_from_env(wallet)
    else:
        wallet = None
        account = account_address_from_env(None)
    if cfg.network == "mainnet":
        log.warning("*** %s on MAINNET (%s), account %s ***", cfg.mode.upper(), url, account)
    return TradingClient(client, wallet, account, allow_mainnet=cfg.mode == "mainnet" and cfg.allow_mainnet,
                         expires_after_s=cfg.execution.expires_after_s)
