"""Read a freqtrade data directory (Hyperliquid futures layout) into tidy, naive-UTC frames.

Layout (what `freqtrade download-data --exchange hyperliquid --trading-mode futures` writes):

    <dir>/<COIN>_USDC_USDC-4h-futures.feather        candles, `date` = open time (tz-aware UTC)
    <dir>/<COIN>_USDC_USDC-1h-futures.feather        1h candles
    <dir>/<COIN>_USDC_USDC-1h-funding_rate.feather   funding; `open` = rate for the interval, other columns 0

Candle volume is in base-asset units. The exchange back-fills prices (with zero volume) for the time before
a coin started trading; those rows are not traded history, so `load_candles` starts each coin at its first
candle with volume > 0. Funding timestamps carry Hyperliquid's millisecond jitter (`00:00:00.048`); they are
floored to the hour so a funding row is keyed by the hour it pays for.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow.feather as feather

from gradient_pipeline.timegrid import utc_naive

CANDLE_COLUMNS = ["coin", "ts", "open", "high", "low", "close", "volume"]
FUNDING_COLUMNS = ["coin", "ts", "rate"]
_QUOTE = "_USDC_USDC"
_CANDLE_RE = re.compile(rf"^(?P<coin>.+){_QUOTE}-(?P<tf>[0-9]+[mhdw])-futures\.feather$")
_FUNDING_RE = re.compile(rf"^(?P<coin>.+){_QUOTE}-(?P<tf>[0-9]+[mhdw])-funding_rate\.feather$")


class FreqtradeDataError(ValueError):
    """The freqtrade directory is missing, lacks a requested coin, or holds a malformed file (message names it)."""


def candle_path(directory: str | os.PathLike, coin: str, timeframe: str = "4h") -> Path:
    return Path(directory) / f"{coin}{_QUOTE}-{timeframe}-futures.feather"


def funding_path(directory: str | os.PathLike, coin: str) -> Path:
    return Path(directory) / f"{coin}{_QUOTE}-1h-funding_rate.feather"


def _check_dir(directory: str | os.PathLike) -> Path:
    d = Path(directory)
    if not d.is_dir():
        raise FreqtradeDataError(f"freqtrade data directory {d} does not exist or is not a directory")
    return d


def list_coins(directory: str | os.PathLike, timeframe: str = "4h") -> list[str]:
    """Coins with a `<timeframe>` candle file in `directory`, sorted (case-sensitive: `kPEPE` stays `kPEPE`)."""
    d = _check_dir(directory)
    coins = []
    for name in os.listdir(d):
        m = _CANDLE_RE.match(name)
        if m and m["tf"] == timeframe:
            coins.append(m["coin"])
    return sorted(coins)


def list_funding_coins(directory: str | os.PathLike) -> list[str]:
    """Coins with a `…-1h-funding_rate.feather` file in `directory`, sorted."""
    d = _check_dir(directory)
    return sorted(m["coin"] for m in map(_FUNDING_RE.match, os.listdir(d)) if m)


def _bounds(start, end) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    s = utc_naive(start) if start is not None else None
    e = utc_naive(end) if end is not None else None
    if s is not None and e is not None and e < s:
        raise ValueError(f"end {e} is before start {s}")
    return s, e


def _read(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise FreqtradeDataError(f"missing freqtrade file {path}")
    try:
        frame = feather.read_table(path, columns=columns).to_pandas()
    except Exception as err:  # pyarrow raises several types; the caller needs the file name
        raise FreqtradeDataError(f"cannot read freqtrade file {path}: {err}") from err
    dates = frame["date"]
    if not isinstance(dates.dtype, pd.DatetimeTZDtype):
        if pd.api.types.is_datetime64_any_dtype(dates):
            dates = dates.dt.tz_localize("UTC")  # freqtrade always writes UTC; accept a naive column as UTC
        else:
            raise FreqtradeDataError(f"{path}: column 'date' is {dates.dtype}, expected a timestamp")
    frame["date"] = dates.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]")
    return frame


def _coins(directory: Path, coins: Iterable[str] | None, timeframe: str) -> list[str]:
    if coins is None:
        return list_coins(directory, timeframe)
    return list(dict.fromkeys(coins))  # keep order, drop repeats


def read_candle_file(directory: str | os.PathLike, coin: str, timeframe: str = "4h") -> pd.DataFrame:
    """One coin's whole candle file (including pre-trade rows) as `ts, open, high, low, close, volume`."""
    frame = _read(candle_path(directory, coin, timeframe), ["date", "open", "high", "low", "close", "volume"])
    return frame.rename(columns={"date": "ts"})


