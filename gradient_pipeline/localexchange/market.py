"""`MarketView`: the replayed market as seen at replay-now — the contract between the market-data half and the
trading engine (`engine.py`).

Contract (stable; the trading engine codes against exactly this):

```python
class CoinMeta:                       # frozen dataclass
    name: str                         # exact exchange spelling, e.g. "BTC", "kPEPE"
    asset_index: int                  # index in meta["universe"]; never shifts (delisted coins keep theirs)
    sz_decimals: int
    max_leverage: int
    is_delisted: bool                 # recorded data ended before replay-now (and before the dataset's end)

class MarketView:
    def now_ms(self) -> int                                   # replay clock, epoch ms
    def coins(self) -> list[CoinMeta]                         # listed coins at now, in asset-index order
    def coin(self, name: str) -> CoinMeta | None              # listed coin by name (None if unknown / not yet listed)
    def coin_by_asset(self, i: int) -> CoinMeta | None        # None if out of range / not yet listed
    def mid(self, coin: str) -> float | None                  # None if unknown, not listed yet, or delisted
    def mark(self, coin: str) -> float | None                 # == mid for listed coins; last price if delisted
    def oracle(self, coin: str) -> float | None               # == mark (no separate oracle feed in the data)
    def book(self, coin: str) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]
        # (bids best-first, asks best-first) as (px, sz); px valid exchange prices (5 sig figs, <= 6-szDecimals
        # decimals), sz rounded to szDecimals; empty lists if no mid. Same numbers as /info l2Book.
    def funding_rate(self, coin: str, hour_ms: int) -> float | None
        # the recorded rate of the funding event in the hour [hour_ms, hour_ms + 1h) (recorded times carry ms
        # jitter); None if no event in that hour (8-hourly era before 2023-06-08, or outside the data)
    def current_funding(self, coin: str) -> float | None      # latest recorded rate at or before now

class BadRequest(ValueError)   # raise from TradingEngine.handle_info/handle_exchange for a malformed body:
                               # the app answers HTTP 422 "Failed to deserialize the JSON body into the target type"
```

Prices at replay-now: mid = close of the latest *closed* 1h candle (open + 1h <= now), falling back to the latest
closed 4h candle, then to the forming candle's open; multiplied by every price shock (`shock(factor, coin)`)
applied at or before now. Prices therefore move only when the replay clock moves (or a shock is applied).
Nothing here looks past replay-now.

Clock: the engine is told about clock moves through `TradingEngine.on_clock(now_ms)`, called by the app (under the
app's lock) after every explicit set/advance and, when the clock runs (speed > 0), before handling a request whose
replay-now differs from the last one notified. One call may therefore jump several hours: apply every hourly
funding boundary crossed since the previous call.

All calls are made with the app's single state lock held (requests are handled one at a time), so neither side
needs its own locking.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gradient_pipeline.localexchange.replay import HOUR_MS, INTERVAL_MS, Candles, DataError, RecordedData, ReplayClock

DAY_MS = 24 * HOUR_MS
CANDLE_HISTORY_LIMIT = 5000  # the real exchange serves only the most recent 5000 candles per coin and interval
FUNDING_PAGE = 500  # fundingHistory returns at most 500 items; paginate with the last time as the next startTime
CANDLE_PAGE = 5000  # candleSnapshot returns at most 5000 candles per response (matters when history_limit > 5000)
INTEREST_PER_HOUR = 0.0000125  # 0.01% / 8h: the interest component of Hyperliquid funding
OVERRIDE_FILE = "meta_overrides.json"
_OVERRIDE_KEYS = {"szDecimals", "maxLeverage", "onlyIsolated", "marginMode"}


class BadRequest(ValueError):
    """Raise (market or engine) when a request body has the wrong shape: the app answers HTTP 422
    `Failed to deserialize the JSON body into the target type`, as the real exchange does."""


@dataclass(frozen=True)
class CoinMeta:
    name: str
    asset_index: int
    sz_decimals: int
    max_leverage: int
    is_delisted: bool


@dataclass(frozen=True)
class BookConfig:
    """Synthetic order book. Best bid/ask sit `spread_bps / 2` either side of mid; further levels every
    `level_step_bps`; each level holds `level_fraction_of_day_volume` x trailing-24h USD volume (at least
    `min_level_usd`)."""

    spread_bps: float = 2.0
    level_step_bps: float = 1.0
    levels: int = 20
    level_fraction_of_day_volume: float = 0.0005
    min_level_usd: float = 2_000.0

    def __post_init__(self):
        if self.spread_bps <= 0 or self.level_step_bps <= 0:
            raise ValueError(f"book spread_bps and level_step_bps must be > 0, got {self.spread_bps}, {self.level_step_bps}")
        if not 1 <= self.levels <= 20:
            raise ValueError(f"book levels must be 1..20 (the exchange shows at most 20 per side), got {self.levels}")


@dataclass(frozen=True)
class _Static:
    """What does not depend on replay-now: listing/end times and contract specs."""

    name: str
    first_ms: int  # open time of the first recorded 4h candle = listing time
    end_ms: int  # close time of the last recorded 4h candle
    sz_decimals: int
    max_leverage: int
    extra: dict  # further universe fields from meta_overrides.json (e.g. onlyIsolated)


def sz_decimals_for(price: float) -> int:
    """Heuristic lot size: about 5-6 significant digits of USD notional per lot (BTC 5, ETH 4, kPEPE 0)."""
    if not price > 0:
        return 0
    return max(0, min(5, math.floor(math.log10(price)) + 1))


def instrument_for(coin: str, price: float):
    """The Hyperliquid instrument rules the local exchange applies to a coin trading at `price` (lot size from
    `sz_decimals_for`), as the planner's `InstrumentSpec` (the as-live backtest plans with it)."""
    from gradient_pipeline.exchange.hyperliquid.rounding import HyperliquidInstrument

    return HyperliquidInstrument(coin, sz_decimals_for(price))


