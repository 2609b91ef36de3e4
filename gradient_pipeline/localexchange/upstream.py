"""`UpstreamMarket`: the `MarketView` contract (see `market.py`) served from a live Hyperliquid info URL (mainnet,
testnet, or another local exchange) instead of recorded files — paper trading on today's market.

What comes from the upstream, and how (every request through `HyperliquidClient`, i.e. the SDK's `API.post`, with
the project's client-side weight limiter; reads only — nothing is ever sent to the upstream's `/exchange`):

- Market-data `/info` requests a client sends to the local exchange (`meta`, `metaAndAssetCtxs`, `candleSnapshot`,
  `l2Book`, `allMids`, `fundingHistory`, `exchangeStatus`, …) are forwarded verbatim and the upstream's answer is
  returned as it came (`forward_info`), cached per request body for `ttl_s` (1 s) to be polite.
- The trading engine's view: universe, `szDecimals`, `maxLeverage`, `isDelisted` from `metaAndAssetCtxs` (one
  request gives every coin's mark, oracle and mid as well; cached `ctx_ttl_s`, 10 s); the book a taker order walks
  is the upstream's real L2 book (`l2Book`, cached `ttl_s`, the same cached answer a client's `l2Book` gets); the
  hourly funding rate paid on a position is the upstream's `fundingHistory` event of that hour.

Clock: the upstream's. `now_ms()` = wall clock UTC + the offset measured from the upstream's `exchangeStatus` time
(re-measured every `clock_sync_s`; ~0 for mainnet/testnet, the replay time when the upstream is a local exchange),
in whole-`quantum_ms` instants (1 s) and never moving backwards. While the account holds positions, the clock
crosses into a new hour only once the upstream has published that hour's funding event for them (at most
`funding_wait_s`, 60 s, later; then it moves on and the missing payment is logged), so no payment is skipped for
having asked a second too early. Within an instant the engine's liquidity ledger
remembers what our own fills took from the book (`matching.Liquidity`); a new instant brings the upstream's fresh
book. The clock cannot be set or advanced, and price shocks are refused (operator endpoints answer 400).

No network inside the engine: the engine calls the accessors below while it changes account state, so a failing
upstream there would leave a half-applied clock move or batch. `prepare(...)` (called by the paper wrapper in
`paper.py` before every engine call) fetches what the call will need — marks, the books of coins with resting or
incoming orders, funding for the hours about to be paid — and raises `UpstreamUnavailable` *before* the engine is
touched. The accessors then read the cache (fetching only something never seen, e.g. an unexpected coin).

Upstream down: requests that need it answer HTTP 500 naming the upstream and the failure (`UpstreamUnavailable`
is a `NotRecorded`, which the app serves that way); nothing crashes, and the next request tries again.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from hyperliquid.api import API
from hyperliquid.utils.constants import MAINNET_API_URL, TESTNET_API_URL

from gradient_pipeline.config import RateLimitConfig
from gradient_pipeline.exchange.hyperliquid.client import HyperliquidClient
from gradient_pipeline.exchange.hyperliquid.errors import ExchangeError, ExchangeRequestError
from gradient_pipeline.localexchange.app import ControlError, NotRecorded
from gradient_pipeline.localexchange.market import BadRequest, CoinMeta
from gradient_pipeline.localexchange.replay import HOUR_MS

log = logging.getLogger(__name__)

NETWORKS = {"mainnet": MAINNET_API_URL, "testnet": TESTNET_API_URL}
CTX_BODY = {"type": "metaAndAssetCtxs"}
STATUS_BODY = {"type": "exchangeStatus"}
FUNDING_PAGE = 500  # fundingHistory returns at most 500 events per request
FUNDING_RETRY_S = 2.0  # while waiting for an hour's funding event, ask the upstream again at most this often
PARALLEL_FETCHES = 8  # books of a batch's coins are fetched side by side (a 40-order batch: ~5 round trips)
# Few, quick retries: every upstream request is made while the local exchange holds its one request lock.
UPSTREAM_RATE_LIMIT = RateLimitConfig(max_retries=1, backoff_base_s=0.2, backoff_max_s=1.0)


class UpstreamUnavailable(NotRecorded):
    """The upstream could not answer (unreachable, timeout, 5xx, rate limited, malformed answer). Served as HTTP 500
    with this message, which names the upstream URL and the failure."""


def resolve_upstream_url(url: str) -> str:
    """`mainnet` / `testnet` or an http(s) URL (a trailing slash is dropped) -> the upstream base URL."""
    url = str(url).strip()
    if url.lower() in NETWORKS:
        return NETWORKS[url.lower()]
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"upstream must be 'mainnet', 'testnet' or an http(s) URL, got {url!r}")
    return url.rstrip("/")


class UpstreamClock:
    """The upstream's time: wall clock + measured offset, in `quantum_ms` instants, monotonic. Not settable."""

    speed = 1.0  # shown by /_local/status and /_local/clock

    def __init__(self, quantum_ms: int = 1000, wall=time.time):
        if quantum_ms < 1:
            raise ValueError(f"clock quantum must be >= 1 ms, got {quantum_ms}")
        self.quantum_ms = int(quantum_ms)
        self._wall = wall
        self.offset_ms = 0
        self._last = 0
        # `hour_gate(hour_ms) -> bool`: may the clock cross into this hour yet? (paper.py holds it until the
        # upstream has published the hour's funding for the coins held, so the payment is not skipped). Must not raise.
        self.hour_gate = None
        self._lock = threading.RLock()  # now_ms is also read outside the app's lock (handle.now_ms, /_local/clock)

    def wall_ms(self) -> int:
        return int(self._wall() * 1000)

    def sync(self, upstream_ms: int, wall_ms: int) -> None:
        """The upstream said `upstream_ms` at (about) local wall time `wall_ms`."""
        self.offset_ms = int(upstream_ms) - int(wall_ms)

    def upstream_ms(self) -> int:
        """The upstream's time now (quantized), ignoring the hour gate."""
        return (self.wall_ms() + self.offset_ms) // self.quantum_ms * self.quantum_ms

    def now_ms(self) -> int:
        with self._lock:
            t = self.upstream_ms()
            hour = t // HOUR_MS * HOUR_MS
            if self._last < hour and self.hour_gate is not None and not self.hour_gate(hour):
                t = max(self._last, hour - 1)  # held just before the hour
            self._last = max(self._last, t)
            return self._last

    def set(self, ms: int, speed: float | None = None) -> int:
        raise ControlError("the clock follows the upstream in upstream (paper) mode; it cannot be set")

    def advance(self, ms: int) -> int:
        raise ControlError("the clock follows the upstream in upstream (paper) mode; it cannot be advanced")