def load_candles(
    directory: str | os.PathLike,
    coins: Iterable[str] | None = None,
    start=None,
    end=None,
    timeframe: str = "4h",
    traded_only: bool = True,
) -> pd.DataFrame:
    """Candles `coin, ts, open, high, low, close, volume` with `start <= ts < end` (ts = open time, naive UTC).

    Rows before each coin's first traded candle (volume > 0) are dropped (`traded_only=False` keeps them, for
    reports about what was dropped); a coin that never traded contributes nothing. Sorted by (coin, ts).
    A requested coin without a file raises `FreqtradeDataError`.
    """
    d = _check_dir(directory)
    s, e = _bounds(start, end)
    parts = []
    for coin in _coins(d, coins, timeframe):
        f = read_candle_file(d, coin, timeframe)
        if traded_only:
            traded = f["volume"].to_numpy() > 0
            if not traded.any():
                continue
            f = f.iloc[int(traded.argmax()):]
        if s is not None:
            f = f[f["ts"] >= s]
        if e is not None:
            f = f[f["ts"] < e]
        if len(f):
            f = f.copy()
            f.insert(0, "coin", coin)
            parts.append(f)
    if not parts:
        return _empty(CANDLE_COLUMNS)
    out = pd.concat(parts, ignore_index=True)[CANDLE_COLUMNS]
    return out.sort_values(["coin", "ts"], kind="stable").reset_index(drop=True)


def load_funding(
    directory: str | os.PathLike,
    coins: Iterable[str] | None = None,
    start=None,
    end=None,
) -> pd.DataFrame:
    """Funding `coin, ts, rate` with `start <= ts < end`; ts = funding hour (naive UTC, jitter floored away).

    `rate` is the rate for that interval (8h before 2023-06-08, 1h after); positive means longs pay shorts.
    Coins without a funding file are skipped when `coins` is None and raise when asked for by name.
    """
    d = _check_dir(directory)
    s, e = _bounds(start, end)
    if coins is None:
        coins = list_funding_coins(d)
    parts = []
    for coin in dict.fromkeys(coins):
        path = funding_path(d, coin)
        f = _read(path, ["date", "open"]).rename(columns={"open": "rate"})
        f["ts"] = f.pop("date").dt.floor("h")
        if s is not None:
            f = f[f["ts"] >= s]
        if e is not None:
            f = f[f["ts"] < e]
        if f["ts"].duplicated().any():
            dup = f.loc[f["ts"].duplicated(), "ts"].iloc[0]
            raise FreqtradeDataError(f"{path}: two funding records in the hour {dup}")
        if len(f):
            f.insert(0, "coin", coin)
            parts.append(f[FUNDING_COLUMNS])
    if not parts:
        return _empty(FUNDING_COLUMNS)
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["coin", "ts"], kind="stable").reset_index(drop=True)


def coverage(directory: str | os.PathLike, coins: Iterable[str] | None = None, timeframe: str = "4h") -> pd.DataFrame:
    """Per coin: `first_ts` (first row), `first_traded` (first volume > 0, NaT if never), `last_ts` (last row).

    The freqtrade source uses this to decide which coins are listed in a window.
    """
    d = _check_dir(directory)
    rows = []
    for coin in _coins(d, coins, timeframe):
        f = _read(candle_path(d, coin, timeframe), ["date", "volume"])
        if not len(f):
            continue
        traded = f["volume"].to_numpy() > 0
        rows.append(
            {
                "coin": coin,
                "first_ts": f["date"].iloc[0],
                "first_traded": f["date"].iloc[int(traded.argmax())] if traded.any() else pd.NaT,
                "last_ts": f["date"].iloc[-1],
            }
        )
    out = pd.DataFrame(rows, columns=["coin", "first_ts", "first_traded", "last_ts"])
    for c in ("first_ts", "first_traded", "last_ts"):
        out[c] = out[c].astype("datetime64[ns]")
    return out


def _empty(columns: list[str]) -> pd.DataFrame:
    dtypes = {"coin": "object", "ts": "datetime64[ns]"}
    return pd.DataFrame({c: pd.Series(dtype=dtypes.get(c, "float64")) for c in columns})
