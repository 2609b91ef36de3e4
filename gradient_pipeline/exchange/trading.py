"""The trading half of the Hyperliquid adapter: account reads with the master address, signed order actions,
and the classification of every order outcome.

Everything goes through `hyperliquid-python-sdk` (`Exchange` for signed actions, its `Info` for account reads)
with a configurable base URL, so paper (local exchange), testnet and mainnet share this code.

Outcome taxonomy (after nautilus' command-outcome policy):
- definitive: `filled`, `partial` (IOC filled less than sent; the rest is cancelled), `resting`, `rejected`
  (the exchange answered with an error for this order, or refused the whole request before processing it: HTTP 4xx);
- `ambiguous`: timeout, connection error, 5xx, unparseable body — the order may or may not exist. The caller
  must look it up by client order id (`order_status`) before sending anything for that coin again.

Secrets: the API-wallet key comes only from `GRADIENT_PRIVATE_KEY` and is held inside the SDK's `LocalAccount`;
this module never formats it into a message, a log line or a repr.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import eth_account
import requests
from eth_account.signers.local import LocalAccount
from hyperliquid.exchange import Exchange
from hyperliquid.utils.error import ClientError, ServerError
from hyperliquid.utils.signing import float_to_wire
from hyperliquid.utils.types import Cloid

from gradient_pipeline.config import (
    ACCOUNT_ADDRESS_ENV_VAR,
    MAINNET_API_URL,
    PRIVATE_KEY_ENV_VAR,
)
from gradient_pipeline.exchange.client import HyperliquidClient
from gradient_pipeline.exchange.errors import (
    ExchangeRequestError,
    ExchangeUnavailableError,
    RateLimitedError,
)

log = logging.getLogger(__name__)

PERP_MAX_DECIMALS = 6
PRICE_SIG_FIGS = 5


ACTION_REFUSED = "action refused: "  # prefix of a whole-request error (signature, nonce, account), not one order's


class TradingConfigError(RuntimeError):
    """Missing/invalid key or address, or a network this configuration may not reach."""


# ---------------------------------------------------------------------------------------------------------------
# Rounding (pure). Hyperliquid: size to szDecimals; price ≤ 5 significant figures and ≤ 6 − szDecimals decimals;
# integer prices are always valid. Buys round up and sells down, so a rounded limit is never less aggressive
# than asked; sizes floor, so a reduce-only order never exceeds the position it closes.
# ---------------------------------------------------------------------------------------------------------------


def round_size(sz: float, sz_decimals: int) -> float:
    """Floor |sz| to the coin's lot size (sign kept)."""
    q = Decimal(1).scaleb(-sz_decimals)
    d = Decimal(repr(abs(sz))).quantize(q, rounding=ROUND_FLOOR)
    return float(d) if sz >= 0 else -float(d)


def price_decimals(px: float, sz_decimals: int) -> int:
    """Decimals allowed for a perp price of this magnitude."""
    d = Decimal(repr(px))
    magnitude = d.adjusted()  # floor(log10(px))
    return max(0, min(PERP_MAX_DECIMALS - sz_decimals, PRICE_SIG_FIGS - 1 - magnitude))


def round_price(px: float, sz_decimals: int, is_buy: bool) -> float:
    """A valid perp limit price at or beyond `px` in the order's direction (buys up, sells down)."""
    if not px > 0:
        raise ValueError(f"price must be positive, got {px!r}")
    rounding = ROUND_CEILING if is_buy else ROUND_FLOOR
    decimals = price_decimals(px, sz_decimals)
    out = Decimal(repr(px)).quantize(Decimal(1).scaleb(-decimals), rounding=rounding)
    # Rounding up can add a digit (99999.5 -> 100000): re-check the significant figures at the new magnitude.
    decimals2 = price_decimals(float(out), sz_decimals)
    if decimals2 < decimals:
        out = out.quantize(Decimal(1).scaleb(-decimals2), rounding=rounding)
    if out <= 0:  # a sell rounded down to zero: use the smallest valid tick instead
        out = Decimal(1).scaleb(-decimals)
    return float(out)


