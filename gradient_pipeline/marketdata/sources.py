"""Where market data comes from: the Hyperliquid info endpoint or a freqtrade data directory, behind one interface.

Both sources answer the same four questions for a half-open range of 4h windows `[start, end)`:

* `complete_window_end()` – end of the newest complete window (exchange clock for hyperliquid, end of the data for
  freqtrade). Nothing at or after it may be written: a forming candle is never stored.
* `candles(start, end, traded_before)` – complete candles `coin, ts, open, high, low, close, volume` of traded
  history only (rows before a coin's first traded candle are exchange back-fill and are dropped), plus a report.
* `funding(start, end)` – `coin, ts (hour), rate, premium`.
* `coin_info()` / `delisted(start, end)` – static per-coin facts and which coins are delisted in which window.

The candle and funding answers also say which coins the source *covers* (has input for): a stored coin the source
does not cover is reported missing and keeps its stored rows; it is never deleted because a file or a listing went
away.

`open_source(cfg, name, freqtrade_dir)` builds one from the configuration (or a run's overrides).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

import numpy as np
import pandas as pd

from gradient_pipeline.config import GradientConfig
from gradient_pipeline.marketdata import freqtrade as ft
from gradient_pipeline.timegrid import BAR, utc_naive

OHLCV = ["coin", "ts", "open", "high", "low", "close", "volume"]
COIN_INFO_COLUMNS = ["coin", "asset_index", "sz_decimals", "max_leverage", "only_isolated"]
FETCH_THREADS = 4  # candle requests in flight at once (hyperliquid source)
LIVE_CTX_COLUMNS = ["coin", "is_delisted", "day_ntl_vlm", "mark_px", "oracle_px", "open_interest", "funding", "mid_px"]


class SourceError(ValueError):
    """The source cannot serve the request (unknown source, missing directory, window not complete, …)."""


def _empty_ohlcv() -> pd.DataFrame:
    return ft._empty(OHLCV)


@dataclass
class CandleBatch:
    """Candles a source returned for a range, the pre-trade rows it dropped, and which coins it had input for.

    `coins`: every coin the source *covers* for this range (a candle file exists / the exchange lists it), whether or
    not it has a row in the range. A stored coin outside this set had no input and keeps its stored rows.
    """

    frame: pd.DataFrame
    dropped: pd.DataFrame = field(default_factory=_empty_ohlcv)  # pre-first-trade rows (exchange back-fill)
    coins: frozenset[str] = frozenset()

    @property
    def pre_trade_rows_dropped(self) -> int:
        return len(self.dropped)

    @property
    def pre_trade_ohlc_defects(self) -> dict[str, int]:
        """Dropped pre-trade rows whose high/low disagree with open/close, per coin (the real data's 61 defects)."""
        counts = self.dropped.loc[_ohlc_defect(self.dropped), "coin"].value_counts().sort_index()
        return {k: int(v) for k, v in counts.items()}


@dataclass
class FundingBatch:
    """Funding rows for a range and the coins the source covers for it (see `CandleBatch.coins`)."""

    frame: pd.DataFrame
    coins: frozenset[str] = frozenset()


class MarketDataSource(Protocol):
    name: str

    def complete_window_end(self) -> pd.Timestamp: ...

    def candles(self, start, end, traded_before: set[str]) -> CandleBatch: ...

    def funding(self, start, end) -> FundingBatch: ...

    def coin_info(self) -> pd.DataFrame: ...

    def delisted(self, start, end) -> pd.DataFrame: ...

    def live_contexts(self, window_open: pd.Timestamp) -> pd.DataFrame | None: ...


def _ohlc_defect(frame: pd.DataFrame) -> pd.Series:
    return (frame["high"] < frame[["open", "close"]].max(axis=1)) | (frame["low"] > frame[["open", "close"]].min(axis=1))


class FreqtradeSource:
    """A freqtrade futures data directory (`<COIN>_USDC_USDC-4h-futures.feather`, `…-1h-funding_rate.feather`).

    Listing is derived from data coverage: a coin is listed in window t if it traded at or before t and its
    data has not ended; a coin whose data ends before the directory's last candle is delisted from then on.
    The files carry no exchange metadata, so `asset_index`, `sz_decimals`, `max_leverage`, `only_isolated`,
    mark/oracle price and open interest are NULL.
    """

    name = "freqtrade"

    def __init__(self, directory: str | os.PathLike):
        self.directory = directory
        if not ft.list_coins(directory):
            raise SourceError(f"freqtrade directory {directory} holds no *_USDC_USDC-4h-futures.feather files")

    @cached_property
    def _coverage(self) -> pd.DataFrame:
        return ft.coverage(self.directory)

    @cached_property
    def data_end(self) -> pd.Timestamp:
        """Open time of the directory's last candle (any coin)."""
        return pd.Timestamp(self._coverage["last_ts"].max())

    def complete_window_end(self) -> pd.Timestamp:
        return self.data_end + BAR

    def candles(self, start, end, traded_before: set[str] = frozenset()) -> CandleBatch:
        coins = self._coverage["coin"].tolist()
        raw = ft.load_candles(self.directory, coins, start=start, end=end, traded_only=False)
        first = raw["coin"].map(self._coverage.set_index("coin")["first_traded"])
        pre = first.isna() | (raw["ts"] < first)
        return CandleBatch(raw[~pre].reset_index(drop=True), raw[pre].reset_index(drop=True), frozenset(coins))

    def funding(self, start, end) -> FundingBatch:
        coins = ft.list_funding_coins(self.directory)
        f = ft.load_funding(self.directory, coins, start=start, end=end)
        f["premium"] = np.nan
        return FundingBatch(f, frozenset(coins))

    def coin_info(self) -> pd.DataFrame:
        info = pd.DataFrame({"coin": self._coverage["coin"]})
        for c in COIN_INFO_COLUMNS[1:]:
            info[c] = pd.NA
        return info

    def delisted(self, start, end) -> pd.DataFrame:
        """`ts, coin` for every window in [start, end) after a coin's data ended (before the directory's end)."""
        cov = self._coverage[self._coverage["last_ts"] < self.data_end]
        windows = pd.date_range(utc_naive(start), utc_naive(end), freq=BAR, inclusive="left")
        rows = [(t, c) for c, last in zip(cov["coin"], cov["last_ts"]) for t in windows[windows > last]
                if t <= self.data_end]
        return pd.DataFrame(rows, columns=["ts", "coin"]).astype({"ts": "datetime64[ns]", "coin": object})

    def live_contexts(self, window_open) -> None:
        return None


class HyperliquidSource:
    """The Hyperliquid info endpoint at the configured base URL (mainnet, testnet or the local exchange).

    Candles are fetched per listed coin for exactly the requested range (one paginated `candleSnapshot` each), so
    the 4h update costs the same however much history is stored (one request per coin is the least the API allows:
    `candleSnapshot` takes one coin).

    `background=True` (the funding refresh that follows each window's rebalance): the client spends the shared
    per-IP budget at low priority — a request is admitted only while the window of every process holds at most
    `rate_limit.background_fraction` of the budget (`background_config`), so a trading run never waits behind it. The exchange back-fills zero-volume candles before
    a coin's first trade: a coin not in `traded_before` (no stored candle in the window before `start`) starts at
    its first candle with volume > 0. Static facts and the delisted flag come from `meta`; the asset contexts
    (mark, oracle, 24h notional volume, open interest, funding) are a live snapshot, used only for the newest window.
    """

    name = "hyperliquid"

    def __init__(self, cfg: GradientConfig, background: bool = False):
        from gradient_pipeline.exchange.hyperliquid import HyperliquidClient, MarketData

        self.cfg = cfg
        self.background = background
        self.market = MarketData(HyperliquidClient.from_config(background_config(cfg) if background else cfg))

    @cached_property
    def _now(self) -> pd.Timestamp:
        """The exchange's clock, asked once per source (one run) so every coin is cut at the same instant."""
        return utc_naive(self.market.server_time())

    def complete_window_end(self) -> pd.Timestamp:
        # MarketData.complete_window_end() is the newest complete candle's *open*; its window ends 4h later.
        return utc_naive(self.market.complete_window_end(now=self._now)) + BAR

    @cached_property
    def _universe(self) -> pd.DataFrame:
        return _normalise_universe(self.market.universe())

    def _coins(self) -> list[str]:
        return self._universe.loc[~self._universe["is_delisted"], "coin"].tolist()

    def candles(self, start, end, traded_before: set[str] = frozenset()) -> CandleBatch:
        parts, dropped = [], []
        coins, now = self._coins(), self._now  # clock and universe first: shared by the fetch threads
        self.market.client.info()

        def fetch(coin: str):
            return self.market.candles(coin, utc_naive(start), utc_naive(end), "4h", now=now)

        # A few requests in flight: each waits on the shared weight budget anyway, and overlapping their round
        # trips keeps the refresh at the budget's pace instead of the sum of request latencies (the critical path).
        with ThreadPoolExecutor(max_workers=FETCH_THREADS, thread_name_prefix="candles") as pool:
            fetched = list(pool.map(fetch, coins))
        for coin, got in zip(coins, fetched):
            f = _normalise_candles(got, coin)
            if coin not in traded_before and len(f):
                traded = f["volume"].to_numpy() > 0
                first = int(traded.argmax()) if traded.any() else len(f)
                if first:
                    dropped.append(f.iloc[:first])
                f = f.iloc[first:]
            if len(f):
                parts.append(f)
        frame = pd.concat(parts, ignore_index=True) if parts else _empty_ohlcv()
        gone = pd.concat(dropped, ignore_index=True)[OHLCV] if dropped else _empty_ohlcv()
        return CandleBatch(frame[OHLCV], gone, frozenset(self._coins()))

    def funding(self, start, end) -> FundingBatch:
        parts = []
        for coin in self._coins():
            f = self.market.funding(coin, utc_naive(start), min(utc_naive(end), self._now), now=self._now).copy()
            if not len(f):
                continue
            f["coin"] = coin
            f["ts"] = pd.to_datetime(f["ts"]).dt.floor("h").astype("datetime64[ns]")  # drop the exchange's ms jitter
            parts.append(f[["coin", "ts", "rate", "premium"]].astype({"rate": float, "premium": float}))
        coins = frozenset(self._coins())
        if not parts:
            return FundingBatch(pd.DataFrame({"coin": pd.Series(dtype=object), "ts": pd.Series(dtype="datetime64[ns]"),
                                              "rate": pd.Series(dtype=float), "premium": pd.Series(dtype=float)}), coins)
        return FundingBatch(pd.concat(parts, ignore_index=True), coins)

    def coin_info(self) -> pd.DataFrame:
        return self._universe[COIN_INFO_COLUMNS].copy()

    def delisted(self, start, end) -> pd.DataFrame:
        # The exchange only says who is delisted *now*; report that for the newest complete window only.
        newest = self.complete_window_end() - BAR
        if not (utc_naive(start) <= newest < utc_naive(end)):
            return pd.DataFrame({"ts": pd.Series(dtype="datetime64[ns]"), "coin": pd.Series(dtype=object)})
        coins = self._universe.loc[self._universe["is_delisted"], "coin"]
        return pd.DataFrame({"ts": newest, "coin": coins.to_numpy()}).astype({"ts": "datetime64[ns]"})

    def live_contexts(self, window_open) -> pd.DataFrame | None:
        if utc_naive(window_open) != self.complete_window_end() - BAR:
            return None
        return self._universe[LIVE_CTX_COLUMNS].copy()


def _normalise_candles(frame, coin: str) -> pd.DataFrame:
    f = pd.DataFrame(frame).copy()
    f = f.rename(columns={"t": "ts", "time": "ts", "o": "open", "h": "high", "l": "low", "c": "close", "v": "volume"})
    f["coin"] = coin
    f["ts"] = pd.to_datetime(f["ts"]).astype("datetime64[ns]")
    for c in ("open", "high", "low", "close", "volume"):
        f[c] = f[c].astype(float)
    return f[OHLCV].sort_values("ts").reset_index(drop=True)


def _normalise_universe(frame) -> pd.DataFrame:
    u = pd.DataFrame(frame).copy()
    u = u.rename(columns={"name": "coin", "szDecimals": "sz_decimals", "maxLeverage": "max_leverage",
                          "isDelisted": "is_delisted", "onlyIsolated": "only_isolated", "dayNtlVlm": "day_ntl_vlm",
                          "markPx": "mark_px", "oraclePx": "oracle_px", "openInterest": "open_interest",
                          "index": "asset_index"})
    defaults = {"asset_index": pd.NA, "sz_decimals": pd.NA, "max_leverage": pd.NA, "is_delisted": False,
                "only_isolated": pd.NA, "day_ntl_vlm": np.nan, "mark_px": np.nan, "oracle_px": np.nan,
                "open_interest": np.nan, "funding": np.nan, "mid_px": np.nan}
    for c, v in defaults.items():
        if c not in u:
            u[c] = v
    u["is_delisted"] = u["is_delisted"].fillna(False).astype(bool)
    return u


def background_config(cfg: GradientConfig) -> GradientConfig:
    """`cfg` with the client's share of the shared rate budget lowered to `rate_limit.background_fraction`.

    Why this is a priority: every client admits a request only if the weight inside the one shared 60 s window
    (all processes, `SharedWeightLedger`) stays within its own capacity. A background client's capacity is lower, so
    while foreground work keeps the window above it the background client waits, and the foreground always has
    `safety_fraction - background_fraction` of the budget free for it.
    """
    rate = cfg.rate_limit
    share = min(rate.safety_fraction, rate.background_fraction)
    return cfg.model_copy(update={"rate_limit": rate.model_copy(update={"safety_fraction": share})})


def open_source(cfg: GradientConfig, name: str | None = None, freqtrade_dir: str | None = None,
                background: bool = False) -> MarketDataSource:
    """The configured source (`cfg.data.source`, `cfg.data.freqtrade_dir`), optionally overridden per run.

    `background`: spend the exchange budget at low priority (see `HyperliquidSource`; a directory has no budget)."""
    name = name or cfg.data.source
    if name == "freqtrade":
        directory = freqtrade_dir or cfg.data.freqtrade_dir
        if not directory:
            raise SourceError("source freqtrade needs a directory: set data.freqtrade_dir or pass freqtrade_dir / --path")
        return FreqtradeSource(os.path.expanduser(directory))
    if name == "hyperliquid":
        return HyperliquidSource(cfg, background=background)
    raise SourceError(f"unknown market-data source {name!r} (expected 'hyperliquid' or 'freqtrade')")
