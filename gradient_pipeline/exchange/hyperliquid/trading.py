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

import contextlib
import hashlib
import logging
import math
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import eth_account
import requests
from eth_account.signers.local import LocalAccount
from hyperliquid.exchange import Exchange
from hyperliquid.utils.error import ClientError, ServerError
from hyperliquid.utils.signing import float_to_wire, get_timestamp_ms
from hyperliquid.utils.types import Cloid

from gradient_pipeline.config import (
    ACCOUNT_ADDRESS_ENV_VAR,
    MAINNET_API_URL,
    PRIVATE_KEY_ENV_VAR,
)
from gradient_pipeline.exchange.hyperliquid.client import HyperliquidClient
from gradient_pipeline.exchange.hyperliquid.errors import (
    ActionRefusedError,
    ExchangeRequestError,
    ExchangeUnavailableError,
    RateLimitedError,
)

log = logging.getLogger(__name__)

PERP_MAX_DECIMALS = 6
PRICE_SIG_FIGS = 5


ACTION_REFUSED = "action refused: "  # prefix of a whole-request error (signature, nonce, account), not one order's

DEFAULT_EXPIRES_AFTER_S = 30.0  # a signed order/cancel that has not landed within this is refused by the venue

# `userAbstraction` answers. In these two modes the collateral sits in the spot balance (spotClearinghouseState)
# and the perp clearinghouseState reports ~zero: equity must be read from both (reference §10).
STANDARD_MODES = frozenset({"default", "disabled", "dexAbstraction"})
SPOT_COLLATERAL_MODES = frozenset({"unifiedAccount", "portfolioMargin"})
COLLATERAL_COINS = frozenset({"USDC"})  # spot balances counted as equity in the unified / portfolio-margin modes


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
    """Positions and account value. `account_value` is the account's equity in every account mode (see
    `TradingClient.account_state`); `mode` is the `userAbstraction` answer it was read under."""

    account_value: float
    total_ntl_pos: float
    positions: dict[str, Position] = field(default_factory=dict)
    time_ms: int | None = None
    mode: str = "default"


@dataclass(frozen=True)
class AccountEquity:
    """Equity of one account, read correctly for its mode.

    - standard (`default`, also `disabled` / `dexAbstraction`): the perp `marginSummary.accountValue`;
    - `unifiedAccount` / `portfolioMargin`: spot USDC `total` (the cash, margin in use included as `hold`) plus the
      unrealised PnL of the perp positions — the perp accountValue is ~zero there, so it is not used.
    """

    equity: float
    mode: str
    perp_account_value: float
    spot_collateral: float
    unrealized_pnl: float