def is_valid_price(px: float, sz_decimals: int) -> bool:
    d = Decimal(float_to_wire(px))
    if d == d.to_integral_value():
        return True
    decimals = -d.as_tuple().exponent
    sig = len(d.normalize().as_tuple().digits)
    return decimals <= PERP_MAX_DECIMALS - sz_decimals and sig <= PRICE_SIG_FIGS


def is_valid_size(sz: float, sz_decimals: int) -> bool:
    d = Decimal(float_to_wire(sz))
    return d > 0 and -d.as_tuple().exponent <= sz_decimals


def make_cloid(rebalance_id: str, coin: str, leg: str, attempt: int) -> Cloid:
    """Deterministic client order id: the same (rebalance, coin, leg, attempt) always maps to the same 128 bits,
    so a resumed rebalance can find what an earlier process sent."""
    digest = hashlib.sha256(f"{rebalance_id}|{coin}|{leg}|{attempt}".encode()).hexdigest()
    return Cloid("0x" + digest[:32])


# ---------------------------------------------------------------------------------------------------------------
# Value objects
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderRequest:
    """One order, already rounded and validated by the planner."""

    coin: str
    is_buy: bool
    sz: float
    limit_px: float
    reduce_only: bool
    cloid: str
    tif: str = "Ioc"  # Ioc | Alo | Gtc


@dataclass(frozen=True)
class OrderOutcome:
    """What the exchange (or the transport) said about one order."""

    cloid: str
    kind: str  # filled | partial | resting | rejected | ambiguous
    oid: int | None = None
    filled_sz: float = 0.0
    avg_px: float | None = None
    error: str | None = None

    @property
    def definitive(self) -> bool:
        return self.kind != "ambiguous"


@dataclass(frozen=True)
class Position:
    coin: str
    szi: float
    entry_px: float | None
    position_value: float
    unrealized_pnl: float


@dataclass(frozen=True)
class AccountState:
    account_value: float
    total_ntl_pos: float
    positions: dict[str, Position] = field(default_factory=dict)
    time_ms: int | None = None


@dataclass(frozen=True)
class OrderLookup:
    """`orderStatus` by client id. `status` is the exchange's word (open, filled, canceled, …) or `unknown`."""

    cloid: str
    status: str
    oid: int | None = None
    orig_sz: float | None = None
    remaining_sz: float | None = None

    @property
    def exists(self) -> bool:
        return self.status != "unknown"

    @property
    def is_open(self) -> bool:
        return self.status == "open"


# ---------------------------------------------------------------------------------------------------------------
# Response parsing (pure)
# ---------------------------------------------------------------------------------------------------------------


def classify_order_response(resp, orders: list[OrderRequest]) -> list[OrderOutcome]:
    """Map an `/exchange` order response to one outcome per order, in order."""
    if not isinstance(resp, dict):
        return [OrderOutcome(o.cloid, "ambiguous", error=f"unparseable response: {str(resp)[:200]}") for o in orders]
    if resp.get("status") == "err":
        # The whole action was refused before any order was processed (bad signature, nonce, …).
        msg = ACTION_REFUSED + str(resp.get("response"))
        return [OrderOutcome(o.cloid, "rejected", error=msg) for o in orders]
    if "error" in resp and "status" not in resp:  # SDK: body was not JSON
        return [OrderOutcome(o.cloid, "ambiguous", error=str(resp["error"])[:300]) for o in orders]
    try:
        statuses = resp["response"]["data"]["statuses"]
    except (KeyError, TypeError):
        return [OrderOutcome(o.cloid, "ambiguous", error=f"unexpected response shape: {str(resp)[:200]}") for o in orders]
    if len(statuses) == 1 and len(orders) > 1 and isinstance(statuses[0], dict) and "error" in statuses[0]:
        statuses = statuses * len(orders)  # batch-level pre-validation error, reported once
    if len(statuses) != len(orders):
        return [
            OrderOutcome(o.cloid, "ambiguous", error=f"{len(statuses)} statuses for {len(orders)} orders")
            for o in orders
        ]
    out = []
    for order, st in zip(orders, statuses):
        if isinstance(st, dict) and "filled" in st:
            f = st["filled"]
            total = float(f.get("totalSz", 0))
            kind = "filled" if total >= order.sz - 1e-12 else "partial"
            out.append(OrderOutcome(order.cloid, kind, oid=f.get("oid"), filled_sz=total, avg_px=float(f["avgPx"])))
        elif isinstance(st, dict) and "resting" in st:
            out.append(OrderOutcome(order.cloid, "resting", oid=st["resting"].get("oid")))
        elif isinstance(st, dict) and "error" in st:
            out.append(OrderOutcome(order.cloid, "rejected", error=str(st["error"])))
        else:
            out.append(OrderOutcome(order.cloid, "ambiguous", error=f"unknown status {st!r}"[:300]))
    return out


