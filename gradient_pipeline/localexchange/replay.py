"""Recorded data (freqtrade feather layout) and the replay clock.

Data directory layout (see `shared/data/hyperliquid-freqtrade/PROVENANCE.md`):
`<COIN>_USDC_USDC-4h-futures.feather`, `<COIN>_USDC_USDC-1h-futures.feather` (columns `date` = candle open time,
UTC; `open high low close volume`, volume in base units) and `<COIN>_USDC_USDC-1h-funding_rate.feather` (`date` =
funding time with the exchange's ms jitter, `open` = rate for that interval). A coin needs the 4h file; the 1h
candle and funding files are optional. Files are read with pyarrow and cached per process, so starting many
local exchanges in one test session reads each file once.
"""

from __future__ import annotations

import functools
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pyarrow import feather

HOUR_MS = 3_600_000
INTERVAL_MS = {"1h": HOUR_MS, "4h": 4 * HOUR_MS}
_CANDLE_FILE = re.compile(r"^(?P<coin>.+)_USDC_USDC-4h-futures\.feather$")


class DataError(ValueError):
    """The data directory or a file in it is not usable; the message names the path and the problem."""


@dataclass(frozen=True)
class Candles:
    """One coin's candles at one interval, oldest first. `t` = open time (epoch ms)."""

    t: np.ndarray
    o: np.ndarray
    h: np.ndarray
    l: np.ndarray
    c: np.ndarray
    v: np.ndarray

    def __len__(self) -> int:
        return len(self.t)


@dataclass(frozen=True)
class Funding:
    """One coin's recorded funding events, oldest first. `t` = funding time (epoch ms, with jitter)."""

    t: np.ndarray
    rate: np.ndarray

    def __len__(self) -> int:
        return len(self.t)


def _ms(column) -> np.ndarray:
    # timestamp[ns, tz=UTC] -> int64 epoch ms; the values are UTC instants, so the tz is irrelevant here.
    return column.to_numpy().astype("datetime64[ms]").astype(np.int64)


def _read(path: Path, columns: list[str]):
    try:
        table = feather.read_table(path, columns=columns)
    except Exception as err:  # pyarrow raises several types; one clear message either way
        raise DataError(f"{path}: cannot read feather file ({err})") from err
    return table


@functools.lru_cache(maxsize=2048)
def _load_candles(path: str, mtime: float) -> Candles:
    table = _read(Path(path), ["date", "open", "high", "low", "close", "volume"])
    t = _ms(table.column("date"))
    if len(t) > 1 and not np.all(np.diff(t) > 0):
        raise DataError(f"{path}: candle dates are not strictly increasing")
    cols = [table.column(n).to_numpy().astype(np.float64) for n in ("open", "high", "low", "close", "volume")]
    return Candles(t, *cols)


@functools.lru_cache(maxsize=1024)
def _load_funding(path: str, mtime: float) -> Funding:
    table = _read(Path(path), ["date", "open"])
    t = _ms(table.column("date"))
    if len(t) > 1 and not np.all(np.diff(t) > 0):
        raise DataError(f"{path}: funding dates are not strictly increasing")
    return Funding(t, table.column("open").to_numpy().astype(np.float64))


_EMPTY_CANDLES = Candles(*(np.empty(0, dtype=np.int64),), *(np.empty(0) for _ in range(5)))
_EMPTY_FUNDING = Funding(np.empty(0, dtype=np.int64), np.empty(0))


class RecordedData:
    """Access to one data directory. `coins` restricts it to a subset (unknown names are an error)."""

    def __init__(self, data_dir: str | os.PathLike, coins: list[str] | None = None):
        self.data_dir = Path(data_dir)
        if not self.data_dir.is_dir():
            raise DataError(f"data directory {self.data_dir} does not exist")
        found = sorted(m["coin"] for p in os.listdir(self.data_dir) if (m := _CANDLE_FILE.match(p)))
        if not found:
            raise DataError(f"{self.data_dir}: no '<COIN>_USDC_USDC-4h-futures.feather' files")
        if coins is not None:
            missing = [c for c in coins if c not in found]
            if missing:
                raise DataError(f"{self.data_dir}: no 4h candle file for coin(s) {', '.join(missing)}")
            found = sorted(set(coins))
        self.coin_names: list[str] = found
        self._memo: dict[tuple[str, str], Candles | Funding] = {}  # skips the per-call stat of the shared cache

    def _path(self, coin: str, suffix: str) -> Path:
        return self.data_dir / f"{coin}_USDC_USDC-{suffix}.feather"

    def candles(self, coin: str, interval: str) -> Candles:
        """Recorded candles; an empty `Candles` if the coin has no file for that interval."""
        key = (coin, interval)
        if key not in self._memo:
            self._memo[key] = self._candles(coin, interval)
        return self._memo[key]

    def _candles(self, coin: str, interval: str) -> Candles:
        path = self._path(coin, f"{interval}-futures")
        if not path.exists():
            if interval == "4h":
                raise DataError(f"{path} does not exist")
            return _EMPTY_CANDLES
        return _load_candles(str(path), path.stat().st_mtime)

    def funding(self, coin: str) -> Funding:
        key = (coin, "funding")
        if key not in self._memo:
            self._memo[key] = self._funding(coin)
        return self._memo[key]

    def _funding(self, coin: str) -> Funding:
        path = self._path(coin, "1h-funding_rate")
        if not path.exists():
            return _EMPTY_FUNDING
        return _load_funding(str(path), path.stat().st_mtime)


class ReplayClock:
    """Replay time: `now = anchor_replay + (wall - anchor_wall) * speed`. Speed 0 freezes it (tests); it then moves
    only through `set`/`advance`. The wall clock is `time.monotonic`, so system clock jumps don't leak in."""

    def __init__(self, start_ms: int, speed: float = 0.0, wall=time.monotonic):
        if speed < 0:
            raise ValueError(f"replay speed must be >= 0, got {speed}")
        self._wall = wall
        self._lock = threading.Lock()
        self._anchor_ms = int(start_ms)
        self._anchor_wall = wall()
        self._speed = float(speed)

    @property
    def speed(self) -> float:
        return self._speed

    def now_ms(self) -> int:
        with self._lock:
            return self._anchor_ms + int((self._wall() - self._anchor_wall) * self._speed * 1000)

    def set(self, ms: int, speed: float | None = None) -> int:
        if speed is not None and speed < 0:
            raise ValueError(f"replay speed must be >= 0, got {speed}")
        with self._lock:
            self._anchor_ms = int(ms)
            self._anchor_wall = self._wall()
            if speed is not None:
                self._speed = float(speed)
        return int(ms)

    def advance(self, ms: int) -> int:
        if ms < 0:
            raise ValueError(f"the replay clock only moves forward via advance; got {ms} ms (use set to rewind)")
        return self.set(self.now_ms() + int(ms))
