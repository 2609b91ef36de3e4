"""`MarketData`: universe, complete candles and funding history from Hyperliquid's `/info`, as typed frames.

Rules this class enforces so callers don't have to:
- **Only complete candles.** The exchange returns the still-forming candle; a candle counts once its close time
  (`ts + interval`) is at or before the exchange's current time (`client.server_time()`, the replay clock on the
  local exchange).
- **Pagination.** `candleSnapshot` returns at most 5000 candles and `fundingHistory` 500 rows per response; both
  are paged by moving `startTime` past the last returned time until the requested range is covered, a page comes
  back empty, or a page makes no progress.
- **Coins by name.** Asset indices are positions in the exchange's raw universe; delisted coins keep their index.
"""

from __future__ import annotations

import pandas as pd

from gradient_pipeline.exchange.hyperliquid import wire
from gradient_pipeline.exchange.hyperliquid.client import HyperliquidClient
from gradient_pipeline.exchange.hyperliquid.errors import UnknownCoinError, WireFormatError
from gradient_pipeline.timegrid import latest_complete_bar_open, to_ms, utc_naive

FUNDING_INTERVAL_MS = 3_600_000  # hourly funding (8-hourly before 2023-06-08: at worst one extra empty page)
MAX_PAGES = 10_000  # a safety stop far beyond any real history (5000 candles per page)


