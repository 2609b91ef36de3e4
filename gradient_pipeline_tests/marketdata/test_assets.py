"""The market-data assets end to end: real (small) freqtrade directories, real DuckDB files, in-process Dagster."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from gradient_pipeline.defs.market_data.assets import candles, funding, universe
from gradient_pipeline.defs.market_data.checks import candles_fresh, candles_no_gaps
from gradient_pipeline.marketdata import freqtrade as ft
from gradient_pipeline_tests.marketdata.conftest import read_table, write_candle_file

ALL = [candles, funding, universe, candles_fresh, candles_no_gaps]
RANGE = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


def _range(first: str, last: str) -> dict:
    return dict(zip(RANGE, (first, last)))


def _checks(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_one_window_writes_every_coin_trading_in_it(small_ft_dir, make_resources):
    res = make_resources(small_ft_dir)
    result = dg.materialize([candles, funding, universe], resources=res, partition_key="2025-04-10-08:00")
    assert result.success
    c = read_table(res, "candles")
    assert sorted(c["coin"]) == ["AI", "BTC", "ETH"]
    assert (c["ts"] == pd.Timestamp("2025-04-10 08:00")).all()
    raw = ft.load_candles(small_ft_dir, ["BTC"], "2025-04-10 08:00", "2025-04-10 12:00").iloc[0]
    btc = c[c["coin"] == "BTC"].iloc[0]
    assert (btc["open"], btc["close"], btc["volume"]) == (raw["open"], raw["close"], raw["volume"])
    assert btc["notional_usd"] == pytest.approx(raw["volume"] * raw["close"])
    assert btc["source"] == "freqtrade" and not btc["ohlc_repaired"]
    f = read_table(res, "funding")
    assert set(f["ts"]) == set(pd.date_range("2025-04-10 08:00", periods=4, freq="h"))
    assert len(f) == 12 and f["premium"].isna().all()
    u = read_table(res, "universe")
    assert sorted(u["coin"]) == ["AI", "BTC", "ETH"] and not u["is_delisted"].any()


def test_rematerialising_one_window_changes_only_that_window(small_ft_dir, make_resources):
    res = make_resources(small_ft_dir)
    assert dg.materialize([candles], resources=res, tags=_range("2025-04-01-00:00", "2025-04-01-20:00")).success
    before = read_table(res, "candles")
    # The source changes for one window (a corrected close); rematerialise just that window.
    btc = ft.read_candle_file(small_ft_dir, "BTC")
    target = pd.Timestamp("2025-04-01 08:00")
    btc.loc[btc["ts"] == target, "close"] *= 1.001
    write_candle_file(small_ft_dir, "BTC", btc)
    assert dg.materialize([candles], resources=res, partition_key="2025-04-01-08:00").success
    after = read_table(res, "candles")
    assert len(after) == len(before) == 6 * 3
    keep = ["coin", "ts", "open", "high", "low", "close", "volume", "ingested_at"]
    outside_b, outside_a = (t[t["ts"] != target][keep].reset_index(drop=True) for t in (before, after))
    pd.testing.assert_frame_equal(outside_b, outside_a)  # other windows untouched, even ingested_at
    changed = after[(after["ts"] == target) & (after["coin"] == "BTC")]["close"].iloc[0]
    old = before[(before["ts"] == target) & (before["coin"] == "BTC")]["close"].iloc[0]
    assert changed == pytest.approx(old * 1.001)


def test_range_run_is_one_run_with_every_window(small_ft_dir, make_resources):
    res = make_resources(small_ft_dir)
    result = dg.materialize(ALL, resources=res, tags=_range("2025-04-10-00:00", "2025-04-12-20:00"))
    assert result.success
    parts = {e.partition for e in result.get_asset_materialization_events() if e.asset_key == candles.key}
    assert len(parts) == 18
    c = read_table(res, "candles")
    assert c["ts"].nunique() == 18
    # AI's data ends 2025-04-11 00:00: it is stored up to there, then appears delisted in the universe.
    assert c.loc[c["coin"] == "AI", "ts"].max() == pd.Timestamp("2025-04-11 00:00")
    u = read_table(res, "universe").set_index(["ts", "coin"])
    assert not u.loc[(pd.Timestamp("2025-04-11 00:00"), "AI"), "is_delisted"]
    assert u.loc[(pd.Timestamp("2025-04-11 04:00"), "AI"), "is_delisted"]
    assert u.xs("BTC", level="coin")["is_delisted"].sum() == 0
    # 24h volume of the last window = notional of the 6 bars ending with it
    last = pd.Timestamp("2025-04-12 20:00")
    want = c[(c["coin"] == "ETH") & (c["ts"] > last - pd.Timedelta("24h"))]["notional_usd"].sum()
    assert u.loc[(last, "ETH"), "day_ntl_vlm"] == pytest.approx(want)
    assert _checks(result)["candles_no_gaps"].passed


BAD_ROWS = {
    "price must be > 0": lambda f, i: f.__setitem__("low", f["low"].where(f.index != i, -1.0)),
    "volume must be >= 0": lambda f, i: f.__setitem__("volume", f["volume"].where(f.index != i, -3.0)),
    "high >= max(open, close)": lambda f, i: f.__setitem__("high", f["high"].where(f.index != i, f["open"] * 0.5)),
    "low <= min(open, close)": lambda f, i: f.__setitem__("low", f["low"].where(f.index != i, f["close"] * 2)),
}


@pytest.mark.parametrize("rule", [*BAD_ROWS, "unique (coin, ts)", "ts must be on the 4h UTC grid"])
def test_each_rule_rejects_its_bad_row_and_writes_nothing(rule, small_ft_dir, make_resources):
    res = make_resources(small_ft_dir)
    assert dg.materialize([candles], resources=res, tags=_range("2025-04-02-00:00", "2025-04-02-20:00")).success
    before = read_table(res, "candles")
    eth = ft.read_candle_file(small_ft_dir, "ETH")
    i = int(eth.index[eth["ts"] == pd.Timestamp("2025-04-02 08:00")][0])
    if rule in BAD_ROWS:
        BAD_ROWS[rule](eth, i)
    elif rule == "unique (coin, ts)":
        eth = pd.concat([eth, eth.loc[[i]]]).sort_values("ts", kind="stable")
    else:
        extra = eth.loc[[i]].assign(ts=pd.Timestamp("2025-04-02 10:00"))
        eth = pd.concat([eth, extra]).sort_values("ts", kind="stable")
    write_candle_file(small_ft_dir, "ETH", eth)
    result = dg.materialize([candles], resources=res, tags=_range("2025-04-02-00:00", "2025-04-02-20:00"),
                            raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    msg = failure.step_failure_data.error.message
    assert f"rule '{rule}'" in msg and "coin ETH at 2025-04-02" in msg, msg
    pd.testing.assert_frame_equal(read_table(res, "candles"), before)


def test_small_ohlc_defect_is_repaired_visibly(small_ft_dir, make_resources):
    res = make_resources(small_ft_dir)
    btc = ft.read_candle_file(small_ft_dir, "BTC")
    i = int(btc.index[btc["ts"] == pd.Timestamp("2025-04-03 04:00")][0])
    body_top = max(btc.at[i, "open"], btc.at[i, "close"])
    body_bottom = min(btc.at[i, "open"], btc.at[i, "close"])
    low_before = btc.at[i, "low"]
    btc.at[i, "high"] = short = (body_top + body_bottom) / 2  # inside the body: high falls short of the open
    write_candle_file(small_ft_dir, "BTC", btc)
    result = dg.materialize([candles], resources=res, partition_key="2025-04-03-04:00")
    assert result.success
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["ohlc_repaired_rows"].value == 1
    assert meta["ohlc_repaired_coins"].value == {"BTC": 1}
    assert "ohlc_widened_to_cover_open_close" in meta["repairs_and_drops"].value
    row = read_table(res, "candles").set_index("coin").loc["BTC"]
    assert row["ohlc_repaired"] and row["high"] == body_top and row["low"] == low_before  # widened, low untouched
    rep = read_table(res, "market_data_repairs")
    assert len(rep) == 1
    r = rep.iloc[0]
    assert (r["coin"], r["ts"], r["action"], r["rule"]) == ("BTC", pd.Timestamp("2025-04-03 04:00"), "repaired",
                                                           "ohlc_widened_to_cover_open_close")
    assert (r["high_before"], r["high_after"], r["low_before"], r["low_after"]) == (short, body_top, low_before, low_before)


def test_pre_trade_rows_and_their_ohlc_defects_are_dropped(freqtrade_dir, tmp_path, make_resources):
    """HPOS/RLB: the real files whose back-filled pre-trade rows hold the 61 OHLC defects."""
    d = tmp_path / "hpos"
    d.mkdir()
    for coin in ("HPOS", "RLB"):
        for p in (ft.candle_path(freqtrade_dir, coin), ft.funding_path(freqtrade_dir, coin)):
            (d / p.name).symlink_to(p)
    res = make_resources(d)
    result = dg.materialize([candles], resources=res, tags=_range("2023-05-01-00:00", "2023-08-04-20:00"))
    assert result.success
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["pre_trade_ohlc_defects_dropped"].value == 61
    assert meta["pre_trade_ohlc_defect_coins"].value == {"HPOS": 48, "RLB": 13}
    assert meta["ohlc_repaired_rows"].value == 0
    c = read_table(res, "candles")
    first = c.groupby("coin")["ts"].min()
    assert first["HPOS"] == pd.Timestamp("2023-07-31 16:00") and first["RLB"] == pd.Timestamp("2023-08-02 00:00")


def test_freshness_is_judged_by_the_window_asked_for_and_gaps_fail_the_run(small_ft_dir, make_resources):
    res = make_resources(small_ft_dir)
    # Demo data ends with the 2025-04-30 20:00 candle: store two old windows with a hole between them.
    r1 = dg.materialize([candles, candles_fresh, candles_no_gaps], resources=res, partition_key="2025-04-29-00:00")
    assert r1.success and _checks(r1)["candles_fresh"].passed and _checks(r1)["candles_no_gaps"].passed
    r2 = dg.materialize([candles, candles_fresh, candles_no_gaps], resources=res, partition_key="2025-04-29-12:00",
                        raise_on_error=False)
    fresh = _checks(r2)["candles_fresh"]  # a historical window is not "stale": it is what was asked for
    assert fresh.passed and fresh.metadata["windows_behind_source"].value == 8
    gaps = _checks(r2)["candles_no_gaps"]
    assert not gaps.passed and gaps.metadata["missing_bars"].value == 2 * 2  # BTC, ETH: 04:00 and 08:00
    assert "coin BTC missing 2 bar(s) at 2025-04-29 04:00:00 … 2025-04-29 08:00:00" in gaps.description
    assert not r2.success  # the gap check is blocking: the run fails
    r3 = dg.materialize([candles, candles_fresh, candles_no_gaps], resources=res,
                        tags=_range("2025-04-29-04:00", "2025-04-30-20:00"))
    assert r3.success and _checks(r3)["candles_fresh"].passed and _checks(r3)["candles_no_gaps"].passed


def test_window_beyond_the_source_is_refused(small_ft_dir, make_resources):
    res = make_resources(small_ft_dir)
    result = dg.materialize([candles], resources=res, partition_key="2025-05-01-00:00", raise_on_error=False)
    assert not result.success
    msg = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error.message
    assert "not complete at source freqtrade" in msg and "2025-04-30-20:00" in msg
    assert read_table(res, "candles").empty
