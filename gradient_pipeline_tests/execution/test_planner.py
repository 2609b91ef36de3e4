"""The pure planner: sizes, reduce-only, flips, minimum notional, validation."""

from __future__ import annotations

import pytest

from gradient_pipeline.execution.planner import (
    PlanParams,
    PlanValidationError,
    plan_orders,
    validate_plan,
)

from gradient_pipeline.exchange.hyperliquid.rounding import HyperliquidInstrument

SZD = {c: HyperliquidInstrument(c, d) for c, d in {"BTC": 5, "ETH": 4, "kPEPE": 0, "SOL": 2}.items()}
MIDS = {"BTC": 97123.5, "ETH": 3012.35, "kPEPE": 0.012345, "SOL": 150.0}


def by_coin_leg(plan):
    return {(o.coin, o.leg): o for o in plan.orders}


def test_open_from_flat_sizes_from_capital_and_rounds():
    plan = plan_orders({"BTC": 0.1, "kPEPE": -0.1}, {}, MIDS, SZD, 5000.0)
    o = by_coin_leg(plan)
    assert o[("BTC", "open")].sz == 0.00514 and o[("BTC", "open")].is_buy
    assert o[("kPEPE", "open")].sz == 40502.0 and not o[("kPEPE", "open")].is_buy
    assert not any(x.reduce_only for x in plan.orders)
    assert o[("BTC", "open")].limit_px == 97610.0  # mid + 50 bp, 5 sig figs, rounded up
    assert o[("kPEPE", "open")].limit_px == 0.012283  # mid − 50 bp, rounded down
    assert validate_plan(plan, {}, SZD) == []


def test_shrink_is_reduce_only_and_close_is_exact():
    plan = plan_orders({"ETH": 0.3}, {"ETH": 1.0, "SOL": -0.05}, MIDS, SZD, 5000.0)
    o = by_coin_leg(plan)
    eth = o[("ETH", "reduce")]
    assert eth.reduce_only and not eth.is_buy and eth.sz == pytest.approx(1.0 - 0.4979)
    sol = o[("SOL", "close")]  # $7.50 position: below $10 but a full reduce-only close is allowed
    assert sol.reduce_only and sol.is_buy and sol.sz == 0.05
    assert plan.orders[0].reduce_only  # reduce-only legs go first
    assert validate_plan(plan, {"ETH": 1.0, "SOL": -0.05}, SZD) == []


def test_flip_splits_into_close_and_open():
    plan = plan_orders({"SOL": 0.1}, {"SOL": -2.0}, MIDS, SZD, 5000.0)
    o = by_coin_leg(plan)
    assert o[("SOL", "close")].reduce_only and o[("SOL", "close")].sz == 2.0 and o[("SOL", "close")].is_buy
    assert not o[("SOL", "open")].reduce_only and o[("SOL", "open")].sz == 3.33 and o[("SOL", "open")].is_buy


def test_minimum_notional_and_buffer():
    # $10.50 opening delta: above the exchange minimum but inside the buffer -> skipped
    plan = plan_orders({"SOL": 10.5 / 5000}, {}, MIDS, SZD, 5000.0)
    assert plan.orders == [] and plan.skipped and "below" in plan.skipped[0].reason
    # $12.50 target floors to 0.08 SOL = $12 -> sent
    plan = plan_orders({"SOL": 12.5 / 5000}, {}, MIDS, SZD, 5000.0)  # 0.08 SOL = $12
    assert [o.coin for o in plan.orders] == ["SOL"]
    # a tiny target on an existing position closes it instead of keeping dust
    plan = plan_orders({"SOL": 5 / 5000}, {"SOL": 1.0}, MIDS, SZD, 5000.0)
    assert by_coin_leg(plan)[("SOL", "close")].sz == 1.0
    # a small delta on an existing position is left alone
    plan = plan_orders({"SOL": 0.03}, {"SOL": 0.96}, MIDS, SZD, 5000.0)
    assert plan.orders == [] and plan.skipped


def test_kpepe_and_btc_lot_edges():
    # kPEPE szDecimals 0: 0.9 units never becomes an order
    plan = plan_orders({"kPEPE": 20 / 5000}, {"kPEPE": 1620.4}, MIDS, SZD, 5000.0)
    assert all(o.sz == int(o.sz) for o in plan.orders)
    # BTC szDecimals 5: $0.50 target rounds to 0.00000 -> flat, nothing to do
    plan = plan_orders({"BTC": 0.5 / 5000}, {}, MIDS, SZD, 5000.0)
    assert plan.orders == [] and plan.target_sz["BTC"] == 0.0


def test_missing_inputs_refuse_the_whole_plan():
    with pytest.raises(PlanValidationError, match="DOGE: no usable mid"):
        plan_orders({"DOGE": 0.1, "BTC": 0.1}, {}, MIDS, {**SZD, "DOGE": HyperliquidInstrument("DOGE", 0)}, 5000.0)
    with pytest.raises(PlanValidationError, match="XYZ: not an instrument of the venue"):
        plan_orders({"XYZ": 0.1}, {}, {**MIDS, "XYZ": 1.0}, SZD, 5000.0)
    with pytest.raises(PlanValidationError, match="not finite"):
        plan_orders({"BTC": float("nan")}, {}, MIDS, SZD, 5000.0)


def test_validation_catches_every_bad_order():
    from dataclasses import replace

    plan = plan_orders({"BTC": 0.1, "ETH": -0.1}, {"ETH": 0.5}, MIDS, SZD, 5000.0)
    o = by_coin_leg(plan)
    bad = replace(plan, orders=[
        replace(o[("BTC", "open")], sz=0.000011),  # below lot
        replace(o[("ETH", "close")], sz=0.6),  # reduce-only larger than the position
        replace(o[("ETH", "open")], limit_px=2999.25), # 6 sig figs
    ])
    problems = validate_plan(bad, {"ETH": 0.5}, SZD, PlanParams())
    assert len(problems) == 4  # the BTC order is also under $10 now
    assert any("size not a positive multiple" in p for p in problems)
    assert any("reduce-only but position" in p for p in problems)
    assert any("price breaks" in p for p in problems)
