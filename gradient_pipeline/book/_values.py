"""Plain Python values for the database drivers (numpy scalars, pandas timestamps and NaN are not portable)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd


def ts(value) -> dt.datetime | None:
    """A naive-UTC `datetime` from anything time-like (str, pandas, numpy, aware datetimes are converted)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    t = pd.Timestamp(value)
    if t is pd.NaT:
        return None
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return t.to_pydatetime()


def py(value):
    """numpy scalars → Python, NaN/NaT/NA → None, pandas/numpy timestamps → naive datetime."""
    if value is None:
        return None
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return ts(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def row(d: dict) -> dict:
    return {k: py(v) for k, v in d.items()}
