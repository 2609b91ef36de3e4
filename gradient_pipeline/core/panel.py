"""Wide panels (bars × coins) built from the long tables, the shape every strategy kernel works on.

A `Panel` holds float64 arrays indexed ``[bar, coin]`` on the regular 4h grid. Columns are sorted by coin name
(Python string order, so `kPEPE` sorts after `ZRO`); the selection's tie-break relies on that order.

* ``close``      close of the candle opening at ``times[t]``; NaN where no candle (gap, not listed yet, delisted).
* ``notional``   ``volume × close`` in USD for that candle; NaN where no candle.
* ``delisted``   True where the universe snapshot marks the coin delisted at that bar (never eligible).
* ``funding``    sum of the hourly (8-hourly before 2023-06-08) funding rates paid for holding the coin over the
                 bar, i.e. funding hours ``h`` with ``times[t] < h <= times[t] + 4h`` (positive: longs pay).
                 Zero where no funding is recorded.

Rows before a coin's first traded candle (volume 0, back-filled prices) are not history: the signal kernel
starts a coin at its first candle with volume > 0, whatever the panel holds before it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gradient_pipeline.timegrid import BAR, BAR_HOURS


@dataclass(frozen=True)
class Panel:
    times: pd.DatetimeIndex  # candle open times, regular 4h grid, naive UTC
    coins: tuple[str, ...]  # sorted
    close: np.ndarray
    notional: np.ndarray
    delisted: np.ndarray
    funding: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.close.shape

    def slice_bars(self, start: int, stop: int) -> "Panel":
        return Panel(
            self.times[start:stop],
            self.coins,
            self.close[start:stop],
            self.notional[start:stop],
            self.delisted[start:stop],
            self.funding[start:stop],
        )

    def truncate(self, last_open) -> "Panel":
        """Only bars with open time <= last_open (what was known once that candle closed)."""
        stop = int(self.times.searchsorted(pd.Timestamp(last_open), side="right"))
        return self.slice_bars(0, stop)


def _grid(times: pd.Series | pd.DatetimeIndex, start=None, end=None) -> pd.DatetimeIndex:
    t = pd.DatetimeIndex(times)
    if len(t) == 0 and (start is None or end is None):
        return pd.DatetimeIndex([], dtype="datetime64[ns]")
    lo = pd.Timestamp(start) if start is not None else t.min()
    hi = pd.Timestamp(end) if end is not None else t.max() + BAR
    lo = lo.ceil(f"{BAR_HOURS}h")
    return pd.date_range(lo, hi, freq=f"{BAR_HOURS}h", inclusive="left").astype("datetime64[ns]")


def panel_from_frames(
    candles: pd.DataFrame,
    funding: pd.DataFrame | None = None,
    universe: pd.DataFrame | None = None,
    start=None,
    end=None,
) -> Panel:
    """Long frames → Panel on the 4h grid ``[start, end)`` (default: the candles' own range).

    ``candles``: ``coin, ts, close, volume`` (volume in base units; ``notional_usd`` is used when present).
    ``funding``: ``coin, ts, rate`` (ts = funding hour). ``universe``: ``ts, coin, is_delisted``.
    Candle timestamps off the 4h grid are an error (they would silently shift returns).
    """
    need = {"coin", "ts", "close", "volume"}
    missing = need - set(candles.columns)
    if missing:
        raise ValueError(f"candles frame lacks columns {sorted(missing)}")
    ts = pd.DatetimeIndex(candles["ts"])
    off = ts != ts.floor(f"{BAR_HOURS}h")
    if off.any():
        bad = candles.loc[np.asarray(off)].iloc[0]
        raise ValueError(f"candle {bad['coin']} at {bad['ts']} is not on the 4h grid")
    if candles.duplicated(["coin", "ts"]).any():
        bad = candles.loc[candles.duplicated(["coin", "ts"])].iloc[0]
        raise ValueError(f"duplicate candle for {bad['coin']} at {bad['ts']}")
    times = _grid(candles["ts"], start, end)
    coins = tuple(sorted(candles["coin"].unique().tolist()))
    T, N = len(times), len(coins)
    col = {c: i for i, c in enumerate(coins)}

    def place(frame: pd.DataFrame, values: np.ndarray, fill: float) -> np.ndarray:
        out = np.full((T, N), fill)
        if len(frame) == 0 or T == 0:
            return out
        r = times.get_indexer(pd.DatetimeIndex(frame["ts"]))
        c = frame["coin"].map(col).to_numpy()
        ok = (r >= 0) & ~pd.isna(c)
        out[r[ok], c[ok].astype(np.int64)] = values[ok]
        return out

    close = place(candles, candles["close"].to_numpy(np.float64), np.nan)
    if "notional_usd" in candles.columns:
        notional_values = candles["notional_usd"].to_numpy(np.float64)
    else:
        notional_values = candles["volume"].to_numpy(np.float64) * candles["close"].to_numpy(np.float64)
    notional = place(candles, notional_values, np.nan)

    fund = np.zeros((T, N))
    if funding is not None and len(funding) and T:
        f = funding[funding["coin"].isin(col)]
        hours = pd.DatetimeIndex(f["ts"]).floor("h")
        # an hour h pays for holding over (h-1h, h]: it belongs to the bar whose open is floor4h(h - 1h)
        bar_open = (hours - pd.Timedelta(hours=1)).floor(f"{BAR_HOURS}h")
        r = times.get_indexer(bar_open)
        c = f["coin"].map(col).to_numpy().astype(np.int64)
        ok = r >= 0
        np.add.at(fund, (r[ok], c[ok]), f["rate"].to_numpy(np.float64)[ok])

    delisted = np.zeros((T, N), dtype=bool)
    if universe is not None and len(universe) and T:
        u = universe[universe["coin"].isin(col) & universe["is_delisted"].astype(bool)]
        if len(u):
            delisted = place(u, np.ones(len(u)), 0.0).astype(bool)
    return Panel(times, coins, close, notional, delisted, fund)


def long_to_wide(frame: pd.DataFrame, value: str, times: pd.DatetimeIndex, coins) -> np.ndarray:
    """One column of a long ``ts, coin, <value>`` frame as a ``[bar, coin]`` array (NaN where absent)."""
    col = {c: i for i, c in enumerate(coins)}
    out = np.full((len(times), len(coins)), np.nan)
    if len(frame):
        r = times.get_indexer(pd.DatetimeIndex(frame["ts"]))
        c = frame["coin"].map(col).to_numpy()
        ok = (r >= 0) & ~pd.isna(c)
        out[r[ok], c[ok].astype(np.int64)] = frame[value].to_numpy(np.float64)[ok]
    return out

