"""The rebalance runner end to end: real SDK (signing included) against the local exchange, real operations book (SQLite beside the test DuckDB path)."""

from __future__ import annotations

from collections import Counter

import pytest

from gradient_pipeline.execution.runner import Rebalancer
from gradient_pipeline.exchange.hyperliquid.factory import trading_client
from gradient_pipeline_tests.conftest import book_frame
from gradient_pipeline_tests.execution.conftest import ADV, TARGETS, WINDOW


def run(cfg, window=WINDOW, targets=TARGETS):
    return Rebalancer(cfg, trading_client(cfg), cfg.duckdb_path).run(window, targets, ADV)


def ledger(cfg, sql, params=()):
    """A query over the operations book the runner wrote (portable SQL)."""
    return book_frame(cfg.duckdb_path, sql, params)


def exchange_orders_per_coin(cfg) -> Counter:
    """Distinct exchange orders that traded, per coin (a doubled order shows up as 2)."""
    fills = trading_client(cfg).fills_since()
    return Counter(c for c, _ in {(f.coin, f.oid) for f in fills})


def assert_at_target(cfg, targets=TARGETS, tol_usd=12.0):
    client = trading_client(cfg)
    state, mids = client.account_state(), client.all_mids()
    cap = ledger(cfg, "SELECT capital_usd FROM rebalances ORDER BY started_at LIMIT 1")["capital_usd"][0]
    for coin, w in targets.items():
        held = state.positions[coin].szi * mids[coin] if coin in state.positions else 0.0
        assert held == pytest.approx(w * cap, abs=tol_usd), coin


def test_rebalance_reaches_targets_and_ledger_is_consistent(paper):
    result = run(paper.cfg)
    assert result.status == "complete", result.reason
    assert_at_target(paper.cfg)
    orders = ledger(paper.cfg, "SELECT * FROM orders")
    assert len(orders) == len(TARGETS) and set(orders["status"]) == {"filled"}
    assert orders["oid"].notna().all() and (orders["tif"] == "Ioc").all()
    fills = ledger(paper.cfg, "SELECT * FROM fills")
    assert len(fills) == len(orders) and fills["rebalance_id"].eq(result.rebalance_id).all()
    assert set(fills["liquidity"]) == {"taker"} and (fills["fee_usd"] > 0).all()
    # the ledger's fill sizes are the exchange's: filled_sz per order equals the sum of its fills
    merged = orders.merge(fills.groupby("cloid")["sz"].sum().rename("fill_sz"), on="cloid")
    assert (merged["filled_sz"] - merged["fill_sz"]).abs().max() < 1e-12
    assert set(exchange_orders_per_coin(paper.cfg).values()) == {1}
    eq = ledger(paper.cfg, "SELECT * FROM equity ORDER BY source")
    assert list(eq["source"]) == ["rebalance_end", "rebalance_start"]
    pos = ledger(paper.cfg, "SELECT * FROM positions WHERE source = 'rebalance_end'")
    assert set(pos["coin"]) == set(TARGETS)


def test_rerun_same_window_trades_nothing_and_new_window_at_target_sends_nothing(paper):
    first = run(paper.cfg)
    again = run(paper.cfg)
    assert again.rebalance_id == first.rebalance_id and again.status == "complete" and again.resumed
    # another rebalance id with the same targets at the same prices: already at target, nothing is sent
    nxt = run(paper.cfg, window="2025-02-28 16:00")
    assert nxt.status == "complete" and "nothing sent" in nxt.reason
    assert len(ledger(paper.cfg, "SELECT * FROM orders")) == len(TARGETS)
    assert set(exchange_orders_per_coin(paper.cfg).values()) == {1}


