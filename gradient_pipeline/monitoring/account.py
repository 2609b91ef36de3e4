"""The exchange access monitoring needs: a `TradingClient` for the configured network.

Reads use the master address (`GRADIENT_ACCOUNT_ADDRESS`); the API-wallet key (`GRADIENT_PRIVATE_KEY`) is only
loaded when an action must be signed (the emergency flatten). Everything goes through `exchange/` (SDK + the
shared rate limiter), so monitoring spends the same request budget as trading.
"""

from __future__ import annotations

from gradient_pipeline.config import GradientConfig
from gradient_pipeline.exchange.hyperliquid.client import HyperliquidClient
from gradient_pipeline.exchange.hyperliquid.trading import TradingClient, account_address_from_env, load_wallet_from_env


def open_trading(cfg: GradientConfig, signer: bool = False) -> TradingClient:
    """Connect to `cfg.base_url`. `signer=True` loads the API-wallet key (needed to cancel and close)."""
    wallet = load_wallet_from_env() if signer else None
    return TradingClient(
        HyperliquidClient.from_config(cfg),
        wallet,
        account_address_from_env(wallet),
        allow_mainnet=cfg.mode == "mainnet" and cfg.allow_mainnet,
    )
