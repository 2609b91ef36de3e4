"""One cheap account read (no metadata, no signer) for the drawdown tick: the account's equity in every account
mode — `clearinghouseState` for standard accounts, plus `spotClearinghouseState` for unified-account and
portfolio-margin accounts (cash held there; a ~zero perp balance). The mode is read once an hour per account."""

from __future__ import annotations

import time
from dataclasses import replace

from gradient_pipeline.exchange.hyperliquid.client import HyperliquidClient
from gradient_pipeline.exchange.hyperliquid.errors import ExchangeRequestError
from gradient_pipeline.exchange.hyperliquid.payloads import (
    SPOT_COLLATERAL_MODES,
    equity_from_states,
    parse_account_state,
)
from gradient_pipeline.venue.model import AccountState

_MODE_CACHE: dict[tuple[str, str], tuple[float, str]] = {}
MODE_CACHE_S = 3600.0  # an account's abstraction mode changes rarely; re-read it hourly


def account_mode(client: HyperliquidClient, account_address: str) -> str:
    """`userAbstraction`, cached per (exchange, account) for an hour so a tick costs one account read."""
    key = (client.base_url, account_address.lower())
    hit = _MODE_CACHE.get(key)
    if hit is not None and time.monotonic() - hit[0] < MODE_CACHE_S:
        return hit[1]
    try:
        mode = client.info_post({"type": "userAbstraction", "user": account_address})
    except ExchangeRequestError:  # an exchange that does not know the type: a standard account
        mode = "default"
    mode = mode if isinstance(mode, str) else "default"
    _MODE_CACHE[key] = (time.monotonic(), mode)
    return mode


def read_account_state(client: HyperliquidClient, account_address: str) -> AccountState:
    """`AccountState` whose `account_value` is the equity in the account's mode."""
    mode = account_mode(client, account_address)
    perp = client.info_post({"type": "clearinghouseState", "user": account_address})
    spot = (client.info_post({"type": "spotClearinghouseState", "user": account_address})
            if mode in SPOT_COLLATERAL_MODES else None)
    equity = equity_from_states(mode, perp, spot)
    return replace(parse_account_state(perp), account_value=equity.equity, mode=equity.mode)
