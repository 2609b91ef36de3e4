"""Pandera rules and the OHLC repair policy, on frames (no Dagster)."""

from __future__ import annotations

import pandas as pd
import pytest

from gradient_pipeline.marketdata import freqtrade as ft
from gradient_pipeline.marketdata import schemas
from gradient_pipeline.marketdata.transform import prepare_candles


def _rows(**overrides) -> pd.DataFrame:
    base = {"coin": ["BTC", "ETH"], "ts": pd.to_datetime(["2025-01-01 04:00", "2025-01-01 04:00"]),
            "open": [100.0, 10.0], "high": [110.0, 11.0], "low": [95.0, 9.0], "close": [105.0, 10.5],
            "volume": [2.0, 3.0]}
    base.update(overrides)
    rows, _ = prepare_candles(pd.DataFrame(base), "freqtrade", pd.Timestamp("2025-01-02"))
    return rows


def test_good_rows_pass():
    rows = _rows()
    assert schemas.validate(rows, schemas.CANDLES) is not None
    assert rows["notional_usd"].tolist() == [210.0, 31.5]
    assert not rows["ohlc_repaired"].any()


@pytest.mark.parametrize(
    "overrides, rule",
    [
        ({"close": [105.0, -1.0]}, "price must be > 0"),
        ({"open": [100.0, 0.0]}, "price must be > 0"),
        ({"volume": [2.0, -0.5]}, "volume must be >= 0"),
        ({"high": [110.0, 5.0]}, "high >= max(open, close)"),        # 52% below the body: not repairable
        ({"low": [95.0, 20.0]}, "low <= min(open, close)"),
        ({"ts": pd.to_datetime(["2025-01-01 04:00", "2025-01-01 06:00"])}, "ts must be on the 4h UTC grid"),
        ({"coin": ["BTC", "BTC"]}, "unique (coin, ts)"),
    ],
)
def test_each_rule_names_coin_time_and_rule(overrides, rule):
    rows = _rows(**overrides)
    with pytest.raises(schemas.MarketDataValidationError) as err:
        schemas.validate(rows, schemas.CANDLES)
    msg = str(err.value)
    assert f"rule '{rule}'" in msg
    bad_coin = "BTC" if "coin" in overrides else "ETH"
    assert f"coin {bad_coin} at 2025-01-01 0" in msg


def test_small_ohlc_disagreement_is_repaired_and_flagged():
    rows = _rows(high=[110.0, 10.4])  # ETH body top is 10.5: high 1% below it
    eth = rows[rows["coin"] == "ETH"].iloc[0]
    assert eth["high"] == 10.5 and eth["ohlc_repaired"]
    assert not rows.loc[rows["coin"] == "BTC", "ohlc_repaired"].iloc[0]
    schemas.validate(rows, schemas.CANDLES)


def test_the_real_61_inconsistent_rows(freqtrade_dir):
    """The shared data's 61 4h rows with high/low outside open/close: all HPOS/RLB pre-trade back-fill, all
    within the repair tolerance (so, if they ever reached the table, they would be widened and flagged)."""
    raw = ft.load_candles(freqtrade_dir, ["HPOS", "RLB"], traded_only=False)
    body_hi = raw[["open", "close"]].max(axis=1)
    body_lo = raw[["open", "close"]].min(axis=1)
    bad = (raw["high"] < body_hi) | (raw["low"] > body_lo)
    assert int(bad.sum()) == 61
    assert raw.loc[bad, "coin"].value_counts().to_dict() == {"HPOS": 48, "RLB": 13}
    cov = ft.coverage(freqtrade_dir, ["HPOS", "RLB"]).set_index("coin")
    assert (raw.loc[bad, "ts"] < raw.loc[bad, "coin"].map(cov["first_traded"])).all()  # all before first trade
    assert ft.load_candles(freqtrade_dir, ["HPOS", "RLB"]).pipe(
        lambda d: ((d["high"] < d[["open", "close"]].max(axis=1)) | (d["low"] > d[["open", "close"]].min(axis=1))).sum()
    ) == 0
    rows, report = prepare_candles(raw, "freqtrade", pd.Timestamp("2025-01-01"))
    assert report["ohlc_repaired_rows"] == 61 and report["ohlc_repaired_coins"] == {"HPOS": 48, "RLB": 13}
    schemas.validate(rows, schemas.CANDLES)