def test_flip_and_close_use_reduce_only(paper):
    run(paper.cfg)
    paper.handle.advance(4)
    flipped = {"BTC": -0.06, "ETH": 0.04, "AVAX": 0.02}  # BTC flips, ETH shrinks, AVAX opens, the rest close
    result = run(paper.cfg, window="2025-03-01 00:00", targets=flipped)
    assert result.status == "complete", result.reason
    o = ledger(paper.cfg, "SELECT coin, leg, reduce_only, side FROM orders WHERE rebalance_id = ?", [result.rebalance_id])
    legs = {(r.coin, r.leg): (r.reduce_only, r.side) for r in o.itertuples()}
    assert legs[("BTC", "close")] == (True, "sell") and legs[("BTC", "open")] == (False, "sell")
    assert legs[("ETH", "reduce")] == (True, "sell")
    assert legs[("kPEPE", "close")] == (True, "buy") and legs[("DOGE", "close")] == (True, "buy")
    assert legs[("SOL", "close")] == (True, "buy") and legs[("AVAX", "open")] == (False, "buy")
    state = trading_client(paper.cfg).account_state()
    assert set(state.positions) == {"BTC", "ETH", "AVAX"} and state.positions["BTC"].szi < 0


def test_ioc_that_cannot_match_is_rejected_and_ends_partial(paper):
    # a 0.1 bp cap against a 2 bp spread: every IOC is priced inside the spread and cannot match
    # (not kPEPE: its one-tick price step is 1.3 bp, so rounding alone crosses the spread)
    cfg = paper.config(execution={"slippage_cap_bps": 0.1, "max_attempts": 2})
    targets = {"BTC": 0.05, "ETH": 0.05, "SOL": -0.05, "DOGE": -0.05}
    result = run(cfg, targets=targets)
    assert result.status == "partial"
    assert "left after 2 attempts" in result.reason and set(result.residual_usd) == set(targets)
    orders = ledger(cfg, "SELECT * FROM orders")
    assert len(orders) == 2 * len(targets) and set(orders["status"]) == {"rejected"}
    assert orders["error"].str.startswith("Order could not immediately match").all()
    assert trading_client(cfg).account_state().positions == {}


def test_large_order_partially_fills_and_the_residual_is_retried(paper_factory):
    # Thin book ($200 per level, 1 bp apart): a $900 IOC capped at 3 bp takes what is there and the rest is
    # cancelled (partial fill); the runner re-plans the residual from the live position and sends it again.
    # The local exchange's book stays consumed while its clock stands still, so the retries find nothing within
    # the cap and the rebalance ends `partial`, naming the residuals.
    paper = paper_factory(level_fraction_of_day_volume=1e-12, min_level_usd=200.0)
    cfg = paper.config(execution={"slippage_cap_bps": 3.0, "max_attempts": 4})
    result = run(cfg, targets={"BTC": 0.09, "ETH": -0.09})
    orders = ledger(cfg, "SELECT * FROM orders ORDER BY attempt")
    assert orders["status"].iloc[0] == "partial"
    assert 0 < orders["filled_sz"].iloc[0] < orders["sz"].iloc[0]
    assert orders["attempt"].max() == 3  # max_attempts rounds in all
    first = orders[orders["attempt"] == 0].set_index("coin")
    for coin in ("BTC", "ETH"):
        retries = orders[(orders["coin"] == coin) & (orders["attempt"] > 0)]
        residual = round(first.loc[coin, "sz"] - first.loc[coin, "filled_sz"], 8)
        assert (retries["sz"].round(8) == residual).all()  # exactly the unfilled residual, re-sent
        assert set(retries["status"]) == {"rejected"}
        assert result.residual_usd[coin] == pytest.approx(residual * first.loc[coin, "mid_px"], rel=1e-3)
    assert result.status == "partial" and "left after 4 attempts" in result.reason


def test_dry_run_plans_and_records_but_sends_nothing(paper, monkeypatch):
    monkeypatch.delenv("GRADIENT_PRIVATE_KEY")
    cfg = paper.config(mode="dry_run", dry_run_network="local")
    result = Rebalancer(cfg, trading_client(cfg), cfg.duckdb_path).run(WINDOW, TARGETS, ADV)
    assert result.status == "complete" and "dry run" in result.reason
    orders = ledger(cfg, "SELECT * FROM orders")
    assert len(orders) == len(TARGETS) and set(orders["status"]) == {"dry_run"}
    assert trading_client(cfg).fills_since() == []



