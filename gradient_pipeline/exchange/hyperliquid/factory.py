"""The one factory of Hyperliquid trading clients, from the configuration and the environment (never from files).

Every caller — the rebalance job (through the `venue` Dagster resource, defs/resources.py), the CLI, monitoring,
the emergency stop, the drill, benches — builds its client here, so they share one timeout
(`rate_limit.request_timeout_s`), one per-IP weight budget (`shared_ledger_path`) and one expiry
(`execution.expires_after_s`).

- `signer=None` (default): a signing client when the mode sends orders (paper / testnet / mainnet), else
  read-only; `signer=True` forces loading the key (e.g. the emergency flatten), `False` a read-only client;
- the API-wallet key comes from `GRADIENT_PRIVATE_KEY`, the master from `GRADIENT_ACCOUNT_ADDRESS` (defaults to
  the key's own address); mainnet needs `mode: mainnet` and `allow_mainnet: true` in the configuration;
- dry_run: no key; the account read is `GRADIENT_ACCOUNT_ADDRESS` on `dry_run_network`.
"""

from __future__ import annotations

import logging
import os

import eth_account
from eth_account.signers.local import LocalAccount

from gradient_pipeline.config import ACCOUNT_ADDRESS_ENV_VAR, MAINNET_API_URL, PRIVATE_KEY_ENV_VAR, GradientConfig
from gradient_pipeline.exchange.hyperliquid.client import HyperliquidClient, shared_ledger_path
from gradient_pipeline.exchange.hyperliquid.trading import TradingClient
from gradient_pipeline.venue.errors import TradingConfigError

log = logging.getLogger(__name__)


def load_wallet_from_env() -> LocalAccount:
    key = os.environ.get(PRIVATE_KEY_ENV_VAR, "").strip()
    if not key:
        raise TradingConfigError(f"{PRIVATE_KEY_ENV_VAR} is not set (the API wallet's private key; env only)")
    try:
        return eth_account.Account.from_key(key)
    except Exception:  # noqa: BLE001 - the library's message could echo the key
        raise TradingConfigError(f"{PRIVATE_KEY_ENV_VAR} is not a valid secp256k1 private key") from None


def account_address_from_env(wallet: LocalAccount | None = None) -> str:
    addr = os.environ.get(ACCOUNT_ADDRESS_ENV_VAR, "").strip()
    if not addr:
        if wallet is None:
            raise TradingConfigError(f"{ACCOUNT_ADDRESS_ENV_VAR} is not set (the master account address)")
        return wallet.address  # trading directly with the master key (no API wallet)
    if not (addr.startswith("0x") and len(addr) == 42):
        raise TradingConfigError(f"{ACCOUNT_ADDRESS_ENV_VAR} is not a 0x-prefixed 20-byte address")
    return addr


def trading_client(cfg: GradientConfig, base_url: str | None = None, signer: bool | None = None) -> TradingClient:
    """A `TradingClient` (an `ExecutionVenue`) for `cfg` (or `base_url`), signing when the mode sends orders."""
    url = base_url or cfg.base_url
    sign = cfg.sends_orders if signer is None else signer
    if url == MAINNET_API_URL and sign and not (cfg.mode == "mainnet" and cfg.allow_mainnet):
        raise TradingConfigError("mainnet URL but mode is not mainnet with allow_mainnet: true; refusing")
    client = HyperliquidClient(url, cfg.rate_limit, cfg.rate_limit.request_timeout_s,
                               ledger_path=shared_ledger_path(cfg))  # the one per-IP budget
    wallet = load_wallet_from_env() if sign else None
    if wallet is None and not os.environ.get(ACCOUNT_ADDRESS_ENV_VAR, "").strip() \
            and os.environ.get(PRIVATE_KEY_ENV_VAR, "").strip():
        account = load_wallet_from_env().address  # read-only, key given: its address (the wallet is not kept)
    else:
        account = account_address_from_env(wallet)
    if cfg.network == "mainnet":
        log.warning("*** %s on MAINNET (%s), account %s ***", cfg.mode.upper(), url, account)
    return TradingClient(client, wallet, account, allow_mainnet=cfg.mode == "mainnet" and cfg.allow_mainnet,
                         expires_after_s=cfg.execution.expires_after_s)


# ----------------------------------------------------------------- the adapter entry points (venue/registry.py)


def open_venue(cfg: GradientConfig, base_url: str | None = None, signer: bool | None = None) -> TradingClient:
    """`venue.registry.open_venue` for Hyperliquid: the trading client above."""
    return trading_client(cfg, base_url, signer)


def configured_account() -> str | None:
    """The master address reads use (`GRADIENT_ACCOUNT_ADDRESS`, else the key's own address); None if neither."""
    addr = os.environ.get(ACCOUNT_ADDRESS_ENV_VAR, "").strip()
    if addr:
        return addr
    if os.environ.get(PRIVATE_KEY_ENV_VAR, "").strip():
        return load_wallet_from_env().address
    return None


def signer_address() -> str:
    """The public address of `GRADIENT_PRIVATE_KEY` (the key itself is dropped at once)."""
    return load_wallet_from_env().address


def read_account(cfg: GradientConfig, account_address: str, client: HyperliquidClient | None = None):
    """One cheap account read (equity and positions, no metadata) through the shared budget."""
    from gradient_pipeline.exchange.hyperliquid.account import read_account_state

    return read_account_state(client or HyperliquidClient.from_config(cfg), account_address)
