"""`HyperliquidClient`: the shared plumbing every exchange call goes through.

One client per process (or per run) owns:
- the base URL and the per-request timeout (the SDK's default is "wait forever");
- the `WeightLimiter` that spends the IP budget (charge base weight before, item extra after each response);
- the retry policy: 429 is always retried with capped exponential back-off and jitter; timeouts, connection
  errors and 5xx are retried for `/info` reads only (a write may have executed; see `errors.py`);
- the SDK `Info` object, built once from a `meta` fetched first (the SDK freezes its name→asset maps at
  construction) with an empty spot meta (a perp-only bot never needs the spot universe, whose parsing has crashed
  the SDK before).

All HTTP goes through SDK objects whose `post` is routed through `HyperliquidClient.send` by `LimitedPostMixin`,
so `Info` methods (and an `Exchange` built with `build_exchange`) are limited and retried like `info_post`.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from hyperliquid.api import API
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info

from gradient_pipeline.config import GradientConfig, RateLimitConfig
from gradient_pipeline.exchange.hyperliquid import wire
from gradient_pipeline.exchange.hyperliquid.errors import (
    ErrorKind,
    ExchangeRequestError,
    ExchangeUnavailableError,
    RateLimitedError,
    classify,
    describe_failure,
    describe_request,
    retry_after_s,
)
from gradient_pipeline.exchange.hyperliquid.ratelimit import (
    LEDGER_ENV_VAR,
    LEDGER_FILE_NAME,
    SharedWeightLedger,
    WeightLimiter,
    backoff_delay,
    ledger_host,
)
from gradient_pipeline.timegrid import now_utc

log = logging.getLogger(__name__)

EMPTY_SPOT_META = {"universe": [], "tokens": []}


def shared_ledger_path(cfg: GradientConfig) -> Path | None:
    """Where every process of this deployment keeps the one per-IP budget (None if `rate_limit.shared_ledger` is off).

    `$GRADIENT_RATE_LEDGER`, else `rate_limit.ledger_path`, else `exchange_rate.sqlite` beside the DuckDB file
    (`$GRADIENT_DUCKDB_PATH` or `duckdb_path`): the data directory every process of one deployment shares.
    """
    if not cfg.rate_limit.shared_ledger:
        return None
    explicit = os.environ.get(LEDGER_ENV_VAR) or cfg.rate_limit.ledger_path
    if explicit:
        return Path(explicit).expanduser()
    duck = os.environ.get("GRADIENT_DUCKDB_PATH") or str(cfg.resolved_duckdb_path)
    return Path(duck).expanduser().parent / LEDGER_FILE_NAME


class LimitedPostMixin:
    """Mix into an SDK `API` subclass (`Info`, `Exchange`) so every `post` goes through a `HyperliquidClient`.

    Usage: `class LimitedExchange(LimitedPostMixin, Exchange): ...`, then set `obj._gp_client = client`
    right after construction (construction itself must make no HTTP call: pass `meta` and `spot_meta`).
    """

    _gp_client: "HyperliquidClient | None" = None

    def post(self, url_path: str, payload: Any = None) -> Any:
        transport = super().post  # the SDK's own HTTP call (requests session, timeout, error mapping)
        if self._gp_client is None:
            raise RuntimeError(f"{type(self).__name__} used before being attached to a HyperliquidClient")
        return self._gp_client.send(url_path, payload or {}, transport)


class LimitedInfo(LimitedPostMixin, Info):
    """SDK `Info` whose requests are rate-limited and retried by the owning `HyperliquidClient`."""


class LimitedExchange(LimitedPostMixin, Exchange):
    """SDK `Exchange` whose requests are rate-limited (429 retried; never re-sent after a timeout/5xx)."""


class HyperliquidClient:
    """Rate-limited, retrying access to one Hyperliquid-compatible REST endpoint (mainnet, testnet or local).

    Args:
        base_url: e.g. `https://api.hyperliquid.xyz` or `http://127.0.0.1:8731` (no trailing slash).
        rate_limit: weights, budget and retry settings (`GradientConfig.rate_limit`).
        timeout_s: per-request timeout in seconds, applied to every HTTP call.

    Public surface: `info_post(body)`, `meta()`, `info()`, `server_time()`, `limiter` (its `stats()`),
    `send(url_path, body, transport)` and `build_exchange(wallet, …)` for the trading half.
    """

    def __init__(
        self,
        base_url: str,
        rate_limit: RateLimitConfig,
        timeout_s: float,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        ledger_path: str | os.PathLike | None = None,
    ):
        if not base_url.startswith(("http://", "https://")) or base_url.endswith("/"):
            raise ValueError(f"base_url must be an http(s) URL without a trailing slash, got {base_url!r}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s!r}")
        self.base_url = base_url
        self.rate_limit = rate_limit
        self.timeout_s = float(timeout_s)
        # ledger_path: the machine-wide budget file (see ratelimit.py); None = this process's own budget.
        ledger = SharedWeightLedger(ledger_path, ledger_host(base_url)) if ledger_path else None
        self.limiter = WeightLimiter(rate_limit, sleep=sleep, ledger=ledger)
        self._sleep = sleep
        self._rand = rand
        self._transport = API(base_url, timeout=self.timeout_s)  # plain SDK transport for raw /info bodies
        self._lock = threading.Lock()
        self._meta: dict | None = None
        self._info: LimitedInfo | None = None

    @classmethod
    def from_config(cls, cfg: GradientConfig) -> "HyperliquidClient":
        """Client for the network the configuration's mode implies (`cfg.base_url`) with its rate-limit settings
        and the machine-wide budget ledger (`shared_ledger_path(cfg)`)."""
        return cls(cfg.base_url, cfg.rate_limit, cfg.rate_limit.request_timeout_s, ledger_path=shared_ledger_path(cfg))

    def __repr__(self) -> str:
        return f"HyperliquidClient({self.base_url!r}, timeout_s={self.timeout_s})"

    # ---- the one request path ------------------------------------------------------------------------------

    def send(self, url_path: str, body: dict, transport: Callable[[str, Any], Any]) -> Any:
        """POST `body` to `url_path` via `transport` (an SDK `API.post`), limited and retried.

        Reads (`/info`) are retried on 429, timeouts, connection errors and 5xx; writes (`/exchange`) only on 429
        (the exchange refused them unprocessed). Raises `RateLimitedError`, `ExchangeUnavailableError`
        (`may_have_executed=True` for writes) or `ExchangeRequestError`, each naming the request.
        """
        is_read = url_path == "/info"
        weight = self.limiter.base_weight(url_path, body)
        attempt = 0
        while True:
            self.limiter.acquire(weight)
            try:
                response = transport(url_path, body)
            except Exception as exc:  # noqa: BLE001 - classified below; unknown kinds re-raised unchanged
                kind = classify(exc)
                if kind is ErrorKind.OTHER:
                    raise
                if kind is ErrorKind.RATE_LIMITED:
                    self.limiter.record_429()
                retryable = kind is ErrorKind.RATE_LIMITED or (kind is ErrorKind.TRANSIENT and is_read)
                if not retryable or attempt >= self.rate_limit.max_retries:
                    raise self._final_error(kind, url_path, body, exc, attempt) from exc
                delay = backoff_delay(attempt, self.rate_limit, self._rand)
                if kind is ErrorKind.RATE_LIMITED:
                    delay = max(delay, min(retry_after_s(exc) or 0.0, self.rate_limit.backoff_max_s))
                log.warning(
                    "%s failed (%s); retry %d/%d in %.2fs",
                    describe_request(url_path, body), describe_failure(exc), attempt + 1,
                    self.rate_limit.max_retries, delay,
                )
                self.limiter.record_retry(delay)
                self._sleep(delay)
                attempt += 1
                continue
            self.limiter.charge(self.limiter.extra_weight(url_path, body, response))
            return response

    def _final_error(self, kind: ErrorKind, url_path: str, body: Any, exc: BaseException, attempt: int) -> Exception:
        what = f"{describe_request(url_path, body)} at {self.base_url}"
        tries = f"after {attempt + 1} attempt(s)"
        if kind is ErrorKind.RATE_LIMITED:
            return RateLimitedError(f"{what}: rate limited (HTTP 429) {tries}; lower the request rate or budget")
        if kind is ErrorKind.TRANSIENT:
            if url_path == "/info":
                return ExchangeUnavailableError(f"{what}: {describe_failure(exc)} {tries}")
            return ExchangeUnavailableError(
                f"{what}: {describe_failure(exc)}; not retried because the action may have executed "
                "(check its status before re-sending)",
                may_have_executed=True,
            )
        status = getattr(exc, "status_code", None)
        return ExchangeRequestError(f"{what}: rejected, {describe_failure(exc)}", status_code=status)

    # ---- reads ---------------------------------------------------------------------------------------------

    def info_post(self, body: dict) -> Any:
        """POST a raw `/info` body (e.g. `{"type": "exchangeStatus"}`); limited and retried; returns parsed JSON."""
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            raise ValueError(f"an /info body must be a dict with a string 'type', got {body!r}")
        return self.send("/info", body, self._transport.post)

    def meta(self, refresh: bool = False) -> dict:
        """The perp `meta` (`{"universe": [...], ...}`), fetched once and cached; `refresh=True` refetches it.

        Refreshing also drops the cached `Info`, whose name maps are built from this meta.
        """
        with self._lock:
            if self._meta is not None and not refresh:
                return self._meta
        meta = self.info_post({"type": "meta"})
        wire.parse_universe(meta)  # validate the shape once, here, with a clear error
        with self._lock:
            self._meta = meta
            self._info = None
        return meta

    def info(self) -> Info:
        """SDK `Info` built with this client's meta (no websocket, empty spot meta, timeout); cached.

        Every request it makes goes through `send` (limited, retried). Call `meta(refresh=True)` to rebuild it
        after a listing change.
        """
        meta = self.meta()
        with self._lock:
            if self._info is None:
                info = LimitedInfo(
                    self.base_url, skip_ws=True, meta=meta, spot_meta=EMPTY_SPOT_META, timeout=self.timeout_s
                )
                info._gp_client = self
                self._info = info
            return self._info

    def server_time(self) -> pd.Timestamp:
        """The exchange's current time (naive UTC) from `{"type": "exchangeStatus"}` (weight 2).

        The local exchange answers with its replay clock, so "now" follows the replay; if the response has no
        `time` field this falls back to the local wall clock (logged).
        """
        ts = wire.parse_server_time(self.info_post({"type": "exchangeStatus"}))
        if ts is None:
            log.warning("exchangeStatus at %s has no 'time'; using the local clock", self.base_url)
            return now_utc()
        return ts

    # ---- writes (for the trading half) ------------------------------------------------------------------------

    def build_exchange(
        self,
        wallet: Any,
        *,
        account_address: str | None = None,
        vault_address: str | None = None,
        timeout_s: float | None = None,
    ) -> Exchange:
        """SDK `Exchange` for `wallet` (an eth_account `LocalAccount`), limited by this client's budget.

        Built from this client's meta (no construction-time HTTP), with its inner `info` replaced by `info()` so
        the SDK's helper reads (`market_open`'s `allMids`, …) are limited too. Writes are retried on 429 only.
        """
        ex = LimitedExchange(
            wallet,
            self.base_url,
            meta=self.meta(),
            vault_address=vault_address,
            account_address=account_address,
            spot_meta=EMPTY_SPOT_META,
            timeout=self.timeout_s if timeout_s is None else float(timeout_s),
        )
        ex._gp_client = self
        ex.info = self.info()
        return ex
