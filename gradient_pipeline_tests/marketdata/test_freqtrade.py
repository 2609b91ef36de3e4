"""The freqtrade loader against the real recorded data (small slices)."""

from __future__ import annotations

import pandas as pd
import pytest

from gradient_pipeline.marketdata import freqtrade as ft


def test_list_coins_finds_every_perp(freqtrade_dir):
    coins = ft.list_coins(freqtrade_dir)
    assert len(coins) == 186
    assert {"BTC", "ETH", "kPEPE", "HYPE"} <= set(coins)
    assert coins == sorted(coins)


def test_load_candles_drops_pre_trade_rows(freqtrade_dir):
    raw = ft.read_candle_file(freqtrade_dir, "BTC")
    first_traded = raw.loc[raw["volume"] > 0, "ts"].iloc[0]
    assert raw["ts"].iloc[0] < first_traded  # the file does start with back-filled zero-volume rows
    loaded = ft.load_candles(freqtrade_dir, ["BTC"])
    assert loaded["ts"].iloc[0] == first_traded == pd.Timestamp("2023-02-26 16:00")
    assert loaded["ts"].dt.tz is None
    assert list(loaded.columns) == ft.CANDLE_COLUMNS
    # after the first trade every row is kept, zero-volume ones included
    assert len(loaded) == int((raw["ts"] >= first_traded).sum())


def test_load_candles_window_is_half_open(freqtrade_dir):
    got = ft.load_candles(freqtrade_dir, ["ETH", "BTC"], start="2025-01-01 00:00", end="2025-01-01 12:00")
    assert got["coin"].tolist() == ["BTC"] * 3 + ["ETH"] * 3
    assert got["ts"].tolist()[:3] == list(pd.date_range("2025-01-01 00:00", periods=3, freq="4h"))


def test_load_candles_coin_that_has_not_traded_yet_is_empty(freqtrade_dir):
    cov = ft.coverage(freqtrade_dir, ["HYPE"]).iloc[0]
    got = ft.load_candles(freqtrade_dir, ["HYPE"], end=cov["first_traded"])
    assert got.empty and list(got.columns) == ft.CANDLE_COLUMNS


def test_load_candles_unknown_coin_names_the_file(freqtrade_dir):
    with pytest.raises(ft.FreqtradeDataError, match="NOPE_USDC_USDC-4h-futures.feather"):
        ft.load_candles(freqtrade_dir, ["NOPE"])


def test_load_candles_missing_directory(tmp_path):
    with pytest.raises(ft.FreqtradeDataError, match="does not exist"):
        ft.load_candles(tmp_path / "nowhere")


def test_load_funding_floors_jitter_to_the_hour(freqtrade_dir):
    got = ft.load_funding(freqtrade_dir, ["BTC"], start="2023-05-12", end="2023-05-13")
    # 8-hourly before 2023-06-08; the raw file says 00:00:00.048, 08:00:00.388, 16:00:00.253
    assert got["ts"].tolist() == [pd.Timestamp("2023-05-12 00:00"), pd.Timestamp("2023-05-12 08:00"),
                                  pd.Timestamp("2023-05-12 16:00")]
    assert got["rate"].iloc[0] == pytest.approx(-0.000613, abs=1e-6)
    hourly = ft.load_funding(freqtrade_dir, ["BTC"], start="2025-01-01", end="2025-01-02")
    assert len(hourly) == 24 and hourly["ts"].is_unique


def test_coverage_shows_delisted_coins_ending_early(freqtrade_dir):
    cov = ft.coverage(freqtrade_dir, ["BTC", "RLB"]).set_index("coin")
    assert cov.loc["BTC", "last_ts"] == pd.Timestamp("2025-07-26 00:00")
    assert cov.loc["RLB", "last_ts"] < pd.Timestamp("2025-04-04")