def parse_account_state(state: dict) -> AccountState:
    positions = {}
    for item in state.get("assetPositions", []):
        p = item["position"]
        szi = float(p["szi"])
        if szi == 0:
            continue
        positions[p["coin"]] = Position(
            coin=p["coin"],
            szi=szi,
            entry_px=float(p["entryPx"]) if p.get("entryPx") is not None else None,
            position_value=float(p.get("positionValue", 0.0)),
            unrealized_pnl=float(p.get("unrealizedPnl", 0.0)),
        )
    summary = state.get("marginSummary", {})
    return AccountState(
        account_value=float(summary.get("accountValue", 0.0)),
        total_ntl_pos=float(summary.get("totalNtlPos", 0.0)),
        positions=positions,
        time_ms=state.get("time"),
    )


def parse_order_status(cloid: str, resp) -> OrderLookup:
    if not isinstance(resp, dict) or resp.get("status") != "order":
        return OrderLookup(cloid, "unknown")
    o = resp["order"]
    inner = o.get("order", {})
    return OrderLookup(
        cloid=cloid,
        status=str(o.get("status")),
        oid=inner.get("oid"),
        orig_sz=float(inner["origSz"]) if inner.get("origSz") is not None else None,
        remaining_sz=float(inner["sz"]) if inner.get("sz") is not None else None,
    )


def _transport_error(err: Exception) -> tuple[str, str]:
    """(kind, message) for an exception raised while sending. The message never contains request bodies."""
    if isinstance(err, ExchangeUnavailableError):
        return ("ambiguous" if err.may_have_executed else "rejected"), str(err)[:300]
    if isinstance(err, (RateLimitedError, ExchangeRequestError)):
        return "rejected", str(err)[:300]  # refused before processing (429 after retries, 4xx)
    if isinstance(err, ClientError):
        # A 4xx means the request was refused before processing (429 rate limit, 422 malformed body).
        return "rejected", f"HTTP {err.status_code}: {str(err.error_message)[:200]}"
    if isinstance(err, ServerError):
        return "ambiguous", f"HTTP {err.status_code} from exchange"
    if isinstance(err, requests.Timeout):
        return "ambiguous", "timeout waiting for the exchange"
    if isinstance(err, requests.ConnectionError):
        return "ambiguous", "connection error (the request may have reached the exchange)"
    if isinstance(err, ValueError):
        return "ambiguous", f"unparseable response: {type(err).__name__}"
    return "ambiguous", f"{type(err).__name__} while sending"


# ---------------------------------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------------------------------


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


