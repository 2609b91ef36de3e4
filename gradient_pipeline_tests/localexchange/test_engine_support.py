"""Helpers for the trading-engine tests (no tests here): a real `MarketView` over a few coins of the recorded
data, and a `Trader` that signs actions with the real SDK exactly as `hyperliquid.exchange.Exchange` does."""

from __future__ import annotations

import threading
import time

from eth_account import Account
from hyperliquid.utils.signing import (
    order_request_to_order_wire,
    order_wires_to_order_action,
    sign_l1_action,
)
from hyperliquid.utils.types import Cloid

from gradient_pipeline import timegrid
from gradient_pipeline.localexchange.engine import TradingEngine
from gradient_pipeline.localexchange.market import BookConfig, MarketView
from gradient_pipeline.localexchange.replay import RecordedData, ReplayClock

COINS = ["BTC", "ETH", "kPEPE", "RLB"]
START = "2025-03-01 00:05"
HOUR = 3_600_000


def make_market(data_dir, start: str = START, coins=COINS, book: BookConfig | None = None):
    clock = ReplayClock(timegrid.to_ms(start))
    return MarketView(RecordedData(data_dir, coins=list(coins)), clock, book), clock


_last_nonce = [0]
_nonce_lock = threading.Lock()


def next_nonce() -> int:
    """Strictly increasing, wall-clock based like the SDK's, but never repeating within a test run (two signed
    actions inside one millisecond get consecutive nonces; the clock takes over again when it has moved past)."""
    with _nonce_lock:
        _last_nonce[0] = max(_last_nonce[0] + 1, int(time.time() * 1000))
        return _last_nonce[0]


def statuses(resp: dict) -> list:
    assert resp["status"] == "ok", resp
    return resp["response"]["data"]["statuses"]


class Trader:
    """One signer (`wallet`) trading on `engine`; `master` is the account it acts for (itself unless an agent)."""

    def __init__(self, engine: TradingEngine, wallet=None, master: str | None = None):
        self.engine = engine
        self.wallet = wallet or Account.create()
        self.master = master or self.wallet.address

    @property
    def address(self) -> str:
        return self.master

    def send(self, action: dict, nonce: int | None = None, expires_after: int | None = None,
             vault: str | None = None) -> dict:
        nonce = next_nonce() if nonce is None else nonce
        sig = sign_l1_action(self.wallet, action, vault, nonce, expires_after, False)
        return self.engine.handle_exchange({"action": action, "nonce": nonce, "signature": sig,
                                            "vaultAddress": vault, "expiresAfter": expires_after})

    def wire(self, coin: str, is_buy: bool, sz: float, px: float, tif: str = "Ioc", reduce_only: bool = False,
             cloid: str | None = None) -> dict:
        meta = self.engine.market.coin(coin)
        req = {"coin": coin, "is_buy": is_buy, "sz": sz, "limit_px": px, "order_type": {"limit": {"tif": tif}},
               "reduce_only": reduce_only, "cloid": Cloid.from_str(cloid) if cloid else None}
        return order_request_to_order_wire(req, meta.asset_index)

    def orders(self, wires: list[dict], **kw) -> dict:
        return self.send(order_wires_to_order_action(wires), **kw)

    def order(self, coin, is_buy, sz, px, tif="Ioc", reduce_only=False, cloid=None, **kw) -> dict:
        """The single status of a one-order action."""
        return statuses(self.orders([self.wire(coin, is_buy, sz, px, tif, reduce_only, cloid)], **kw))[0]

    def cancel(self, coin: str, oid: int) -> dict:
        a = self.engine.market.coin(coin).asset_index
        return self.send({"type": "cancel", "cancels": [{"a": a, "o": oid}]})

    def cancel_cloid(self, coin: str, cloid: str) -> dict:
        a = self.engine.market.coin(coin).asset_index
        return self.send({"type": "cancelByCloid", "cancels": [{"asset": a, "cloid": cloid}]})

    def leverage(self, coin: str, lev: int, is_cross: bool = True) -> dict:
        a = self.engine.market.coin(coin).asset_index
        return self.send({"type": "updateLeverage", "asset": a, "isCross": is_cross, "leverage": lev})

    def info(self, kind: str, **kw):
        return self.engine.handle_info({"type": kind, "user": self.master, **kw})

    def state(self) -> dict:
        return self.info("clearinghouseState", dex="")

    def position(self, coin: str) -> dict | None:
        for p in self.state()["assetPositions"]:
            if p["position"]["coin"] == coin:
                return p["position"]
        return None

    def fills(self) -> list[dict]:
        return self.info("userFills")


def funded_trader(engine: TradingEngine, usdc: float = 10_000.0) -> Trader:
    t = Trader(engine)
    engine.fund(t.address, usdc)
    return t