def max_leverage_for(coin: str, median_day_usd: float) -> int:
    if coin in ("BTC", "ETH"):
        return 50
    for floor_usd, lev in ((50e6, 20), (5e6, 10), (500e3, 5)):
        if median_day_usd >= floor_usd:
            return lev
    return 3


def price_decimals(px: float, sz_decimals: int) -> int:
    """Decimals allowed for a perp price: 5 significant figures and at most 6 - szDecimals decimals."""
    if px <= 0:
        return 6 - sz_decimals
    return max(0, min(4 - math.floor(math.log10(px)), 6 - sz_decimals))


def round_price(px: float, sz_decimals: int, mode: str = "nearest") -> float:
    """Round to a valid exchange price; mode 'down' (bids), 'up' (asks) or 'nearest'."""
    dec = price_decimals(px, sz_decimals)
    scale = 10.0**dec
    x = px * scale
    r = {"down": math.floor(x + 1e-9), "up": math.ceil(x - 1e-9), "nearest": round(x)}[mode]
    out = round(r / scale, dec)
    if out <= 0:  # never round a positive price to zero
        out = round(1 / scale, dec)
    return out


def fmt(x: float | None) -> str | None:
    """Exchange-style number string: positional, shortest round-trip digits ('30135.0', '0.000015')."""
    if x is None:
        return None
    x = float(x)
    if x == 0:
        return "0.0"
    r = repr(x)  # shortest round-trip digits; positional unless tiny/huge
    return r if "e" not in r else np.format_float_positional(x, unique=True, trim="0")


def fmt_sig(x: float, sig: int = 10) -> str:
    """A computed (not recorded) number, to `sig` significant digits."""
    return fmt(float(f"{x:.{sig}g}"))


def _n_trades(volume: float, close: float) -> int:
    # The recordings have no trade count; synthesise a plausible one (~$2k per trade) so `n` is a positive int.
    if volume <= 0:
        return 0
    return max(1, int(volume * close / 2000))


def _last_at_or_before(t: np.ndarray, ms: int) -> int:
    return int(np.searchsorted(t, ms, side="right")) - 1


