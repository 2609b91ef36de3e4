"""The local exchange's HTTP surface (starlette).

Hyperliquid API (same paths and wire format as `https://api.hyperliquid.xyz`):
- `POST /info`     market types answered from `MarketView`: `meta`, `metaAndAssetCtxs`, `candleSnapshot`,
                   `fundingHistory`, `allMids`, `l2Book`, `exchangeStatus` (`{"time": <replay now ms>, ...}`, the
                   project's exchange clock), `spotMeta`, `spotMetaAndAssetCtxs`, `perpDexs`; account types
                   (`TradingEngine.ACCOUNT_INFO_TYPES`) go to the trading engine. Anything else → HTTP 422
                   `Failed to deserialize the JSON body into the target type`.
- `POST /exchange` signed actions, handled by `TradingEngine.handle_exchange`; without `engine.py`
                   `{"status":"err","response":"trading not available"}`.
Both are weighted and rate limited per client IP (`ratelimit.py`) and subject to injected faults (`faults.py`).

Operator surface (not Hyperliquid; never rate limited or faulted), JSON in and out, errors as HTTP 400
`{"error": "..."}`:
- `GET  /_local/status`                 now, speed, coins, rate budget, trading available, pending faults
- `GET  /_local/clock`                  `{"now_ms", "now", "speed"}`
- `POST /_local/clock`                  `{"time": ms | "2025-05-01 00:00", "speed"?: float}` set the replay clock
- `POST /_local/clock/advance`          `{"ms" | "seconds" | "hours": number}` move it forward
- `GET|POST|DELETE /_local/faults`      list / inject `{"kind", "count"?, "endpoint"?, "info_type"?,
                                        "action_type"?, "hang_seconds"?}` / clear
- `POST /_local/price_shock`            `{"factor": 0.7, "coin"?: "BTC"}` (all coins when coin is omitted)
- `POST /_local/book_depth`             `{"factor": 0.01, "coin"?: "BTC"}` thin (or restore, factor 1) the book
                                        depth: a normal order then fills partially
- `POST /_local/fund`                   `{"address": "0x..", "usdc": 10000, "mode"?: "standard" | "unified-account"
                                        | "portfolio-margin"}` (mode = the account's `userAbstraction`)
- `POST /_local/agents`                 `{"agent": "0x..", "master": "0x.."}`
- `POST /_local/builders`               `{"master": "0x..", "builder": "0x..", "max_fee_rate": "0.01%"}`
- `GET  /_local/venue_clock`            `{"now_ms", "offset_ms", "source"}`: the clock nonces, expiresAfter and
                                        scheduleCancel use (`venue_clock.py`; wall clock + operator offset)
- `POST /_local/venue_clock/advance`    `{"ms" | "seconds": number}` move it forward (fires due scheduleCancels)
- `POST /_local/rate_limit/reset`       refill every client's budget

Trading engine contract (`engine.py`, the trading half): `TradingEngine(market: MarketView, config: dict)` with
`ACCOUNT_INFO_TYPES: set[str]`, `handle_info(body) -> JSON-able`, `handle_exchange(body) -> JSON-able`,
`on_clock(now_ms)`, `fund(address, usdc)`, `approve_agent(agent, master)`. `config` is the free-form
`engine_config` given to `run_in_background`/the CLI; accounts and agents are applied afterwards through `fund`
and `approve_agent`. Every call into the engine and the market happens under one lock, one request at a time.
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
from datetime import timedelta

import pandas as pd
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from gradient_pipeline import timegrid
from gradient_pipeline.localexchange.faults import FaultInjector, failure_response
from gradient_pipeline.localexchange.market import BadRequest, BookConfig, MarketView
from gradient_pipeline.localexchange.ratelimit import (
    DEFAULT_BUDGET_PER_MINUTE,
    WeightLimiter,
    exchange_weight,
    info_base_weight,
    info_extra_weight,
)
from gradient_pipeline.localexchange.replay import HOUR_MS, INTERVAL_MS, RecordedData, ReplayClock

log = logging.getLogger(__name__)

DESERIALIZE_ERROR = "Failed to deserialize the JSON body into the target type"
TRADING_UNAVAILABLE = {"status": "err", "response": "trading not available"}
# Intervals the real API accepts; only those in INTERVAL_MS are in the recorded data.
API_INTERVALS = {"1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "8h", "12h", "1d", "3d", "1w", "1M"}
MARKET_INFO_TYPES = {"meta", "metaAndAssetCtxs", "candleSnapshot", "fundingHistory", "allMids", "l2Book",
                     "exchangeStatus", "spotMeta", "spotMetaAndAssetCtxs", "perpDexs"}


class ControlError(ValueError):
    """An operator request under /_local is invalid (→ HTTP 400 with the reason)."""


def to_replay_ms(value) -> int:
    """Epoch ms (int) or anything `pd.Timestamp` understands (naive = UTC) -> epoch ms."""
    if isinstance(value, bool):
        raise ControlError(f"not a time: {value!r}")
    if isinstance(value, (int, float)):
        return int(value)
    try:
        return timegrid.to_ms(value)
    except (ValueError, TypeError) as err:
        raise ControlError(f"not a time: {value!r} ({err})") from err


def load_engine_class():
    """`engine.TradingEngine`, or None while the trading half does not exist. Errors inside it are not hidden."""
    try:
        module = importlib.import_module("gradient_pipeline.localexchange.engine")
    except ModuleNotFoundError as err:
        if err.name == "gradient_pipeline.localexchange.engine":
            return None
        raise
    return getattr(module, "TradingEngine", None)


class LocalExchange:
    """State of one local exchange: recorded data, replay clock, market view, trading engine, limiter, faults."""

    def __init__(self, data_dir, start_time, *, speed: float = 0.0, coins: list[str] | None = None,
                 rate_limit_per_minute: float = DEFAULT_BUDGET_PER_MINUTE, book: BookConfig | None = None,
                 candle_history_limit: int | None = None, accounts: dict[str, float | dict] | None = None,
                 agents: dict[str, str] | None = None, engine_config: dict | None = None, market=None):
        self.lock = threading.RLock()
        if market is not None:  # upstream paper mode (upstream.py): live market data and the upstream's clock
            self.market, self.clock = market, market.clock
        else:
            self.clock = ReplayClock(to_replay_ms(start_time), speed)
            kwargs = {} if candle_history_limit is None else {"candle_history_limit": candle_history_limit}
            self.market = MarketView(RecordedData(data_dir, coins), self.clock, book, **kwargs)
        self.limiter = WeightLimiter(rate_limit_per_minute)
        self.faults = FaultInjector()
        engine_cls = load_engine_class()
        self.engine = engine_cls(self.market, dict(engine_config or {})) if engine_cls else None
        self._notified_ms: int | None = None
        for address, spec in (accounts or {}).items():
            usdc, mode = account_spec(spec, address)
            self.fund(address, usdc, mode)
        for agent, master in (agents or {}).items():
            self.approve_agent(agent, master)
        self._notify_clock()

    # ------------------------------------------------------------ operator actions (thread-safe)
    def _notify_clock(self) -> None:
        now = self.clock.now_ms()
        if now != self._notified_ms:
            self._notified_ms = now
            if self.engine is not None:
                self.engine.on_clock(now)

    def now_ms(self) -> int:
        return self.clock.now_ms()

    def set_time(self, value, speed: float | None = None) -> int:
        with self.lock:
            self.clock.set(to_replay_ms(value), speed)
            self._notify_clock()
            return self.clock.now_ms()

    def advance(self, ms: int) -> int:
        with self.lock:
            self.clock.advance(int(ms))
            self._notify_clock()
            return self.clock.now_ms()

    def price_shock(self, factor: float, coin: str | None = None) -> None:
        with self.lock:
            self.market.shock(factor, coin)

    def thin_book(self, factor: float, coin: str | None = None) -> None:
        with self.lock:
            self.market.thin_book(factor, coin)

    def clear_shocks(self) -> None:
        with self.lock:
            self.market.clear_shocks()

    def _require_engine(self):
        if self.engine is None:
            raise ControlError("trading not available (gradient_pipeline/localexchange/engine.py is missing)")
        return self.engine

    def fund(self, address: str, usdc: float, mode: str | None = None) -> None:
        with self.lock:
            self._require_engine().fund(address, float(usdc), mode)

    def approve_builder(self, master: str, builder: str, max_fee_rate: str) -> None:
        with self.lock:
            self._require_engine().approve_builder(master, builder, max_fee_rate)

    def venue_clock(self) -> dict:
        with self.lock:
            venue = self._require_engine().venue
            return {"now_ms": venue.now_ms(), "offset_ms": venue.offset_ms, "source": venue.source}

    def advance_venue_clock(self, ms: int) -> int:
        with self.lock:
            return self._require_engine().advance_venue_clock(int(ms))

    def approve_agent(self, agent: str, master: str) -> None:
        with self.lock:
            self._require_engine().approve_agent(agent, master)

    def status(self) -> dict:
        with self.lock:
            now = self.clock.now_ms()
            coins = self.market.coins()
            return {"now_ms": now, "now": str(timegrid.from_ms(now)), "speed": self.clock.speed,
                    "coins_listed": len(coins), "coins_delisted": sum(c.is_delisted for c in coins),
                    "rate_limit_per_minute": self.limiter.budget, "trading_available": self.engine is not None,
                    "faults": self.faults.pending()}

    # ------------------------------------------------------------ API handlers (called under the lock)
    def handle_info(self, body: dict):
        if hasattr(self.market, "forward_info"):  # upstream paper mode: the upstream's own answer, verbatim
            return self.market.forward_info(body)
        t = body["type"]
        m = self.market
        if t == "exchangeStatus":
            return {"time": m.now_ms(), "specialStatuses": None}
        if t == "meta":
            return m.meta()
        if t == "metaAndAssetCtxs":
            return m.meta_and_asset_ctxs()
        if t == "allMids":
            return m.all_mids()
        if t in ("spotMeta",):
            return {"universe": [], "tokens": []}
        if t == "spotMetaAndAssetCtxs":
            return [{"universe": [], "tokens": []}, []]
        if t == "perpDexs":
            return [None]
        if t == "l2Book":
            return m.l2_book(_str(body, "coin"))
        if t == "candleSnapshot":
            req = body.get("req")
            if not isinstance(req, dict):
                raise BadRequest("candleSnapshot needs a 'req' object")
            interval = _str(req, "interval")
            if interval not in API_INTERVALS:
                raise BadRequest(f"unknown interval {interval!r}")
            start = _int(req, "startTime")
            end = _int(req, "endTime", default=m.now_ms())
            if interval not in INTERVAL_MS:
                raise NotRecorded(f"interval {interval} is not in the recorded data (have {', '.join(INTERVAL_MS)})")
            return m.candle_snapshot(_str(req, "coin"), interval, start, end)
        if t == "fundingHistory":
            return m.funding_history(_str(body, "coin"), _int(body, "startTime"), _int(body, "endTime", default=None))
        raise AssertionError(t)


def account_spec(spec, address: str) -> tuple[float, str | None]:
    """An `accounts` entry: a number of USDC, or `{"usdc": n, "mode": "standard" | "unified-account" |
    "portfolio-margin"}` -> (usdc, mode or None)."""
    if isinstance(spec, dict):
        unknown = set(spec) - {"usdc", "mode"}
        if unknown or "usdc" not in spec:
            raise ValueError(f"accounts[{address!r}]: expected {{'usdc': number, 'mode'?: str}}, got {spec!r}")
        usdc, mode = spec["usdc"], spec.get("mode")
        if mode is not None and not isinstance(mode, str):
            raise ValueError(f"accounts[{address!r}].mode must be a string, got {mode!r}")
    else:
        usdc, mode = spec, None
    if isinstance(usdc, bool) or not isinstance(usdc, (int, float)) or usdc < 0:
        raise ValueError(f"accounts[{address!r}] must be a non-negative number of USDC, got {usdc!r}")
    return float(usdc), mode


class NotRecorded(Exception):
    """A valid request the recordings cannot answer (→ HTTP 500 with the reason)."""


def _str(d: dict, key: str) -> str:
    v = d.get(key)
    if not isinstance(v, str):
        raise BadRequest(f"{key} must be a string")
    return v


_MISSING = object()


def _int(d: dict, key: str, default=_MISSING):
    v = d.get(key)
    if v is None and default is not _MISSING:
        return default
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise BadRequest(f"{key} must be a non-negative integer")
    return v


def _json(obj, status: int = 200) -> Response:
    return Response(json.dumps(obj, separators=(",", ":")), status_code=status, media_type="application/json")


def _unprocessable() -> Response:
    return PlainTextResponse(DESERIALIZE_ERROR, status_code=422)


async def _body(request: Request):
    try:
        return json.loads(await request.body())
    except ValueError:
        return None


def build_app(ex: LocalExchange) -> Starlette:
    async def api(request: Request, endpoint: str) -> Response:
        body = await _body(request)
        if not isinstance(body, dict):
            return _unprocessable()
        ip = request.client.host if request.client else "unknown"
        if endpoint == "info":
            info_type = body.get("type")
            if not isinstance(info_type, str):
                return _unprocessable()
            engine_types = ex.engine.ACCOUNT_INFO_TYPES if ex.engine is not None else set()
            if info_type not in MARKET_INFO_TYPES and info_type not in engine_types:
                return _unprocessable()
            action_type, weight = None, info_base_weight(info_type)
        else:
            action = body.get("action")
            if not isinstance(action, dict) or not isinstance(action.get("type"), str):
                return _unprocessable()
            info_type, action_type, weight = None, action["type"], exchange_weight(action)

        fault = ex.faults.take(endpoint, info_type, action_type)
        if fault is not None and not fault.processed_first:
            return failure_response(fault)
        if not ex.limiter.try_acquire(ip, weight):
            return _json(None, 429)
        try:
            with ex.lock:
                ex._notify_clock()
                if endpoint == "info":
                    if info_type in MARKET_INFO_TYPES:
                        result = ex.handle_info(body)
                    else:
                        result = ex.engine.handle_info(body)
                    ex.limiter.charge(ip, info_extra_weight(info_type, result))
                elif ex.engine is None:
                    result = TRADING_UNAVAILABLE
                else:
                    result = ex.engine.handle_exchange(body)
        except BadRequest:
            return _unprocessable()
        except NotRecorded as err:
            return PlainTextResponse(str(err), status_code=500)
        except Exception as err:  # a bug: tell the client what broke instead of a bare 500
            log.exception("local exchange: %s request failed", endpoint)
            return PlainTextResponse(f"local exchange error: {type(err).__name__}: {err}", status_code=500)
        if fault is not None:
            return failure_response(fault)
        return _json(result)

    async def info(request: Request) -> Response:
        return await api(request, "info")

    async def exchange(request: Request) -> Response:
        return await api(request, "exchange")

    def control(fn):
        async def endpoint(request: Request) -> Response:
            body = await _body(request) if request.method in ("POST", "PUT") else {}
            if body is None:
                body = {}
            if not isinstance(body, dict):
                return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
            try:
                return JSONResponse(fn(request, body))
            except (ControlError, ValueError, TypeError, KeyError) as err:
                return JSONResponse({"error": f"{type(err).__name__}: {err}"}, status_code=400)

        return endpoint

    def clock_view() -> dict:
        now = ex.now_ms()
        return {"now_ms": now, "now": str(timegrid.from_ms(now)), "speed": ex.clock.speed}

    def clock(request, body):
        if request.method == "POST":
            if "time" not in body:
                raise ControlError("POST /_local/clock needs 'time' (epoch ms or a UTC timestamp string)")
            ex.set_time(body["time"], body.get("speed"))
        return clock_view()

    def advance(request, body):
        units = {"ms": 1, "seconds": 1000, "hours": HOUR_MS}
        given = [k for k in units if k in body]
        if len(given) != 1:
            raise ControlError("POST /_local/clock/advance needs exactly one of 'ms', 'seconds', 'hours'")
        ex.advance(round(float(body[given[0]]) * units[given[0]]))
        return clock_view()

    def faults(request, body):
        if request.method == "POST":
            if "kind" not in body:
                raise ControlError("POST /_local/faults needs 'kind'")
            f = ex.faults.inject(body["kind"], int(body.get("count", 1)), endpoint=body.get("endpoint"),
                                 info_type=body.get("info_type"), action_type=body.get("action_type"),
                                 hang_seconds=body.get("hang_seconds"))
            return f.as_dict()
        if request.method == "DELETE":
            ex.faults.clear()
        return {"faults": ex.faults.pending()}

    def shock(request, body):
        if "factor" not in body:
            raise ControlError("POST /_local/price_shock needs 'factor'")
        ex.price_shock(float(body["factor"]), body.get("coin"))
        return {"ok": True, "factor": float(body["factor"]), "coin": body.get("coin")}

    def depth(request, body):
        if "factor" not in body:
            raise ControlError("POST /_local/book_depth needs 'factor'")
        ex.thin_book(float(body["factor"]), body.get("coin"))
        return {"ok": True, "factor": float(body["factor"]), "coin": body.get("coin")}

    def fund(request, body):
        ex.fund(str(body["address"]), float(body["usdc"]), body.get("mode"))
        return {"ok": True}

    def builders(request, body):
        ex.approve_builder(str(body["master"]), str(body["builder"]), str(body["max_fee_rate"]))
        return {"ok": True}

    def venue_clock(request, body):
        return ex.venue_clock()

    def venue_advance(request, body):
        units = {"ms": 1, "seconds": 1000}
        given = [k for k in units if k in body]
        if len(given) != 1:
            raise ControlError("POST /_local/venue_clock/advance needs exactly one of 'ms', 'seconds'")
        ex.advance_venue_clock(round(float(body[given[0]]) * units[given[0]]))
        return ex.venue_clock()

    def agents(request, body):
        ex.approve_agent(str(body["agent"]), str(body["master"]))
        return {"ok": True}

    def reset_limits(request, body):
        ex.limiter.reset()
        return {"ok": True}

    routes = [
        Route("/info", info, methods=["POST"]),
        Route("/exchange", exchange, methods=["POST"]),
        Route("/_local/status", control(lambda r, b: ex.status()), methods=["GET"]),
        Route("/_local/clock", control(clock), methods=["GET", "POST"]),
        Route("/_local/clock/advance", control(advance), methods=["POST"]),
        Route("/_local/faults", control(faults), methods=["GET", "POST", "DELETE"]),
        Route("/_local/price_shock", control(shock), methods=["POST"]),
        Route("/_local/book_depth", control(depth), methods=["POST"]),
        Route("/_local/fund", control(fund), methods=["POST"]),
        Route("/_local/agents", control(agents), methods=["POST"]),
        Route("/_local/builders", control(builders), methods=["POST"]),
        Route("/_local/venue_clock", control(venue_clock), methods=["GET"]),
        Route("/_local/venue_clock/advance", control(venue_advance), methods=["POST"]),
        Route("/_local/rate_limit/reset", control(reset_limits), methods=["POST"]),
    ]
    return Starlette(routes=routes)


def as_ms_delta(delta) -> int:
    """timedelta / pd.Timedelta, or a number of hours -> ms."""
    if isinstance(delta, (timedelta, pd.Timedelta)):
        return int(pd.Timedelta(delta).total_seconds() * 1000)
    return round(float(delta) * HOUR_MS)
