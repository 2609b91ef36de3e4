"""The 4h UTC bar grid, and the one place where exchange milliseconds become timestamps.

Convention used everywhere in the project: timestamps are **naive UTC** (`pandas.Timestamp` without tz,
DuckDB `TIMESTAMP`). A candle is identified by its **open time** `ts`; it closes at `ts + 4h` and only
counts once that close time has passed. The Dagster partition whose window is `[ts, ts + 4h)` holds
the candle that opens at `ts`; strategy outputs for that partition are for `rebalance_time = ts + 4h`.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

BAR_HOURS = 4
BAR = pd.Timedelta(hours=BAR_HOURS)
BAR_MS = BAR_HOURS * 3600 * 1000
PARTITION_FMT = "%Y-%m-%d-%H:%M"


def utc_naive(ts) -> pd.Timestamp:
    """Any timestamp-like (aware or naive-UTC, str, datetime) -> naive UTC `pd.Timestamp`."""
    t = pd.Timestamp(ts)
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return t


def from_ms(ms: int | float) -> pd.Timestamp:
    """Exchange epoch milliseconds -> naive UTC timestamp."""
    return pd.Timestamp(int(ms), unit="ms")


def to_ms(ts) -> int:
    """Naive-UTC (or aware) timestamp -> epoch milliseconds."""
    return int(utc_naive(ts).value // 1_000_000)


def now_utc() -> pd.Timestamp:
    return pd.Timestamp(dt.datetime.now(dt.timezone.utc)).tz_localize(None)


def floor_bar(ts) -> pd.Timestamp:
    """Open time of the 4h bar containing `ts`."""
    return utc_naive(ts).floor(f"{BAR_HOURS}h")


def latest_complete_bar_open(now) -> pd.Timestamp:
    """Open time of the newest candle whose close time (open + 4h) is at or before `now`."""
    return floor_bar(now) - BAR


def partition_key(bar_open) -> str:
    return utc_naive(bar_open).strftime(PARTITION_FMT)


def parse_partition_key(key: str) -> pd.Timestamp:
    return pd.Timestamp(dt.datetime.strptime(key, PARTITION_FMT))


def bar_range(start, end) -> pd.DatetimeIndex:
    """Bar open times t with start <= t < end, on the grid."""
    s = utc_naive(start).ceil(f"{BAR_HOURS}h")
    return pd.date_range(s, utc_naive(end), freq=f"{BAR_HOURS}h", inclusive="left")
