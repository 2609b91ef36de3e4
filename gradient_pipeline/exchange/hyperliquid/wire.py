"""The one place where Hyperliquid's wire format (decimal strings, epoch milliseconds) becomes typed frames.

Every parser checks the shape it relies on and raises `WireFormatError` naming the request, the item (index and
coin) and the field, so a changed or broken response fails loudly instead of producing NaNs downstream.
Timestamps are naive UTC via `timegrid.from_ms` (project convention).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from gradient_pipeline.exchange.hyperliquid.errors import WireFormatError
from gradient_pipeline.timegrid import from_ms

CANDLE_COLUMNS = ["coin", "ts", "open", "high", "low", "close", "volume", "trades"]
FUNDING_COLUMNS = ["coin", "ts", "rate", "premium"]
# Columns of the `universe` table (docs/ARCHITECTURE.md) except `ts`, which the caller sets to the window open.
UNIVERSE_COLUMNS = [
    "coin", "asset_index", "sz_decimals", "max_leverage", "is_delisted", "only_isolated",
    "day_ntl_vlm", "mark_px", "oracle_px", "open_interest", "funding",
]
# Extra context columns returned by `parse_universe` after the table's columns (not stored in `universe`).
CTX_EXTRA_COLUMNS = ["premium", "mid_px"]

# Asset-context fields the venue always sends (a missing or null one is a changed/broken response, never NaN), and
# the ones it documents as nullable (`premium`, `midPx`, `impactPxs`: e.g. no book, HIP-3 dexes; docs §2.2).
_CTX_REQUIRED = (("day_ntl_vlm", "dayNtlVlm"), ("mark_px", "markPx"), ("oracle_px", "oraclePx"),
                 ("open_interest", "openInterest"), ("funding", "funding"))
_CTX_NULLABLE = (("premium", "premium"), ("mid_px", "midPx"))

# Universe entries flagged with one of these margin modes cannot use cross margin (`onlyIsolated` is deprecated).
_ISOLATED_MARGIN_MODES = frozenset({"strictIsolated", "noCross"})

_INTERVAL_MS = {
    "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
    "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "8h": 28_800_000, "12h": 43_200_000,
    "1d": 86_400_000, "3d": 259_200_000, "1w": 604_800_000,
}


def interval_ms(interval: str) -> int:
    """Length of a candle interval in ms (`"1M"` is calendar-dependent and therefore not supported)."""
    try:
        return _INTERVAL_MS[interval]
    except KeyError:
        raise ValueError(f"candle interval {interval!r} not supported; use one of {sorted(_INTERVAL_MS)}") from None


# ---- scalar helpers ---------------------------------------------------------------------------------------------


def _num(value: Any, where: str, field: str, *, nullable: bool = False) -> float:
    """Decimal string (or number) -> float; `None` -> NaN only when `nullable`."""
    if value is None:
        if nullable:
            return math.nan
        raise WireFormatError(f"{where}: field {field!r} is missing or null")
    if isinstance(value, bool):
        raise WireFormatError(f"{where}: field {field!r} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise WireFormatError(f"{where}: field {field!r} is not a number: {value!r}") from None
    if not math.isfinite(out):
        raise WireFormatError(f"{where}: field {field!r} is not finite: {value!r}")
    return out


def _int(value: Any, where: str, field: str) -> int:
    if isinstance(value, bool) or value is None:
        raise WireFormatError(f"{where}: field {field!r} must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise WireFormatError(f"{where}: field {field!r} must be an integer, got {value!r}")


def _field(item: Mapping, key: str, where: str) -> Any:
    if key not in item:
        raise WireFormatError(f"{where}: field {key!r} is missing")
    return item[key]


def _as_list(payload: Any, what: str) -> Sequence:
    if not isinstance(payload, list):
        shown = repr(payload)[:200]
        raise WireFormatError(f"{what}: expected a JSON array, got {type(payload).__name__}: {shown}")
    return payload


def _ts_column(ms_values: list[int]) -> pd.Series:
    return pd.Series([from_ms(v) for v in ms_values], dtype="datetime64[ns]")


# ---- candles ----------------------------------------------------------------------------------------------------


def parse_candles(payload: Any, coin: str | None = None) -> pd.DataFrame:
    """`candleSnapshot` response -> frame [coin, ts (naive-UTC open time), open, high, low, close, volume, trades].

    Prices/volume float64, trades int64, sorted by ts, one row per ts (pages may overlap: the later copy wins).
    `coin` is what was asked for; every row must carry that coin in `s` when given.
    """
    what = f"candleSnapshot {coin}" if coin else "candleSnapshot"
    rows = _as_list(payload, what)
    coins, ts, o, h, lo, c, v, n = [], [], [], [], [], [], [], []
    for i, item in enumerate(rows):
        where = f"{what} item {i}"
        if not isinstance(item, Mapping):
            raise WireFormatError(f"{where}: expected an object, got {item!r}"[:300])
        s = _field(item, "s", where)
        if not isinstance(s, str) or (coin is not None and s != coin):
            raise WireFormatError(f"{where}: field 's' is {s!r}, expected coin {coin!r}")
        t = _int(_field(item, "t", where), where, "t")
        where = f"{what} item {i} (t={t})"
        coins.append(s)
        ts.append(t)
        o.append(_num(_field(item, "o", where), where, "o"))
        h.append(_num(_field(item, "h", where), where, "h"))
        lo.append(_num(_field(item, "l", where), where, "l"))
        c.append(_num(_field(item, "c", where), where, "c"))
        v.append(_num(_field(item, "v", where), where, "v"))
        n.append(_int(_field(item, "n", where), where, "n"))
    df = pd.DataFrame(
        {
            "coin": pd.Series(coins, dtype=object),
            "ts": _ts_column(ts),
            "open": np.asarray(o, dtype="float64"),
            "high": np.asarray(h, dtype="float64"),
            "low": np.asarray(lo, dtype="float64"),
            "close": np.asarray(c, dtype="float64"),
            "volume": np.asarray(v, dtype="float64"),
            "trades": np.asarray(n, dtype="int64"),
        },
        columns=CANDLE_COLUMNS,
    )
    return _sorted_unique(df, ["coin", "ts"])


def candle_open_ms(payload: Any) -> list[int]:
    """The `t` (open time, ms) of every candle in a raw page, in response order (for pagination)."""
    rows = _as_list(payload, "candleSnapshot")
    return [_int(_field(r, "t", f"candleSnapshot item {i}"), f"candleSnapshot item {i}", "t") for i, r in enumerate(rows)]


# ---- funding ----------------------------------------------------------------------------------------------------


def parse_funding(payload: Any, coin: str | None = None) -> pd.DataFrame:
    """`fundingHistory` response -> frame [coin, ts (naive UTC, exact ms kept), rate, premium] sorted by ts.

    `rate` is the funding rate per interval (hourly since 2023-06-08, 8-hourly before); positive: longs pay.
    """
    what = f"fundingHistory {coin}" if coin else "fundingHistory"
    rows = _as_list(payload, what)
    coins, ts, rate, prem = [], [], [], []
    for i, item in enumerate(rows):
        where = f"{what} item {i}"
        if not isinstance(item, Mapping):
            raise WireFormatError(f"{where}: expected an object, got {item!r}"[:300])
        s = _field(item, "coin", where)
        if not isinstance(s, str) or (coin is not None and s != coin):
            raise WireFormatError(f"{where}: field 'coin' is {s!r}, expected {coin!r}")
        t = _int(_field(item, "time", where), where, "time")
        where = f"{what} item {i} (time={t})"
        coins.append(s)
        ts.append(t)
        rate.append(_num(_field(item, "fundingRate", where), where, "fundingRate"))
        prem.append(_num(item.get("premium"), where, "premium", nullable=True))
    df = pd.DataFrame(
        {
            "coin": pd.Series(coins, dtype=object),
            "ts": _ts_column(ts),
            "rate": np.asarray(rate, dtype="float64"),
            "premium": np.asarray(prem, dtype="float64"),
        },
        columns=FUNDING_COLUMNS,
    )
    return _sorted_unique(df, ["coin", "ts"])


def funding_time_ms(payload: Any) -> list[int]:
    """The `time` (ms) of every row in a raw `fundingHistory` page, in response order (for pagination)."""
    rows = _as_list(payload, "fundingHistory")
    return [_int(_field(r, "time", f"fundingHistory item {i}"), f"fundingHistory item {i}", "time") for i, r in enumerate(rows)]


# ---- universe -----------------------------------------------------------------------------------------------------


def parse_universe(meta: Any, ctxs: Any | None = None) -> pd.DataFrame:
    """`meta` (and optionally the ctx list of `metaAndAssetCtxs`) -> one row per **raw** universe entry.

    `asset_index` is the entry's position in the raw `universe` array (the exchange's asset id); delisted coins
    keep their row with `is_delisted=True`, so filtering them later never shifts another coin's index.
    Columns: `UNIVERSE_COLUMNS` then `CTX_EXTRA_COLUMNS`; ctx columns are NaN when `ctxs` is None. With contexts,
    `markPx`, `oraclePx`, `funding`, `openInterest` and `dayNtlVlm` are required (missing or null raises
    `WireFormatError` naming the coin and the field); only `premium` and `midPx` may be null (→ NaN).
    """
    if not isinstance(meta, Mapping) or not isinstance(meta.get("universe"), list):
        raise WireFormatError(f"meta: expected an object with a 'universe' array, got {repr(meta)[:200]}")
    universe = meta["universe"]
    if ctxs is not None:
        ctxs = _as_list(ctxs, "metaAndAssetCtxs contexts")
        if len(ctxs) != len(universe):
            raise WireFormatError(
                f"metaAndAssetCtxs: {len(ctxs)} asset contexts for {len(universe)} universe entries (must be equal)"
            )
    rows = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(universe):
        where = f"meta universe[{i}]"
        if not isinstance(entry, Mapping):
            raise WireFormatError(f"{where}: expected an object, got {entry!r}"[:300])
        name = _field(entry, "name", where)
        if not isinstance(name, str) or not name:
            raise WireFormatError(f"{where}: field 'name' must be a non-empty string, got {name!r}")
        if name in seen:
            raise WireFormatError(f"{where}: coin {name!r} also appears at universe[{seen[name]}]")
        seen[name] = i
        where = f"meta universe[{i}] ({name})"
        row = {
            "coin": name,
            "asset_index": i,
            "sz_decimals": _int(_field(entry, "szDecimals", where), where, "szDecimals"),
            "max_leverage": _int(_field(entry, "maxLeverage", where), where, "maxLeverage"),
            "is_delisted": bool(entry.get("isDelisted", False)),
            "only_isolated": bool(entry.get("onlyIsolated", False)) or entry.get("marginMode") in _ISOLATED_MARGIN_MODES,
        }
        if ctxs is None:  # plain `meta`: no contexts, every context column is NaN
            row.update({col: math.nan for col, _ in _CTX_REQUIRED + _CTX_NULLABLE})
        else:
            ctx = ctxs[i]
            cwhere = f"metaAndAssetCtxs ctx[{i}] (coin {name})"
            if not isinstance(ctx, Mapping):
                raise WireFormatError(f"{cwhere}: expected an object, got {ctx!r}"[:300])
            for col, key in _CTX_REQUIRED:
                row[col] = _num(_field(ctx, key, cwhere), cwhere, key)
            for col, key in _CTX_NULLABLE:
                row[col] = _num(ctx.get(key), cwhere, key, nullable=True)
        rows.append(row)
    df = pd.DataFrame(rows, columns=UNIVERSE_COLUMNS + CTX_EXTRA_COLUMNS)
    return df.astype(
        {
            "coin": object, "asset_index": "int64", "sz_decimals": "int64", "max_leverage": "int64",
            "is_delisted": bool, "only_isolated": bool,
            **{c: "float64" for c in ["day_ntl_vlm", "mark_px", "oracle_px", "open_interest", "funding", *CTX_EXTRA_COLUMNS]},
        }
    )


def split_meta_and_ctxs(payload: Any) -> tuple[Mapping, list]:
    """`metaAndAssetCtxs` response `[meta, [ctx, …]]` -> (meta, ctxs)."""
    if not isinstance(payload, list) or len(payload) != 2:
        raise WireFormatError(f"metaAndAssetCtxs: expected a 2-element array [meta, contexts], got {repr(payload)[:200]}")
    return payload[0], payload[1]


# ---- exchange clock ---------------------------------------------------------------------------------------------


def parse_server_time(payload: Any) -> pd.Timestamp | None:
    """`exchangeStatus` response -> the exchange's current time (naive UTC), or None when it has no `time`."""
    if not isinstance(payload, Mapping) or payload.get("time") is None:
        return None
    return from_ms(_int(payload["time"], "exchangeStatus", "time"))


def _sorted_unique(df: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    if df.empty:
        return df.reset_index(drop=True)
    return df.drop_duplicates(subset=key, keep="last").sort_values(key, kind="stable").reset_index(drop=True)