class MarketData:
    """Market-data reads over a `HyperliquidClient` (rate-limited, retried, timed out).

    Every method that needs "now" asks the exchange (`server_time`) unless the caller passes `now`, which lets a
    refresh over many coins pay for the clock once.
    """

    def __init__(self, client: HyperliquidClient):
        self.client = client

    # ---- universe --------------------------------------------------------------------------------------------

    def universe(self, include_delisted: bool = True) -> pd.DataFrame:
        """One row per raw universe entry from `metaAndAssetCtxs` (weight 20), with asset contexts.

        Columns: `wire.UNIVERSE_COLUMNS` (coin, asset_index, sz_decimals, max_leverage, is_delisted, only_isolated,
        day_ntl_vlm, mark_px, oracle_px, open_interest, funding) then premium, mid_px. `asset_index` is the position
        in the exchange's raw universe; `include_delisted=False` drops delisted rows without renumbering the rest.
        """
        meta, ctxs = wire.split_meta_and_ctxs(self.client.info().meta_and_asset_ctxs())
        df = wire.parse_universe(meta, ctxs)
        if not include_delisted:
            df = df[~df["is_delisted"]].reset_index(drop=True)
        return df

    def listed_coins(self) -> list[str]:
        """Names of the coins that are not delisted, in universe order (exact exchange casing, e.g. `kPEPE`)."""
        df = wire.parse_universe(self.client.info_post({"type": "meta"}))
        return df.loc[~df["is_delisted"], "coin"].tolist()

    # ---- clock -----------------------------------------------------------------------------------------------

    def server_time(self) -> pd.Timestamp:
        """The exchange's current time (naive UTC); see `HyperliquidClient.server_time`."""
        return self.client.server_time()

    def complete_window_end(self, now: pd.Timestamp | None = None) -> pd.Timestamp:
        """Open time of the newest complete 4h candle at the exchange's current time (or at `now`)."""
        return latest_complete_bar_open(self.client.server_time() if now is None else now)

    # ---- candles ---------------------------------------------------------------------------------------------

    def candles(
        self,
        coin: str,
        start,
        end=None,
        interval: str = "4h",
        *,
        now: pd.Timestamp | None = None,
    ) -> pd.DataFrame:
        """Complete candles of `coin` with open time `ts` in `[start, end)` (end default: the exchange's now).

        Returns `wire.CANDLE_COLUMNS` (coin, ts, open, high, low, close, volume, trades), sorted by ts. A candle is
        kept only if `ts + interval <= now`, where `now` is the exchange's time (asked once unless passed).
        Raises `UnknownCoinError` if `coin` is not in the exchange's universe.
        """
        step = wire.interval_ms(interval)
        info = self._info_for(coin)
        now = utc_naive(self.client.server_time() if now is None else now)
        start_ms = to_ms(start)
        end_ms = to_ms(now) if end is None else min(to_ms(end), to_ms(now))
        pages = []
        cursor, prev_last = start_ms, None
        for _ in range(MAX_PAGES):
            if cursor >= end_ms:
                break
            raw = info.candles_snapshot(coin, interval, cursor, end_ms)
            opens = wire.candle_open_ms(raw)
            if not opens or (prev_last is not None and max(opens) <= prev_last):  # empty or no progress
                break
            pages.append(wire.parse_candles(raw, coin))
            prev_last = max(opens)
            if prev_last + step >= end_ms:  # the next candle would open at/after end: range covered
                break
            cursor = prev_last + 1
        else:
            raise WireFormatError(f"candleSnapshot {coin} {interval}: still paging after {MAX_PAGES} pages")
        df = _concat(pages, wire.CANDLE_COLUMNS, wire.parse_candles([], coin))
        # Complete = closed at or before the exchange's now; the forming candle is dropped here.
        keep = (df["ts"] >= utc_naive(start)) & (df["ts"] + pd.Timedelta(milliseconds=step) <= now)
        if end is not None:
            keep &= df["ts"] < utc_naive(end)
        return df[keep].reset_index(drop=True)

    # ---- funding ---------------------------------------------------------------------------------------------

    def funding(self, coin: str, start, end=None, *, now: pd.Timestamp | None = None) -> pd.DataFrame:
        """Funding history of `coin` with `ts` in `[start, end)` (end default: the exchange's now), paged.

        Returns `wire.FUNDING_COLUMNS` (coin, ts with exact ms, rate per interval, premium), sorted by ts.
        Raises `UnknownCoinError` if `coin` is not in the exchange's universe.
        """
        info = self._info_for(coin)
        if end is None:
            end = self.client.server_time() if now is None else now
        start_ms, end_ms = to_ms(start), to_ms(end)
        pages = []
        cursor, prev_last = start_ms, None
        for _ in range(MAX_PAGES):
            if cursor >= end_ms:
                break
            raw = info.funding_history(coin, cursor, end_ms)
            times = wire.funding_time_ms(raw)
            if not times or (prev_last is not None and max(times) <= prev_last):  # empty or no progress
                break
            pages.append(wire.parse_funding(raw, coin))
            prev_last = max(times)
            if prev_last + FUNDING_INTERVAL_MS >= end_ms:  # the next funding time is at/after end: covered
                break
            cursor = prev_last + 1
        else:
            raise WireFormatError(f"fundingHistory {coin}: still paging after {MAX_PAGES} pages")
        df = _concat(pages, wire.FUNDING_COLUMNS, wire.parse_funding([], coin))
        keep = (df["ts"] >= utc_naive(start)) & (df["ts"] < utc_naive(end))
        return df[keep].reset_index(drop=True)

    # ---- helpers ---------------------------------------------------------------------------------------------

    def _info_for(self, coin: str):
        info = self.client.info()
        if coin not in info.name_to_coin:
            raise UnknownCoinError(
                f"coin {coin!r} is not in the perp universe at {self.client.base_url} "
                "(names are case-sensitive; a coin listed after this client fetched meta needs meta(refresh=True))"
            )
        return info


def _concat(pages: list[pd.DataFrame], columns: list[str], empty: pd.DataFrame) -> pd.DataFrame:
    if not pages:
        return empty
    df = pd.concat(pages, ignore_index=True)
    # Overlapping pages (the page boundary candle is returned twice): keep the later copy.
    return df.drop_duplicates(subset=["coin", "ts"], keep="last").sort_values("ts", kind="stable").reset_index(drop=True)[columns]

