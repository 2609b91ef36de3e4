"""The Hyperliquid trading client: account reads with the master address and signed order actions, through
`hyperliquid-python-sdk` (`Exchange` for signed actions, its `Info` for account reads) with a configurable base
URL, so paper (local exchange), testnet and mainnet share this code. Implements `venue.ExecutionVenue`.

Payloads are parsed in `payloads.py`, instrument rules live in `rounding.py`, and `factory.py` builds the client
from the configuration and the environment.

Secrets: the API-wallet key comes only from `GRADIENT_PRIVATE_KEY` and is held inside the SDK's `LocalAccount`;
this module never formats it into a message, a log line or a repr.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import replace

from eth_account.signers.local import LocalAccount
from hyperliquid.exchange import Exchange
from hyperliquid.utils.signing import get_timestamp_ms
from hyperliquid.utils.types import Cloid

from gradient_pipeline.config import MAINNET_API_URL
from gradient_pipeline.exchange.hyperliquid.client import HyperliquidClient
from gradient_pipeline.exchange.hyperliquid.errors import ExchangeRequestError
from gradient_pipeline.exchange.hyperliquid.payloads import (
    SPOT_COLLATERAL_MODES,
    STANDARD_MODES,
    cancel_succeeded,
    classify_order_response,
    equity_from_states,
    parse_funding,
    outcome,
    parse_account_state,
    parse_fill,
    parse_open_order,
    parse_order_status,
    require_ok,
    transport_error,
)
from gradient_pipeline.exchange.hyperliquid.rounding import HyperliquidInstrument, instruments_from_meta
from gradient_pipeline.venue.errors import TradingConfigError
from gradient_pipeline.venue.model import (
    FundingPayment,
    AccountEquity,
    AccountState,
    Fill,
    OpenOrder,
    OrderLookup,
    OrderOutcome,
    OrderRequest,
)

log = logging.getLogger(__name__)

DEFAULT_EXPIRES_AFTER_S = 30.0  # a signed order/cancel that has not landed within this is refused by the venue


FUNDING_PAGE = 500  # rows per `userFunding` answer (the venue's cap)


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
        self._instruments = instruments_from_meta(self.meta)
        self.sz_decimals = {c: i.sz_decimals for c, i in self._instruments.items()}  # Hyperliquid's own lot rule
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

    def instruments(self) -> dict[str, HyperliquidInstrument]:
        """Every perp's rules (lot size, price precision, $10 minimum, max leverage, delisting) from `meta`."""
        return self._instruments

    def open_orders(self) -> list[OpenOrder]:
        return [parse_open_order(o) for o in self.info.open_orders(self.account_address)]

    def fills_since(self, start_ms: int | None = None) -> list[Fill]:
        """The account's fills (`userFills`: the newest 2000; `userFillsByTime` from `start_ms`), oldest first."""
        if start_ms is None:
            rows = self.info.user_fills(self.account_address)
        else:
            rows = self.info.user_fills_by_time(self.account_address, int(start_ms))
        return sorted((parse_fill(r) for r in rows), key=lambda f: (f.time_ms, f.tid))

    def funding_payments(self, start_ms: int, end_ms: int | None = None) -> list[FundingPayment]:
        """Every funding payment from `start_ms` (inclusive) to `end_ms` (None: now), oldest first. `userFunding`
        answers one page of at most FUNDING_PAGE rows, and several coins share each funding hour, so a full page's
        last hour is dropped and asked for again as the next page's start."""
        out: list[FundingPayment] = []
        start = int(start_ms)
        end = None if end_ms is None else int(end_ms)
        while end is None or start <= end:
            page = self.info.user_funding_history(self.account_address, start, end)
            if not isinstance(page, list):
                raise ValueError(f"userFunding for {self.account_address}: expected a list, got {str(page)[:200]}")
            rows = [(int(r["time"]), parse_funding(r)) for r in page if isinstance(r, dict) and "time" in r]
            if len(page) < FUNDING_PAGE:
                out += [p for _, p in rows if p]
                break
            last = max(t for t, _ in rows)
            if last == start:  # a whole page of one instant: take it and step past it
                out += [p for _, p in rows if p]
                start = last + 1
                continue
            out += [p for t, p in rows if p and t < last]
            start = last
        return sorted(out, key=lambda p: (p.time_ms, p.coin))

    def funding_usd(self, start_ms: int, end_ms: int) -> float:
        """Funding received (+) or paid (−) between two times (`userFunding`, every page)."""
        return sum(p.usdc for p in self.funding_payments(start_ms, end_ms))

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
        require_ok(resp, f"scheduleCancel at {at_ms}")
        return at_ms

    def clear_schedule_cancel(self) -> None:
        """Disarm the dead-man switch (a scheduleCancel without a time)."""
        with self._signed() as sdk:
            resp = sdk.schedule_cancel(None)
        require_ok(resp, "scheduleCancel (clear)")

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
            kind, msg = transport_error(err)
            log.warning("order batch of %d: %s (%s)", len(orders), kind, msg)
            return [outcome(o.cloid, kind, error=msg) for o in orders]
        return classify_order_response(resp, orders)

    def cancel_by_cloid(self, coin: str, cloid: str) -> bool:
        """Cancel a resting order by client id. True if cancelled, False if it was no longer open."""
        with self._signed() as sdk:
            resp = sdk.cancel_by_cloid(coin, Cloid(cloid))
        return cancel_succeeded(resp, f"cancelByCloid {coin} {cloid}")

    def cancel(self, coin: str, oid: int) -> bool:
        """Cancel a resting order by exchange id (orders placed without a client id, e.g. by hand)."""
        with self._signed() as sdk:
            resp = sdk.cancel(coin, int(oid))
        return cancel_succeeded(resp, f"cancel {coin} {oid}")

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