def equity_from_states(mode: str, perp_state: dict, spot_state: dict | None) -> AccountEquity:
    """Pure: the account's equity from its mode and the raw clearinghouseState / spotClearinghouseState answers."""
    summary = perp_state.get("marginSummary") or {}
    perp_value = float(summary.get("accountValue", 0.0))
    upnl = sum(float(p["position"].get("unrealizedPnl", 0.0)) for p in perp_state.get("assetPositions", []))
    spot = 0.0
    for bal in (spot_state or {}).get("balances", []):
        if bal.get("coin") in COLLATERAL_COINS:
            spot += float(bal.get("total", 0.0))
    if mode in SPOT_COLLATERAL_MODES:
        if spot_state is None:
            raise ValueError(f"account mode {mode}: equity needs spotClearinghouseState")
        equity = spot + upnl
    else:
        equity = perp_value
    if not math.isfinite(equity):
        raise ValueError(f"account equity is not finite ({equity!r}) in mode {mode}")
    return AccountEquity(equity, mode, perp_value, spot, upnl)


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

    Every signed L1 action (orders, cancels, leverage, scheduleCancel) carries `expiresAfter` = the local wall clock
    + `expires_after_s` (None: no expiry), so a request delayed in transit or in 429 back-off cannot land late: the
    venue refuses it with `Action already expired` (an outcome of kind `rejected`: it never executed).
    """

    def __init__(
        self,
        client: HyperliquidClient,
        wallet: LocalAccount | None,
        account_address: str,
        allow_mainnet: bool = False,
        expires_after_s: float | None = DEFAULT_EXPIRES_AFTER_S,
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
        if expires_after_s is not None and not expires_after_s > 0:
            raise ValueError(f"expires_after_s must be positive or None, got {expires_after_s!r}")
        self.expires_after_s = expires_after_s
        self._expiry_lock = threading.Lock()  # the SDK keeps expiresAfter on the Exchange object
        self._mode: str | None = None

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

    def account_mode(self, refresh: bool = False) -> str:
        """The account's `userAbstraction` mode, read once per client (`refresh=True` re-reads). An exchange that
        does not know the request type (HTTP 4xx) is taken as standard, with a warning."""
        if self._mode is None or refresh:
            try:
                mode = self.client.info_post({"type": "userAbstraction", "user": self.account_address})
            except ExchangeRequestError as err:
                log.warning("userAbstraction not answered by %s (%s); assuming a standard account", self.base_url, err)
                mode = "default"
            if not isinstance(mode, str):
                raise ValueError(f"userAbstraction for {self.account_address}: expected a string, got {mode!r}")
            if mode not in STANDARD_MODES | SPOT_COLLATERAL_MODES:
                log.warning("unknown account mode %r for %s; reading equity as a standard account", mode,
                            self.account_address)
            self._mode = mode
        return self._mode

    def account_equity(self) -> AccountEquity:
        """The account's equity, correct in standard, unified-account and portfolio-margin modes: the mode (read
        once), then clearinghouseState, plus spotClearinghouseState when the collateral lives there."""
        return self._read_account()[1]

    def _read_account(self) -> tuple[dict, AccountEquity]:
        mode = self.account_mode()
        perp = self.info.user_state(self.account_address)
        spot = self.info.spot_user_state(self.account_address) if mode in SPOT_COLLATERAL_MODES else None
        return perp, equity_from_states(mode, perp, spot)

    def account_state(self) -> AccountState:
        """Positions and equity (`account_value` = `account_equity().equity`, so it is right in every mode)."""
        perp, equity = self._read_account()
        return replace(parse_account_state(perp), account_value=equity.equity, mode=equity.mode)

    def approved_agents(self) -> list[dict]:
        """API wallets the master has approved (`extraAgents`): `[{"name", "address", "validUntil"}]`, for a
        preflight check that the configured signer is still approved and not about to expire."""
        rows = self.info.extra_agents(self.account_address)
        if not isinstance(rows, list):
            raise ValueError(f"extraAgents for {self.account_address}: expected a list, got {str(rows)[:200]}")
        return rows

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
    @contextlib.contextmanager
    def _signed(self):
        """The SDK `Exchange` with `expiresAfter` set for the action(s) signed inside (and cleared after, because
        user-signed actions must not carry it)."""
        sdk = self._require_signer()
        with self._expiry_lock:
            if self.expires_after_s is not None:
                sdk.set_expires_after(get_timestamp_ms() + int(self.expires_after_s * 1000))
            try:
                yield sdk
            finally:
                sdk.set_expires_after(None)

    def schedule_cancel(self, at) -> int:
        """Arm the venue's dead-man switch: every open order of the account is cancelled at `at` (epoch ms, or a
        datetime / pd.Timestamp, naive = UTC) unless re-armed later or cleared. The venue wants `at` ≥ its now +
        5 s and lets the switch fire at most 10 times per UTC day. Returns the ms armed; raises
        `ActionRefusedError` with the venue's words when refused."""
        at_ms = _to_epoch_ms(at)
        with self._signed() as sdk:
            resp = sdk.schedule_cancel(at_ms)
        _require_ok(resp, f"scheduleCancel at {at_ms}")
        return at_ms

    def clear_schedule_cancel(self) -> None:
        """Disarm the dead-man switch (a scheduleCancel without a time)."""
        with self._signed() as sdk:
            resp = sdk.schedule_cancel(None)
        _require_ok(resp, "scheduleCancel (clear)")

    def bulk_orders(self, orders: list[OrderRequest]) -> list[OrderOutcome]:
        """Send one signed batch. Never raises for exchange or transport trouble: every order gets an outcome."""
        if not orders:
            return []
        self._require_signer()
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
            with self._signed() as signer:
                resp = signer.bulk_orders(reqs)
        except Exception as err:  # noqa: BLE001 - classified below; nothing escapes unclassified
            kind, msg = _transport_error(err)
            log.warning("order batch of %d: %s (%s)", len(orders), kind, msg)
            return [OrderOutcome(o.cloid, kind, error=msg) for o in orders]
        return classify_order_response(resp, orders)

    def cancel_by_cloid(self, coin: str, cloid: str) -> bool:
        """Cancel a resting order by client id. True if cancelled, False if it was no longer open."""
        with self._signed() as sdk:
            resp = sdk.cancel_by_cloid(coin, Cloid(cloid))
        return _cancel_succeeded(resp, f"cancelByCloid {coin} {cloid}")

    def cancel(self, coin: str, oid: int) -> bool:
        """Cancel a resting order by exchange id (orders placed without a client id, e.g. by hand)."""
        with self._signed() as sdk:
            resp = sdk.cancel(coin, int(oid))
        return _cancel_succeeded(resp, f"cancel {coin} {oid}")

    def update_leverage(self, coin: str, leverage: int, is_cross: bool = True) -> None:
        with self._signed() as sdk:
            resp = sdk.update_leverage(int(leverage), coin, is_cross)
        if not isinstance(resp, dict) or resp.get("status") != "ok":
            raise RuntimeError(f"updateLeverage {coin} x{leverage}: {str(resp)[:200]}")


def _to_epoch_ms(at) -> int:
    if isinstance(at, bool):
        raise TypeError(f"not a time: {at!r}")
    if isinstance(at, int):
        return at
    import pandas as pd  # local: keeps pandas out of this module's import for SDK-only users

    ts = pd.Timestamp(at)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return int(ts.value // 1_000_000)


def _require_ok(resp, what: str) -> None:
    if isinstance(resp, dict) and resp.get("status") == "ok":
        return
    venue = str(resp.get("response")) if isinstance(resp, dict) else str(resp)
    raise ActionRefusedError(f"{what}: refused by the exchange: {venue[:300]}", venue[:300])


def _cancel_succeeded(resp, what: str) -> bool:
    try:
        st = resp["response"]["data"]["statuses"][0]
    except (KeyError, TypeError, IndexError):
        raise RuntimeError(f"{what}: unexpected response {str(resp)[:200]}") from None
    return st == "success"


def fills_for_oids(fills: Iterable[dict], oids: set[int]) -> list[dict]:
    return [f for f in fills if f.get("oid") in oids]