def test_passive_first_posts_alo_at_the_touch_then_takes_the_residual(paper):
    cfg = paper.config(execution={"style": "passive_first", "passive_timeout_s": 0.5})
    result = run(cfg)
    assert result.status == "complete", result.reason
    orders = ledger(cfg, "SELECT * FROM orders ORDER BY attempt, coin")
    passive = orders[orders["attempt"] == 0]
    assert (passive["tif"] == "Alo").all() and len(passive) == len(TARGETS)
    client = trading_client(cfg)
    for o in passive.itertuples():  # at our own side's touch: never crossing, never beyond the mid
        assert (o.limit_px <= o.mid_px) if o.side == "buy" else (o.limit_px >= o.mid_px)
    # The replay clock stands still, so nothing trades into the resting orders: all cancelled after the timeout,
    # then the residual goes out as IOC and fills as taker.
    assert set(passive["status"]) == {"canceled"}
    assert client.open_orders() == []
    taker = orders[orders["attempt"] == 1]
    assert (taker["tif"] == "Ioc").all() and set(taker["status"]) == {"filled"}
    fills = ledger(cfg, "SELECT liquidity FROM fills")
    assert set(fills["liquidity"]) == {"taker"}
    assert_at_target(cfg)


def test_passive_orders_filled_by_the_market_are_recorded_as_maker(paper):
    """While the Alo orders rest, the replay clock moves an hour: the market trades into some of them (maker);
    the rest are cancelled at the timeout and taken with IOC (taker). Each fill records which it was."""
    import threading
    import time

    cfg = paper.config(execution={"style": "passive_first", "passive_timeout_s": 3.0})
    box = {}
    worker = threading.Thread(target=lambda: box.update(result=run(cfg)))
    worker.start()
    observer = trading_client(cfg)
    deadline = time.monotonic() + 30
    while len(observer.open_orders()) < len(TARGETS):
        assert time.monotonic() < deadline and worker.is_alive()
        time.sleep(0.05)
    paper.handle.advance(1)
    worker.join(60)
    result = box["result"]
    assert result.status == "complete", result.reason
    fills = ledger(cfg, "SELECT f.liquidity, o.tif FROM fills f JOIN orders o USING (cloid)")
    assert len(fills) and set(fills["liquidity"]) <= {"maker", "taker"}
    assert (fills["liquidity"] == "maker").any()
    assert (fills[fills["liquidity"] == "maker"]["tif"] == "Alo").all()
    assert (fills[fills["liquidity"] == "taker"]["tif"] == "Ioc").all()
    assert set(exchange_orders_per_coin(cfg).values()) <= {1, 2}  # at most the Alo and its IOC residual
    assert_at_target(cfg)


def test_risk_breach_refuses_or_scales_the_whole_book(paper):
    targets = {"BTC": 0.15, "ETH": -0.15}  # 15% each: over max_position_pct 10%
    refused = run(paper.cfg, targets=targets)
    assert refused.status == "refused" and "position_cap" in refused.reason
    assert exchange_orders_per_coin(paper.cfg) == {} and ledger(paper.cfg, "SELECT * FROM orders").empty
    cfg = paper.config(risk={"breach_action": "scale"})
    paper.handle.advance(4)
    scaled = run(cfg, window="2025-03-01 00:00", targets=targets)
    assert scaled.status == "complete", scaled.reason
    assert "scaled to 0.6" in scaled.reason and "position_cap" in scaled.reason  # recorded in the ledger
    state, mids = trading_client(cfg).account_state(), trading_client(cfg).all_mids()
    for coin in targets:
        weight = state.positions[coin].szi * mids[coin] / scaled.account_value
        assert 0.09 < abs(weight) <= 0.1005, (coin, weight)  # scaled just inside the 10% cap
