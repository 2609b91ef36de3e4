"""Execution realism of the local exchange (issue 12 item 5, exchange side), through the real SDK:
- a resting post-only order fills (maker, at its price) once a later 1h candle of the recorded data trades
  through it as the replay clock moves — and not when no candle does;
- the book remembers our own fills: a second full-depth sweep right after the first cannot take the same depth
  again; the consumed depth comes back at the documented rate (half-life 60 s of replay time)."""

from __future__ import annotations

import eth_account
import pytest
from hyperliquid.exchange import Exchange

from gradient_pipeline.exchange.hyperliquid.rounding import round_price
from gradient_pipeline_tests.localexchange._helpers import HOUR_MS, NO_SPOT, feather, ms, sdk_info

START = "2025-03-01 00:05"
COINS = ["BTC", "ETH"]


def connect(handle, master):
    info = sdk_info(handle)
    return info, Exchange(master, handle.base_url, meta=info.meta(), spot_meta=NO_SPOT, timeout=10)


def test_resting_alo_fills_when_a_later_1h_candle_trades_through_it(local_exchange_factory, freqtrade_dir):
    master = eth_account.Account.create()
    handle = local_exchange_factory(start_time=START, coins=COINS, accounts={master.address: 100_000.0})
    info, ex = connect(handle, master)
    szd = handle.market.coin("ETH").sz_decimals
    placed = handle.now_ms()
    # the recorded 1h candles that open after the order and close within the next 3 hours (read independently)
    h1 = feather(freqtrade_dir, "ETH", "1h")
    later = h1[(h1["t"] >= placed) & (h1["t"] + HOUR_MS <= placed + 3 * HOUR_MS)]
    assert len(later) == 2  # 01:00 and 02:00 (00:00 opened before the order)
    low = float(later["low"].min())
    through = round_price(low * 1.002, szd, is_buy=False)  # a candle's low went below this price
    never = round_price(low * 0.99, szd, is_buy=False)  # no candle went this low
    assert low < through and never < low
    bids, asks = handle.market.book("ETH")
    assert through < bids[0][0], "the order must rest (below the touch)"
    alo = {"limit": {"tif": "Alo"}}
    oid_through = ex.order("ETH", True, 0.5, through, alo)["response"]["data"]["statuses"][0]["resting"]["oid"]
    oid_never = ex.order("ETH", True, 0.5, never, alo)["response"]["data"]["statuses"][0]["resting"]["oid"]
    handle.advance(3)
    _, asks_now = handle.market.book("ETH")
    assert asks_now[0][0] > through, "the book at the new instant does not cross it: only the candle path can fill it"
    assert info.query_order_by_oid(master.address, oid_through)["order"]["status"] == "filled"
    assert info.query_order_by_oid(master.address, oid_never)["order"]["status"] == "open"
    (fill,) = info.user_fills(master.address)
    assert fill["oid"] == oid_through and float(fill["px"]) == through and fill["sz"] == "0.5"
    assert fill["crossed"] is False
    assert float(fill["fee"]) == pytest.approx(through * 0.5 * 0.00015, abs=1e-6)  # maker fee


def _sweep(ex, handle, coin="ETH"):
    _, asks = handle.market.book(coin)
    depth = sum(sz for _, sz in asks)
    szd = handle.market.coin(coin).sz_decimals
    limit = round_price(asks[-1][0] * 1.001, szd, is_buy=True)
    st = ex.order(coin, True, round(depth, szd), limit, {"limit": {"tif": "Ioc"}})["response"]["data"]["statuses"][0]
    return (float(st["filled"]["totalSz"]) if "filled" in st else 0.0), depth


def test_the_book_remembers_our_fills_on_a_running_clock_and_recovers_at_the_documented_rate(local_exchange_factory):
    master = eth_account.Account.create()
    handle = local_exchange_factory(start_time=START, coins=COINS, accounts={master.address: 1_000_000.0},
                                    speed=1.0, book_levels=3, level_fraction_of_day_volume=0.0)
    info, ex = connect(handle, master)
    first, depth = _sweep(ex, handle)
    assert first == pytest.approx(depth, rel=1e-6)
    t0 = handle.now_ms()
    second, _ = _sweep(ex, handle)  # milliseconds later on the running replay clock
    elapsed = handle.now_ms() - t0
    assert elapsed < 5_000
    assert second <= depth * (1 - 0.5 ** (5_000 / 60_000)) + 0.01  # at most what 5 s of recovery gives back
    handle.advance(10 / 60)  # ten minutes: ten half-lives, the book is whole again (same 1h candle, same mid)
    third, depth3 = _sweep(ex, handle)
    assert depth3 == pytest.approx(depth) and third == pytest.approx(depth, rel=2e-3)