class MarketView:
    """The replayed market at replay-now. See the module docstring for the contract."""

    def __init__(self, data: RecordedData, clock: ReplayClock, book: BookConfig | None = None,
                 candle_history_limit: int = CANDLE_HISTORY_LIMIT):
        self.data = data
        self.clock = clock
        self.book_config = book or BookConfig()
        self.candle_history_limit = candle_history_limit
        self._shocks: list[tuple[int, str | None, float]] = []
        self._depth: dict[str | None, float] = {}  # thin_book factors: coin (None = every coin) -> depth multiplier
        overrides = self._read_overrides()
        statics = [self._static(c, overrides.get(c, {})) for c in data.coin_names]
        # Asset order: listing time, then name. New listings are appended, so indices never shift.
        self._universe: list[_Static] = sorted(statics, key=lambda s: (s.first_ms, s.name))
        self._first = np.array([s.first_ms for s in self._universe], dtype=np.int64)
        self._by_name = {s.name: i for i, s in enumerate(self._universe)}
        # The recording's end is not a delisting: coins that run to the end stay listed (prices frozen).
        full = RecordedData(data.data_dir)
        self.dataset_end_ms = max(int(full.candles(c, "4h").t[-1]) + INTERVAL_MS["4h"] for c in full.coin_names)

    # ---------------------------------------------------------------- static coin info
    def _read_overrides(self) -> dict:
        path = Path(self.data.data_dir) / OVERRIDE_FILE
        if not path.exists():
            return {}
        try:
            raw = json.loads(path.read_text())
        except ValueError as err:
            raise DataError(f"{path}: not valid JSON ({err})") from err
        if not isinstance(raw, dict):
            raise DataError(f"{path}: expected an object {{coin: {{field: value}}}}")
        for coin, fields in raw.items():
            bad = set(fields) - _OVERRIDE_KEYS if isinstance(fields, dict) else {"<not an object>"}
            if bad:
                raise DataError(f"{path}: coin {coin}: unsupported field(s) {sorted(bad)}; allowed {sorted(_OVERRIDE_KEYS)}")
        return raw

    def _static(self, coin: str, override: dict) -> _Static:
        c4 = self.data.candles(coin, "4h")
        if len(c4) == 0:
            raise DataError(f"{self.data.data_dir}: {coin} 4h candle file is empty")
        traded = np.flatnonzero(c4.v > 0)
        ref_px = float(c4.c[traded[0]] if len(traded) else c4.c[0])  # price at listing, like the real exchange
        day_usd = np.convolve(c4.v * c4.c, np.ones(6), mode="valid")[traded[0]:] if len(traded) else np.zeros(1)
        median_day = float(np.median(day_usd)) if len(day_usd) else 0.0
        extra = {k: v for k, v in override.items() if k not in ("szDecimals", "maxLeverage")}
        return _Static(
            name=coin,
            first_ms=int(c4.t[0]),
            end_ms=int(c4.t[-1]) + INTERVAL_MS["4h"],
            sz_decimals=int(override.get("szDecimals", sz_decimals_for(ref_px))),
            max_leverage=int(override.get("maxLeverage", max_leverage_for(coin, median_day))),
            extra=extra,
        )

    # ---------------------------------------------------------------- clock and universe
    def now_ms(self) -> int:
        return self.clock.now_ms()

    def _n_listed(self, now: int) -> int:
        return int(np.searchsorted(self._first, now, side="right"))

    def _delisted(self, s: _Static, now: int) -> bool:
        return s.end_ms <= now and s.end_ms < self.dataset_end_ms

    def _meta(self, i: int, now: int) -> CoinMeta:
        s = self._universe[i]
        return CoinMeta(s.name, i, s.sz_decimals, s.max_leverage, self._delisted(s, now))

    def coins(self) -> list[CoinMeta]:
        now = self.now_ms()
        return [self._meta(i, now) for i in range(self._n_listed(now))]

    def coin(self, name: str) -> CoinMeta | None:
        i = self._by_name.get(name)
        now = self.now_ms()
        if i is None or i >= self._n_listed(now):
            return None
        return self._meta(i, now)

    def coin_by_asset(self, i: int) -> CoinMeta | None:
        now = self.now_ms()
        if not isinstance(i, int) or not 0 <= i < self._n_listed(now):
            return None
        return self._meta(i, now)

    def universe_entry(self, meta: CoinMeta) -> dict:
        entry = {"name": meta.name, "szDecimals": meta.sz_decimals, "maxLeverage": meta.max_leverage,
                 "marginTableId": meta.max_leverage}
        entry.update(self._universe[meta.asset_index].extra)
        if meta.is_delisted:
            entry["isDelisted"] = True
        return entry

    def meta(self) -> dict:
        coins = self.coins()
        levs = sorted({c.max_leverage for c in coins})
        tables = [[lev, {"description": "", "marginTiers": [{"lowerBound": "0.0", "maxLeverage": lev}]}] for lev in levs]
        return {"universe": [self.universe_entry(c) for c in coins], "marginTables": tables, "collateralToken": 0}

    # ---------------------------------------------------------------- shocks
    def shock(self, factor: float, coin: str | None = None) -> None:
        """Multiply one coin's (or every coin's) prices by `factor` from replay-now on (cumulative)."""
        if not factor > 0:
            raise ValueError(f"price shock factor must be > 0, got {factor}")
        if coin is not None and coin not in self._by_name:
            raise ValueError(f"price shock: unknown coin {coin!r}")
        self._shocks.append((self.now_ms(), coin, float(factor)))

    def clear_shocks(self) -> None:
        """Forget every price shock: prices are the recorded ones again (an operator reset, e.g. between runs of a
        fault simulation; shocks otherwise accumulate for the life of the process)."""
        self._shocks.clear()

    def thin_book(self, factor: float, coin: str | None = None) -> None:
        """Multiply the book depth of one coin (or of every coin) by `factor` until changed again: 0.01 leaves 1%
        of each level, so a normal-sized IOC order fills partially; 1 restores the configured depth. Setting the
        all-coins factor clears the per-coin ones."""
        if not factor > 0:
            raise ValueError(f"book depth factor must be > 0, got {factor}")
        if coin is not None and coin not in self._by_name:
            raise ValueError(f"thin book: unknown coin {coin!r}")
        if coin is None:
            self._depth.clear()
        if float(factor) == 1.0:
            self._depth.pop(coin, None)
        else:
            self._depth[coin] = float(factor)

    def depth_factor(self, coin: str) -> float:
        return self._depth.get(coin, 1.0) * self._depth.get(None, 1.0)

    def _shock_factor(self, coin: str, now: int) -> float:
        f = 1.0
        for t, c, k in self._shocks:
            if t <= now and (c is None or c == coin):
                f *= k
        return f

    # ---------------------------------------------------------------- prices
    def _raw_price(self, coin: str, now: int) -> float | None:
        """Close of the latest closed candle (1h preferred, else 4h), else the forming 4h candle's open."""
        best_close_t, px = -1, None
        for interval in ("1h", "4h"):
            c = self.data.candles(coin, interval)
            i = _last_at_or_before(c.t, now - INTERVAL_MS[interval]) if len(c) else -1
            if i >= 0 and int(c.t[i]) + INTERVAL_MS[interval] > best_close_t:
                best_close_t, px = int(c.t[i]) + INTERVAL_MS[interval], float(c.c[i])
        if px is None:
            c4 = self.data.candles(coin, "4h")
            j = _last_at_or_before(c4.t, now)
            px = float(c4.o[j]) if j >= 0 else None
        return px

    def _price(self, coin: str, now: int) -> float | None:
        px = self._raw_price(coin, now)
        if px is None:
            return None
        k = self._shock_factor(coin, now)
        if k != 1.0:
            px = round_price(px * k, self._universe[self._by_name[coin]].sz_decimals)
        return px

    def mid(self, coin: str) -> float | None:
        m = self.coin(coin)
        if m is None or m.is_delisted:
            return None
        return self._price(coin, self.now_ms())

    def mark(self, coin: str) -> float | None:
        if self.coin(coin) is None:
            return None
        return self._price(coin, self.now_ms())

    def oracle(self, coin: str) -> float | None:
        return self.mark(coin)

    def all_mids(self) -> dict[str, str]:
        now = self.now_ms()
        return {c.name: fmt(self._price(c.name, now)) for c in self.coins() if not c.is_delisted}

    def closed_candles(self, coin: str, start_ms: int, end_ms: int, interval: str = "1h"
                       ) -> list[tuple[int, float, float]]:
        """(open time, high, low) of the `interval` candles that opened at or after `start_ms` and closed at or
        before `end_ms`, oldest first, with the price shocks in force at each candle's close applied. Used to
        decide whether a resting order was traded through while the replay clock moved."""
        if self.coin(coin) is None and coin not in self._by_name:
            return []
        c = self.data.candles(coin, interval)
        if not len(c):
            return []
        step = INTERVAL_MS[interval]
        lo = int(np.searchsorted(c.t, start_ms, side="left"))
        hi = int(np.searchsorted(c.t, end_ms - step, side="right"))
        out = []
        for i in range(lo, hi):
            k = self._shock_factor(coin, int(c.t[i]) + step)
            out.append((int(c.t[i]), float(c.h[i]) * k, float(c.l[i]) * k))
        return out

    # ---------------------------------------------------------------- volume
    def day_volume(self, coin: str, now: int | None = None) -> tuple[float, float]:
        """(base volume, USD notional = sum volume x close) of candles that closed in the 24h before now."""
        now = self.now_ms() if now is None else now
        for interval in ("1h", "4h"):
            c = self.data.candles(coin, interval)
            step = INTERVAL_MS[interval]
            if interval == "1h" and (len(c) == 0 or c.t[0] > now - DAY_MS):
                continue  # 1h history does not cover the whole day (it starts ~Sep 2024): use 4h
            lo = int(np.searchsorted(c.t, now - DAY_MS - step, side="right"))
            hi = int(np.searchsorted(c.t, now - step, side="right"))
            return float(c.v[lo:hi].sum()), float((c.v[lo:hi] * c.c[lo:hi]).sum())
        return 0.0, 0.0

    # ---------------------------------------------------------------- book
    def book(self, coin: str) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        mid = self.mid(coin)
        if mid is None:
            return [], []
        cfg = self.book_config
        szd = self._universe[self._by_name[coin]].sz_decimals
        level_usd = max(cfg.min_level_usd, cfg.level_fraction_of_day_volume * self.day_volume(coin)[1])
        level_usd *= self.depth_factor(coin)
        lot = 10.0**-szd

        def side(sign: int) -> list[tuple[float, float]]:
            out: list[tuple[float, float]] = []
            prev = None
            for k in range(cfg.levels):
                target = mid * (1 + sign * (cfg.spread_bps / 2 + k * cfg.level_step_bps) / 1e4)
                px = round_price(target, szd, "up" if sign > 0 else "down")
                if prev is not None and (px <= prev if sign > 0 else px >= prev):
                    tick = 10.0 ** -price_decimals(prev, szd)
                    px = round(prev + sign * tick, price_decimals(prev, szd))
                if px <= 0:
                    break
                sz = max(lot, round(level_usd / px, szd))
                out.append((px, sz))
                prev = px
            return out

        return side(-1), side(+1)

    def l2_book(self, coin: str) -> dict | None:
        if self.coin(coin) is None:
            return None
        bids, asks = self.book(coin)

        def levels(rows):
            return [{"px": fmt(px), "sz": fmt(sz), "n": 1 + (i * 7) % 5} for i, (px, sz) in enumerate(rows)]

        return {"coin": coin, "time": self.now_ms(), "levels": [levels(bids), levels(asks)]}

    # ---------------------------------------------------------------- funding
    def funding_rate(self, coin: str, hour_ms: int) -> float | None:
        f = self.data.funding(coin) if coin in self._by_name else None
        if f is None or len(f) == 0:
            return None
        i = int(np.searchsorted(f.t, hour_ms, side="left"))
        if i < len(f) and f.t[i] < hour_ms + HOUR_MS:
            return float(f.rate[i])
        return None

    def current_funding(self, coin: str) -> float | None:
        f = self.data.funding(coin) if coin in self._by_name else None
        if f is None or len(f) == 0:
            return None
        i = _last_at_or_before(f.t, self.now_ms())
        return float(f.rate[i]) if i >= 0 else None

    @staticmethod
    def _premium(rate: float, t_ms: int, prev_t_ms: int | None) -> float:
        # The recordings carry only the rate. premium ~= rate - interest for that interval (inverting the funding
        # formula inside its clamp); the interval is 8h before the 2023-06-08 switch to hourly funding.
        interval_h = 8 if prev_t_ms is not None and t_ms - prev_t_ms > 2 * HOUR_MS else 1
        return rate - INTEREST_PER_HOUR * interval_h

    def funding_history(self, coin: str, start_ms: int, end_ms: int | None = None) -> list[dict]:
        if coin not in self._by_name:
            return []
        f = self.data.funding(coin)
        end = min(self.now_ms(), end_ms if end_ms is not None else self.now_ms())
        lo = int(np.searchsorted(f.t, start_ms, side="left"))
        hi = min(int(np.searchsorted(f.t, end, side="right")), lo + FUNDING_PAGE)
        out = []
        for i in range(lo, hi):
            t, rate = int(f.t[i]), float(f.rate[i])
            prem = self._premium(rate, t, int(f.t[i - 1]) if i > 0 else None)
            out.append({"coin": coin, "fundingRate": fmt(rate), "premium": fmt_sig(prem, 8), "time": t})
        return out

    # ---------------------------------------------------------------- candles
    def _candle(self, coin: str, interval: str, t, o, h, l, c, v) -> dict:
        step = INTERVAL_MS[interval]
        return {"t": int(t), "T": int(t) + step - 1, "s": coin, "i": interval, "o": fmt(o), "c": fmt(c),
                "h": fmt(h), "l": fmt(l), "v": fmt(v), "n": _n_trades(v, c)}

    def _forming(self, coin: str, interval: str, c: Candles, j: int, now: int) -> dict:
        """The still-forming candle at index j: built from the 1h candles that closed inside it (for 4h), else
        open-only with zero volume. Its close equals the market's current (unshocked) price."""
        o = float(c.o[j])
        h = low = close = o
        v = 0.0
        if interval != "1h":
            h1 = self.data.candles(coin, "1h")
            lo = int(np.searchsorted(h1.t, c.t[j], side="left"))
            hi = int(np.searchsorted(h1.t, now - HOUR_MS, side="right"))
            if hi > lo:
                h = max(o, float(h1.h[lo:hi].max()))
                low = min(o, float(h1.l[lo:hi].min()))
                close = float(h1.c[hi - 1])
                v = float(h1.v[lo:hi].sum())
        return self._candle(coin, interval, c.t[j], o, h, low, close, v)

    def candle_snapshot(self, coin: str, interval: str, start_ms: int, end_ms: int) -> list[dict]:
        """Candles whose [t, T] overlaps [start, end], oldest first, among the most recent `candle_history_limit`
        candles up to and including the forming one (never beyond replay-now)."""
        if coin not in self._by_name or start_ms > end_ms:
            return []
        c = self.data.candles(coin, interval)
        step = INTERVAL_MS[interval]
        now = self.now_ms()
        m = int(np.searchsorted(c.t, now, side="right"))  # candles opened at or before now
        first_available = max(0, m - self.candle_history_limit)
        lo = max(first_available, int(np.searchsorted(c.t, start_ms - step + 1, side="left")))
        hi = min(m, int(np.searchsorted(c.t, end_ms, side="right")), lo + CANDLE_PAGE)
        out = []
        for j in range(lo, hi):
            if int(c.t[j]) + step > now:
                out.append(self._forming(coin, interval, c, j, now))
            else:
                out.append(self._candle(coin, interval, c.t[j], c.o[j], c.h[j], c.l[j], c.c[j], c.v[j]))
        return out

    # ---------------------------------------------------------------- asset contexts
    def asset_ctx(self, meta: CoinMeta) -> dict:
        now = self.now_ms()
        coin = meta.name
        mark = self._price(coin, now)
        if meta.is_delisted:
            return {"funding": "0.0", "openInterest": "0.0", "prevDayPx": fmt(mark), "dayNtlVlm": "0.0",
                    "premium": None, "oraclePx": fmt(mark), "markPx": fmt(mark), "midPx": None,
                    "impactPxs": None, "dayBaseVlm": "0.0"}
        base_vol, ntl_vol = self.day_volume(coin, now)
        rate = self.current_funding(coin)
        rate = INTEREST_PER_HOUR if rate is None else rate
        prev = self._price(coin, now - DAY_MS) or mark
        # Impact prices: where a modest market order would fill in the synthetic book (its second level).
        depth = (self.book_config.spread_bps / 2 + self.book_config.level_step_bps) / 1e4
        impact = [fmt(round_price(mark * (1 - depth), meta.sz_decimals, "down")),
                  fmt(round_price(mark * (1 + depth), meta.sz_decimals, "up"))]
        # No open-interest recording: ~0.6 x a day's base volume is typical of Hyperliquid majors.
        oi = round(0.6 * base_vol, meta.sz_decimals)
        return {"funding": fmt_sig(rate, 8), "openInterest": fmt(oi), "prevDayPx": fmt(prev),
                "dayNtlVlm": fmt_sig(ntl_vol, 12), "premium": fmt_sig(rate - INTEREST_PER_HOUR, 8),
                "oraclePx": fmt(mark), "markPx": fmt(mark), "midPx": fmt(mark), "impactPxs": impact,
                "dayBaseVlm": fmt_sig(base_vol, 12)}

    def meta_and_asset_ctxs(self) -> list:
        meta = self.meta()
        return [meta, [self.asset_ctx(c) for c in self.coins()]]