@dataclass
class _Universe:
    coins: list[CoinMeta]
    by_name: dict[str, CoinMeta]
    ctx: dict[str, dict]


def _float(x) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


class UpstreamMarket:
    """`MarketView` backed by an upstream Hyperliquid info URL. See the module docstring.

    Construction reaches the upstream once (its clock and universe) and raises `UpstreamUnavailable` if it cannot.
    """

    def __init__(self, upstream: str, *, ttl_s: float = 1.0, ctx_ttl_s: float = 10.0, clock_sync_s: float = 30.0,
                 timeout_s: float = 5.0, quantum_ms: int = 1000, rate_limit: RateLimitConfig | None = None):
        self.url = resolve_upstream_url(upstream)
        self.ttl_s, self.ctx_ttl_s, self.clock_sync_s = float(ttl_s), float(ctx_ttl_s), float(clock_sync_s)
        self.timeout_s = float(timeout_s)
        self.client = HyperliquidClient(self.url, rate_limit or UPSTREAM_RATE_LIMIT, timeout_s)
        self._transports = threading.local()  # one SDK `API` (one requests session) per fetching thread
        self._pool: ThreadPoolExecutor | None = None
        self.clock = UpstreamClock(quantum_ms)
        self._cache: dict[str, tuple[float, Any]] = {}  # request body (canonical JSON) -> (fetched, monotonic s)
        self._universe_of: tuple[int, _Universe] | None = None  # (id of the parsed answer, parsed)
        self._funding: dict[str, dict[int, float]] = {}  # coin -> hour start ms -> rate
        self._funding_checked: dict[str, int] = {}  # coin -> events after this time not yet fetched
        self._funding_tried: dict[str, float] = {}  # coin -> monotonic time of the last fundingHistory request
        self._refresh(STATUS_BODY, 0.0)
        self._universe()

    # ------------------------------------------------------------------ fetching and caching
    @staticmethod
    def _key(body: dict) -> str:
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    def _transport(self):
        api = getattr(self._transports, "api", None)
        if api is None:
            api = self._transports.api = API(self.url, timeout=self.timeout_s)
        return api.post

    def _fetch(self, body: dict):
        wall_before = self.clock.wall_ms()
        try:
            result = self.client.send("/info", body, self._transport())
        except ExchangeRequestError as err:
            if err.status_code == 422:  # the upstream could not parse it either: the client's request is wrong
                raise BadRequest(str(err)) from err
            raise UpstreamUnavailable(f"upstream {self.url} refused {body.get('type')}: {err}") from err
        except ExchangeError as err:
            raise UpstreamUnavailable(f"upstream {self.url} unavailable: {err}") from err
        if body.get("type") == "exchangeStatus" and isinstance(result, dict) and isinstance(result.get("time"), int):
            self.clock.sync(result["time"], (wall_before + self.clock.wall_ms()) // 2)
        return result

    def _refresh(self, body: dict, ttl_s: float):
        """The cached answer to `body` if younger than `ttl_s`, else a fresh one from the upstream."""
        key = self._key(body)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[1] < ttl_s:
            return hit[0]
        result = self._fetch(body)
        self._cache[key] = (result, now)
        if len(self._cache) > 512:  # forwarded candle/funding queries have many distinct bodies
            horizon = max(self.ttl_s, self.ctx_ttl_s, self.clock_sync_s)
            self._cache = {k: v for k, v in self._cache.items() if now - v[1] < horizon}
        return result

    def _refresh_many(self, bodies: list[dict], ttl_s: float) -> None:
        """`_refresh` for several bodies, the stale ones fetched in parallel (weight still charged to the limiter)."""
        now = time.monotonic()
        stale = [b for b in bodies if (hit := self._cache.get(self._key(b))) is None or now - hit[1] >= ttl_s]
        if len(stale) <= 1:
            for body in stale:
                self._refresh(body, ttl_s)
            return

        def attempt(body):
            try:
                return self._fetch(body), None
            except Exception as err:  # noqa: BLE001 - re-raised below, after the successes are kept
                return None, err

        if self._pool is None:  # kept: its threads keep their HTTP sessions (no new TLS handshake per fetch)
            self._pool = ThreadPoolExecutor(PARALLEL_FETCHES, thread_name_prefix="upstream")
        outcomes = list(self._pool.map(attempt, stale))
        for body, (result, err) in zip(stale, outcomes):
            if err is None:
                self._cache[self._key(body)] = (result, now)
        errors = [err for _, err in outcomes if err is not None]
        if errors:
            raise errors[0]

    def _cached(self, body: dict):
        """Whatever answer is cached (any age), else a fresh one: what the engine reads mid-call."""
        hit = self._cache.get(self._key(body))
        return hit[0] if hit is not None else self._refresh(body, 0.0)

    def forward_info(self, body: dict):
        """A client's market-data /info request, answered with the upstream's own answer (cached `ttl_s`)."""
        return self._refresh(body, self.clock_sync_s if body.get("type") == "exchangeStatus" else self.ttl_s)

    def prepare(self, *, marks: bool = False, books=(), funding=(), funding_since_ms: int | None = None) -> None:
        """Fetch (or refresh if stale) what an engine call is about to read; raises `UpstreamUnavailable` first."""
        self._refresh(STATUS_BODY, self.clock_sync_s)
        books, funding = sorted(set(books)), sorted(set(funding))
        if marks or books or funding:
            self._refresh(CTX_BODY, self.ctx_ttl_s)
        self._refresh_many([{"type": "l2Book", "coin": coin} for coin in books], self.ttl_s)
        if funding_since_ms is not None:
            for coin in funding:
                self._fetch_funding(coin, funding_since_ms)

    def _fetch_funding(self, coin: str, since_ms: int) -> None:
        """Funding events of `coin` from `since_ms` up to the upstream's now (only those not fetched before)."""
        start = max(int(since_ms), self._funding_checked.get(coin, 0))
        now = self.clock.upstream_ms()  # not now_ms(): that may be held before the very hour asked about
        rates = self._funding.setdefault(coin, {})
        self._funding_tried[coin] = time.monotonic()
        while start <= now:
            page = self._fetch({"type": "fundingHistory", "coin": coin, "startTime": start})  # up to ITS now
            if not isinstance(page, list):
                raise UpstreamUnavailable(f"upstream {self.url}: fundingHistory for {coin} is not a list: {page!r}")
            for item in page:
                t, rate = item.get("time"), _float(item.get("fundingRate"))
                if isinstance(t, int) and rate is not None:
                    rates[t // HOUR_MS * HOUR_MS] = rate
                    start = max(start, t + 1)
            if len(page) < FUNDING_PAGE:
                break
        # Hours after the last event seen are asked again next time (the upstream may publish them late).
        self._funding_checked[coin] = start

    def funding_missing(self, coins, since_ms: int, hour_ms: int) -> list[str]:
        """Of `coins`, those with no upstream funding event yet for the hour starting `hour_ms` (events from
        `since_ms` on are fetched; a coin still missing is asked again at most every FUNDING_RETRY_S)."""
        missing = []
        for coin in sorted(set(coins)):
            if hour_ms in self._funding.get(coin, {}):
                continue
            if time.monotonic() - self._funding_tried.get(coin, -math.inf) >= FUNDING_RETRY_S:
                self._fetch_funding(coin, since_ms)
            if hour_ms not in self._funding.get(coin, {}):
                missing.append(coin)
        return missing

    def close(self) -> None:
        """Stop the fetching threads (the market still works afterwards; a new pool starts on demand)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    # ------------------------------------------------------------------ universe and prices
    def _universe(self) -> _Universe:
        raw = self._cached(CTX_BODY)
        if self._universe_of is not None and self._universe_of[0] == id(raw):
            return self._universe_of[1]
        try:
            meta, ctxs = raw
            coins = [CoinMeta(u["name"], i, int(u["szDecimals"]), int(u["maxLeverage"]), bool(u.get("isDelisted")))
                     for i, u in enumerate(meta["universe"])]
        except (TypeError, ValueError, KeyError) as err:
            raise UpstreamUnavailable(f"upstream {self.url}: metaAndAssetCtxs is not a Hyperliquid perp answer "
                                      f"({type(err).__name__}: {err})") from err
        parsed = _Universe(coins, {c.name: c for c in coins},
                           {c.name: ctx for c, ctx in zip(coins, ctxs) if isinstance(ctx, dict)})
        self._universe_of = (id(raw), parsed)
        return parsed

    def now_ms(self) -> int:
        return self.clock.now_ms()

    def coins(self) -> list[CoinMeta]:
        return list(self._universe().coins)

    def coin(self, name: str) -> CoinMeta | None:
        return self._universe().by_name.get(name)

    def coin_by_asset(self, i: int) -> CoinMeta | None:
        coins = self._universe().coins
        return coins[i] if isinstance(i, int) and 0 <= i < len(coins) else None

    def _ctx(self, coin: str, field: str) -> float | None:
        ctx = self._universe().ctx.get(coin)
        return _float(ctx.get(field)) if ctx else None

    def mid(self, coin: str) -> float | None:
        meta = self.coin(coin)
        return None if meta is None or meta.is_delisted else self._ctx(coin, "midPx")

    def mark(self, coin: str) -> float | None:
        return self._ctx(coin, "markPx")

    def oracle(self, coin: str) -> float | None:
        return self._ctx(coin, "oraclePx")

    def current_funding(self, coin: str) -> float | None:
        return self._ctx(coin, "funding")

    def book(self, coin: str) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        if self.coin(coin) is None:
            return [], []
        raw = self._cached({"type": "l2Book", "coin": coin})
        if not isinstance(raw, dict):
            return [], []
        try:
            bids, asks = raw["levels"]
            return ([(float(lv["px"]), float(lv["sz"])) for lv in bids],
                    [(float(lv["px"]), float(lv["sz"])) for lv in asks])
        except (TypeError, ValueError, KeyError) as err:
            raise UpstreamUnavailable(f"upstream {self.url}: l2Book for {coin} is malformed ({err})") from err

    def funding_rate(self, coin: str, hour_ms: int) -> float | None:
        if self.coin(coin) is None:
            return None
        if coin not in self._funding:  # not prepared (unexpected): fetch, but never fail inside an engine call
            try:
                self._fetch_funding(coin, hour_ms)
            except UpstreamUnavailable as err:
                log.warning("funding for %s at %d not available: %s", coin, hour_ms, err)
                return None
        rate = self._funding.get(coin, {}).get(hour_ms // HOUR_MS * HOUR_MS)
        if rate is None:
            log.warning("upstream %s has no funding event for %s in the hour starting %d; none paid",
                        self.url, coin, hour_ms)
        return rate

    def shock(self, factor: float, coin: str | None = None) -> None:
        raise ValueError("price shocks are not available when the market comes from an upstream")
