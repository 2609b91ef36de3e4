"""Plausibility bounds on market data: values that are well-formed but cannot be real are refused by name.

The pandera schemas (`schemas.py`) check structure (types, grid, uniqueness, OHLC consistency); this module checks
magnitudes against configurable bounds (`validation` section of the configuration, docs/TABLES.md):

* funding: |rate| <= `max_funding_per_hour` × the hours its record covers (the venue caps funding at 4%/hour;
  records before 2023-06-08 01:00 cover 8 hours, later ones 1 hour);
* candles: a bar whose high is above `max_bar_move_ratio` × the previous close, or whose low is below
  previous close / `max_bar_move_ratio` (a 1000× print, a decimal-point slip);
* live asset contexts: mark and oracle price within `mark_oracle_band_pct` % of the mid, where a mid is known.

Every function is pure and raises `MarketDataValidationError` listing each refused row as `coin X at T: rule …`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gradient_pipeline.marketdata.schemas import MAX_FAILURES_IN_MESSAGE, MarketDataValidationError

# Hyperliquid paid funding every 8 hours until 2023-06-08 00:00 UTC and every hour from 01:00 that day
# (the SDK's recorded fundingHistory shows the switch).
HOURLY_FUNDING_SINCE = pd.Timestamp("2023-06-08 01:00")


def funding_interval_hours(ts: pd.Series) -> np.ndarray:
    """Hours covered by each funding record: 8 before `HOURLY_FUNDING_SINCE`, 1 from then on."""
    return np.where(ts.to_numpy() < HOURLY_FUNDING_SINCE.to_datetime64(), 8.0, 1.0)


def _raise(table: str, lines: list[str], failures: pd.DataFrame) -> None:
    shown = lines[:MAX_FAILURES_IN_MESSAGE]
    more = len(lines) - len(shown)
    head = f"{table}: {len(lines)} implausible value(s); nothing was written:"
    raise MarketDataValidationError("\n".join([head, *shown] + ([f"  … and {more} more"] if more > 0 else [])),
                                    failures)


def _g(x: float) -> str:
    return f"{float(x):.10g}"


def check_funding(frame: pd.DataFrame, max_per_hour: float) -> None:
    """Refuse any funding rate beyond the venue's cap, scaled to the record's interval."""
    if frame.empty:
        return
    hours = funding_interval_hours(frame["ts"])
    cap = max_per_hour * hours
    bad = ~(np.abs(frame["rate"].to_numpy(dtype=float)) <= cap)
    if not bad.any():
        return
    rows = frame[bad]
    lines = [
        f"  - coin {r.coin} at {r.ts}: rule '|rate| <= {max_per_hour:g} per hour ({_g(c)} per {h:g}h record)' "
        f"failed (rate={_g(r.rate)})"
        for r, c, h in zip(rows.itertuples(index=False), cap[bad], hours[bad])
    ]
    _raise("funding", lines, rows[["coin", "ts", "rate"]].assign(rule="funding cap"))


def check_price_moves(frame: pd.DataFrame, previous_close: pd.Series, max_ratio: float) -> None:
    """Refuse a bar whose high/low moved more than `max_ratio`× (or 1/`max_ratio`) from the previous close.

    `frame`: candles sorted or not, `coin, ts, open, high, low, close`; `previous_close`: stored close of the bar
    before the frame's first bar, indexed by coin (coins without one are checked from their second bar on).
    """
    if frame.empty:
        return
    f = frame.sort_values(["coin", "ts"], kind="stable")
    prev = f.groupby("coin", sort=False)["close"].shift(1)
    first = prev.isna()
    prev = prev.where(~first, f["coin"].map(previous_close))
    hi = f["high"] / prev
    lo = f["low"] / prev
    bad = (hi > max_ratio) | (lo < 1.0 / max_ratio)
    if not bad.any():
        return
    rows = f[bad]
    lines = [
        f"  - coin {r.coin} at {r.ts}: rule 'price within {max_ratio:g}x of the previous close' failed "
        f"(previous close={_g(p)}, open={_g(r.open)}, high={_g(r.high)}, low={_g(r.low)}, close={_g(r.close)})"
        for r, p in zip(rows.itertuples(index=False), prev[bad])
    ]
    _raise("candles", lines, rows[["coin", "ts", "high", "low"]].assign(previous_close=prev[bad], rule="price move"))


def check_live_contexts(live: pd.DataFrame, band_pct: float, window) -> None:
    """Refuse live mark/oracle prices further than `band_pct` % from the mid (rows without a mid are not checked)."""
    if live is None or live.empty or "mid_px" not in live:
        return
    lines, bad_rows = [], []
    for r in live.itertuples(index=False):
        mid = r.mid_px
        if not (np.isfinite(mid) and mid > 0):
            continue
        for field in ("mark_px", "oracle_px"):
            px = getattr(r, field)
            if not (abs(px / mid - 1.0) * 100 <= band_pct):
                lines.append(f"  - coin {r.coin} at {window}: rule '{field} within {band_pct:g}% of mid_px' failed "
                             f"({field}={_g(px)}, mid_px={_g(mid)})")
                bad_rows.append({"coin": r.coin, "field": field, "value": px, "mid_px": mid})
    if lines:
        _raise("universe (live asset contexts)", lines, pd.DataFrame(bad_rows))
