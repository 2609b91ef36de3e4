"""Plausibility bounds (pure functions): each refuses its implausible value by coin, time and rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gradient_pipeline.config import parse_config
from gradient_pipeline.marketdata import plausibility as pl
from gradient_pipeline.marketdata.schemas import MarketDataValidationError


def _funding(ts: str, rate: float) -> pd.DataFrame:
    return pd.DataFrame({"coin": ["ETH"], "ts": [pd.Timestamp(ts)], "rate": [rate], "premium": [np.nan]})


def test_funding_cap_is_scaled_to_the_record_interval():
    pl.check_funding(_funding("2023-06-07 16:00", 0.30), 0.04)  # an 8h record: cap 0.32
    pl.check_funding(_funding("2025-04-02 09:00", -0.04), 0.04)  # exactly at the hourly cap
    with pytest.raises(MarketDataValidationError,
                       match=r"coin ETH at 2023-06-08 01:00:00: rule '\|rate\| <= 0.04 per hour \(0.04 per 1h record\)' "
                             r"failed \(rate=0.3\)"):
        pl.check_funding(_funding("2023-06-08 01:00", 0.30), 0.04)
    with pytest.raises(MarketDataValidationError, match=r"0.32 per 8h record"):
        pl.check_funding(_funding("2023-06-07 16:00", 0.33), 0.04)
    with pytest.raises(MarketDataValidationError, match="rate=nan"):
        pl.check_funding(_funding("2025-04-02 09:00", float("nan")), 0.04)


def _bars(closes, highs=None, lows=None) -> pd.DataFrame:
    ts = pd.date_range("2025-04-02", periods=len(closes), freq="4h")
    c = np.asarray(closes, dtype=float)
    return pd.DataFrame({"coin": "BTC", "ts": ts, "open": c, "high": highs if highs is not None else c * 1.01,
                         "low": lows if lows is not None else c * 0.99, "close": c})


def test_price_move_bound_uses_the_stored_previous_close():
    pl.check_price_moves(_bars([100, 900, 100]), pd.Series(dtype=float), 10)  # 9x then 1/9: allowed
    with pytest.raises(MarketDataValidationError, match=r"coin BTC at 2025-04-02 00:00:00: rule 'price within 10x "
                                                        r"of the previous close' failed \(previous close=1,"):
        pl.check_price_moves(_bars([100, 101]), pd.Series({"BTC": 1.0}), 10)
    with pytest.raises(MarketDataValidationError, match=r"2 implausible value\(s\)"):
        pl.check_price_moves(_bars([100, 100_000, 100]), pd.Series(dtype=float), 10)
    with pytest.raises(MarketDataValidationError, match=r"at 2025-04-02 04:00:00: .*low=5"):  # a wick down to 1/20
        pl.check_price_moves(_bars([100, 100], lows=[99, 5]), pd.Series(dtype=float), 10)


def test_mark_and_oracle_within_a_band_of_the_mid():
    live = pd.DataFrame({"coin": ["BTC", "ETH", "AI"], "mark_px": [100.0, 100.0, 3.0], "oracle_px": [101.0, 130.0, 9.0],
                         "mid_px": [100.5, 100.0, np.nan]})
    with pytest.raises(MarketDataValidationError) as err:
        pl.check_live_contexts(live, 10, pd.Timestamp("2025-04-10 04:00"))
    msg = str(err.value)
    assert "coin ETH at 2025-04-10 04:00:00: rule 'oracle_px within 10% of mid_px' failed (oracle_px=130, mid_px=100)" in msg
    assert "BTC" not in msg and "AI" not in msg  # within the band; no mid known


def test_bounds_are_configurable_and_validated():
    cfg = parse_config({"validation": {"max_funding_per_hour": 0.01, "max_bar_move_ratio": 3}})
    assert cfg.validation.max_funding_per_hour == 0.01 and cfg.validation.mark_oracle_band_pct == 10
    with pytest.raises(ValueError, match="validation.max_bar_move_ratio"):
        parse_config({"validation": {"max_bar_move_ratio": 0.5}})


def test_default_bounds_accept_every_real_bar_and_funding_record(freqtrade_dir):
    """The shared recording (186 perps) holds real extremes — the OM crash of 2025-04-13 traded down to 0.062 × the
    previous close in one bar — that the default bounds must accept; 10× would refuse that real bar."""
    from gradient_pipeline.marketdata import freqtrade as ft

    bounds = parse_config({}).validation
    om = ft.load_candles(freqtrade_dir, ["OM"], "2025-04-13", "2025-04-14")
    pl.check_price_moves(om, pd.Series(dtype=float), bounds.max_bar_move_ratio)
    with pytest.raises(MarketDataValidationError, match=r"coin OM at 2025-04-13 16:00:00: rule 'price within 10x"):
        pl.check_price_moves(om, pd.Series(dtype=float), 10)
    pl.check_funding(ft.load_funding(freqtrade_dir), bounds.max_funding_per_hour)