class TradingClient:
    """Signed order actions and account reads for one master account, through a shared `HyperliquidClient`
    (its weight budget, timeouts and retry policy: reads retried on transient errors, writes only on 429).

    `account_address` is the master (queries must use it; the API wallet only signs). `wallet=None` gives a
    read-only client (dry_run). Mainnet is refused unless `allow_mainnet`.
    """

    def __init__(
        self,
        client: HyperliquidClient,
        wallet: LocalAccount | None,
        account_address: str,
        allow_mainnet: bool = False,
    ):
        if client.base_url.rstrip("/") == MAINNET_API_URL and wallet is not None and not allow_mainnet:
            raise TradingConfigError("refusing to sign for mainnet: set mode: mainnet and allow_mainnet: true")
        self.client = client
        self.base_url = client.base_url
        self.account_address = account_address
        self.meta = client.meta()
        self.sz_decimals = {a["name"]: int(a["szDecimals"]) for a in self.meta["universe"]}
        self.max_leverage = {a["name"]: int(a.get("maxLeverage", 1)) for a in self.meta["universe"]}
        self.delisted = {a["name"] for a in self.meta["universe"] if a.get("isDelisted")}
        self.info = client.info()
        self._sdk = client.build_exchange(wallet, account_address=account_address) if wallet is not None else None

    def __repr__(self) -> str:  # never include the wallet
        return f"TradingClient(base_url={self.base_url!r}, account={self.account_address!r})"

    @property
    def can_sign(self) -> bool:
        return self._sdk is not None

    def _require_signer(self) -> Exchange:
        if self._sdk is None:
            raise TradingConfigError("this client is read-only (no private key): it cannot send actions")
        return self._sdk

    # ----------------------------------------------------------------- reads
    def server_time(self):
        return self.client.server_time()

    def account_state(self) -> AccountState:
        return parse_account_state(self.info.user_state(self.account_address))

    def open_orders(self) -> list[dict]:
        return list(self.info.open_orders(self.account_address))

    def user_fills(self) -> list[dict]:
        return list(self.info.user_fills(self.account_address))

    def all_mids(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.info.all_mids().items() if not k.startswith("@")}

    def l2_touch(self, coin: str) -> tuple[float | None, float | None]:
        """(best bid, best ask) for passive orders."""
        book = self.info.l2_snapshot(coin)
        bids, asks = book["levels"][0], book["levels"][1]
        return (float(bids[0]["px"]) if bids else None, float(asks[0]["px"]) if asks else None)

    def order_status(self, cloid: str) -> OrderLookup:
        """Look an order up by client id (the client retries transient failures; a persistent one raises)."""
        return parse_order_status(cloid, self.info.query_order_by_cloid(self.account_address, Cloid(cloid)))

    # ----------------------------------------------------------------- actions
    def bulk_orders(self, orders: list[OrderRequest]) -> list[OrderOutcome]:
        """Send one signed batch. Never raises for exchange or transport trouble: every order gets an outcome."""
        if not orders:
            return []
        sdk = self._require_signer()
        reqs = [
            {
                "coin": o.coin,
                "is_buy": o.is_buy,
                "sz": o.sz,
                "limit_px": o.limit_px,
                "order_type": {"limit": {"tif": o.tif}},
                "reduce_only": o.reduce_only,
                "cloid": Cloid(o.cloid),
            }
            for o in orders
        ]
        try:
            resp = sdk.bulk_orders(reqs)
        except Exception as err:  # noqa: BLE001 - classified below; nothing escapes unclassified
            kind, msg = _transport_error(err)
            log.warning("order batch of %d: %s (%s)", len(orders), kind, msg)
            return [OrderOutcome(o.cloid, kind, error=msg) for o in orders]
        return classify_order_response(resp, orders)

    def cancel_by_cloid(self, coin: str, cloid: str) -> bool:
        """Cancel a resting order by client id. True if cancelled, False if it was no longer open."""
        return _cancel_succeeded(self._require_signer().cancel_by_cloid(coin, Cloid(cloid)), f"cancelByCloid {coin} {cloid}")

    def cancel(self, coin: str, oid: int) -> bool:
        """Cancel a resting order by exchange id (orders placed without a client id, e.g. by hand)."""
        return _cancel_succeeded(self._require_signer().cancel(coin, int(oid)), f"cancel {coin} {oid}")

    def update_leverage(self, coin: str, leverage: int, is_cross: bool = True) -> None:
        resp = self._require_signer().update_leverage(int(leverage), coin, is_cross)
        if not isinstance(resp, dict) or resp.get("status") != "ok":
            raise RuntimeError(f"updateLeverage {coin} x{leverage}: {str(resp)[:200]}")


def _cancel_succeeded(resp, what: str) -> bool:
    try:
        st = resp["response"]["data"]["statuses"][0]
    except (KeyError, TypeError, IndexError):
        raise RuntimeError(f"{what}: unexpected response {str(resp)[:200]}") from None
    return st == "success"


def fills_for_oids(fills: Iterable[dict], oids: set[int]) -> list[dict]:
    return [f for f in fills if f.get("oid") in oids]
