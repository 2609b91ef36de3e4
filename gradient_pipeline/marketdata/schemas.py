"""Pandera schemas for every market-data frame, checked *before* anything is written to DuckDB.

`validate(frame, schema)` runs the schema lazily (all rules, all rows) and, on failure, raises
`MarketDataValidationError` whose message lists each bad row as `coin, time: rule` so an operator can find it.
The OHLC repair policy (`repair_ohlc`) runs before validation; see docs/TABLES.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from gradient_pipeline.timegrid import BAR_HOURS

# A candle whose high/low disagrees with its open/close by at most this fraction of the price is an aggregation
# artefact (the exchange's open is the previous close, outside the bar's traded range after a gap): it is repaired
# by widening high/low and flagged `ohlc_repaired`. A larger disagreement means corrupt data and fails validation.
# The real data's 61 such rows disagree by at most 7.3% (all pre-first-trade back-fill, dropped before this runs).
# Configurable as `validation.ohlc_repair_max_pct`.
OHLC_REPAIR_MAX_FRACTION = 0.10

MAX_FAILURES_IN_MESSAGE = 20


class MarketDataValidationError(ValueError):
    """A frame broke a schema rule; the message names table, coin, time and rule for each bad row."""

    def __init__(self, message: str, failures: pd.DataFrame):
        super().__init__(message)
        self.failures = failures


def _on_grid(hours: int):
    def check(ts: pd.Series) -> pd.Series:
        return ts == ts.dt.floor(f"{hours}h")

    return check


def _price(name: str) -> pa.Column:
    return pa.Column(float, [pa.Check.gt(0, error="price must be > 0"),
                             pa.Check(np.isfinite, element_wise=False, error="price must be finite")],
                     nullable=False, title=name)


CANDLES = pa.DataFrameSchema(
    name="candles",
    columns={
        "coin": pa.Column(str, pa.Check.str_length(min_value=1), nullable=False),
        "ts": pa.Column("datetime64[ns]", pa.Check(_on_grid(BAR_HOURS), error="ts must be on the 4h UTC grid"),
                        nullable=False),
        "open": _price("open"),
        "high": _price("high"),
        "low": _price("low"),
        "close": _price("close"),
        "volume": pa.Column(float, [pa.Check.ge(0, error="volume must be >= 0"),
                                    pa.Check(np.isfinite, element_wise=False, error="volume must be finite")],
                            nullable=False),
        "notional_usd": pa.Column(float, pa.Check.ge(0), nullable=False),
        "ohlc_repaired": pa.Column(bool, nullable=False),
        "source": pa.Column(str, pa.Check.isin(["hyperliquid", "freqtrade"]), nullable=False),
        "ingested_at": pa.Column("datetime64[ns]", nullable=False),
    },
    checks=[
        pa.Check(lambda d: d["high"] >= d["low"], error="high >= low"),
        pa.Check(lambda d: d["high"] >= d[["open", "close"]].max(axis=1), error="high >= max(open, close)"),
        pa.Check(lambda d: d["low"] <= d[["open", "close"]].min(axis=1), error="low <= min(open, close)"),
    ],
    unique=["coin", "ts"],
    report_duplicates="all",
    strict=True,
    ordered=False,
)

FUNDING = pa.DataFrameSchema(
    name="funding",
    columns={
        "coin": pa.Column(str, pa.Check.str_length(min_value=1), nullable=False),
        "ts": pa.Column("datetime64[ns]", pa.Check(_on_grid(1), error="ts must be on the hour"), nullable=False),
        "rate": pa.Column(float, pa.Check(np.isfinite, element_wise=False, error="rate must be finite"),
                          nullable=False),
        "premium": pa.Column(float, nullable=True),
    },
    unique=["coin", "ts"],
    report_duplicates="all",
    strict=True,
)

UNIVERSE = pa.DataFrameSchema(
    name="universe",
    columns={
        "ts": pa.Column("datetime64[ns]", pa.Check(_on_grid(BAR_HOURS), error="ts must be on the 4h UTC grid"),
                        nullable=False),
        "coin": pa.Column(str, pa.Check.str_length(min_value=1), nullable=False),
        "asset_index": pa.Column("Int64", pa.Check.ge(0), nullable=True),
        "sz_decimals": pa.Column("Int64", pa.Check.in_range(0, 10), nullable=True),
        "max_leverage": pa.Column("Int64", pa.Check.ge(1), nullable=True),
        "is_delisted": pa.Column(bool, nullable=False),
        "only_isolated": pa.Column("boolean", nullable=True),
        "day_ntl_vlm": pa.Column(float, pa.Check.ge(0), nullable=True),
        "mark_px": pa.Column(float, pa.Check.gt(0), nullable=True),
        "oracle_px": pa.Column(float, pa.Check.gt(0), nullable=True),
        "open_interest": pa.Column(float, pa.Check.ge(0), nullable=True),
        "funding": pa.Column(float, nullable=True),
    },
    unique=["ts", "coin"],
    report_duplicates="all",
    strict=True,
)


def _describe(frame: pd.DataFrame, failures: pd.DataFrame, table: str) -> str:
    """One line per (row, rule): `coin X at T: rule R (values)`; frame-level checks report once per row."""
    lines = []
    seen = set()
    for _, f in failures.iterrows():
        idx, rule = f.get("index"), str(f.get("check"))
        if rule == "multiple_fields_uniqueness":
            rule = "unique (coin, ts)" if "coin" in frame else "unique key"
        key = (idx, rule)
        if key in seen:
            continue
        seen.add(key)
        if idx is None or pd.isna(idx) or idx not in frame.index:
            lines.append(f"  - {table} (whole frame): rule '{rule}' failed ({f.get('failure_case')!r})")
            continue
        row = frame.loc[idx]
        where = f"coin {row.get('coin', '?')} at {row.get('ts', '?')}"
        if f.get("schema_context") == "Column":
            detail = f"{f.get('column')}={f.get('failure_case')}"
        else:
            ohlc_rule = "ohlc" in rule or "open" in rule or rule == "high >= low"
            cols = [c for c in ("open", "high", "low", "close") if c in frame] if ohlc_rule else []
            detail = ", ".join(f"{c}={float(row[c]):.10g}" for c in cols) or "duplicate row"
        lines.append(f"  - {where}: rule '{rule}' failed ({detail})")
    shown = lines[:MAX_FAILURES_IN_MESSAGE]
    more = len(lines) - len(shown)
    head = f"{table}: {len(lines)} validation failure(s); nothing was written:"
    return "\n".join([head, *shown] + ([f"  … and {more} more"] if more > 0 else []))


def validate(frame: pd.DataFrame, schema: pa.DataFrameSchema) -> pd.DataFrame:
    """Validate every rule on every row; raise `MarketDataValidationError` naming coin, time and rule."""
    try:
        return schema.validate(frame, lazy=True)
    except SchemaErrors as err:
        failures = err.failure_cases
        raise MarketDataValidationError(_describe(frame, failures, schema.name or "frame"), failures) from None


def repair_ohlc(frame: pd.DataFrame, max_fraction: float = OHLC_REPAIR_MAX_FRACTION) -> tuple[pd.DataFrame, pd.Series]:
    """Widen high/low to include open/close where they fall short by at most `max_fraction` of the price.

    Only ever widens: high is raised to max(open, close) and/or low lowered to min(open, close); a range is never
    narrowed. An inverted bar (high < low) is corrupt, not an aggregation artefact, and is never repaired.
    Returns the repaired frame (with `ohlc_repaired` set on the touched rows) and the boolean mask of repaired rows.
    Rows that disagree by more, or are inverted, are left as they are, so validation rejects them by name.
    """
    out = frame.copy()
    body_hi = out[["open", "close"]].max(axis=1)
    body_lo = out[["open", "close"]].min(axis=1)
    hi_gap = (body_hi - out["high"]) / body_hi
    lo_gap = (out["low"] - body_lo) / body_lo
    bad = (hi_gap > 0) | (lo_gap > 0)
    positive = (out[["open", "high", "low", "close"]] > 0).all(axis=1)  # non-positive prices are rejected, not fixed
    ordered = out["high"] >= out["low"]
    fixable = bad & positive & ordered & (hi_gap <= max_fraction) & (lo_gap <= max_fraction)
    out.loc[fixable, "high"] = np.maximum(out.loc[fixable, "high"], body_hi[fixable])
    out.loc[fixable, "low"] = np.minimum(out.loc[fixable, "low"], body_lo[fixable])
    flag = out["ohlc_repaired"].astype(bool) if "ohlc_repaired" in out else pd.Series(False, index=out.index)
    out["ohlc_repaired"] = flag | fixable
    return out, fixable
