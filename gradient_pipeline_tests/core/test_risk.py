"""Pre-trade risk manager: every rule refuses its breach, scales when configured, and passes a clean plan."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from gradient_pipeline.config import parse_config
from gradient_pipeline.core.risk import RiskOrder, check_plan, orders_frame, scale_targets

AV = 10_000.0
ADV = {"BTC": 5e8, "ETH": 2e8, "SOL": 5e7, "DOGE": 1e7}
PX = {"BTC": 100_000.0, "ETH": 4_000.0, "SOL": 200.0, "DOGE": 0.25}


def cfg(**kw):
    risk = kw.pop("risk", {})
    return parse_config({**kw, "risk": risk})


def order(coin: str, usd: float, reduce_only: bool = False) -> RiskOrder:
    return RiskOrder(coin, usd > 0, abs(usd) / PX[coin], PX[coin], reduce_only)


def plan_from(targets: dict[str, float], current: dict[str, float] | None = None) -> list[RiskOrder]:
    current = current or {}
    out = []
    for coin in sorted(set(targets) | set(current)):
        d = targets.get(coin, 0.0) - current.get(coin, 0.0)
        if abs(d) > 1e-9:
            out.append(order(coin, d, reduce_only=abs(targets.get(coin, 0.0)) < abs(current.get(coin, 0.0))))
    return out


# a neutral book within every default limit: 10% cap, 35% per side, 2x leverage, ±5% net, $2.5k orders
GOOD = {"BTC": 900.0, "ETH": 800.0, "SOL": -850.0, "DOGE": -800.0}


def rules(decision) -> set[str]:
    return {b.rule for b in decision.breaches}


def test_clean_plan_is_approved_with_exposure_figures():
    d = check_plan(plan_from(GOOD), GOOD, AV, ADV, False, cfg())
    assert d.approved and not d.scaled and d.scale == 1.0 and d.breaches == []
    assert d.exposure["long_usd"] == pytest.approx(1700) and d.exposure["short_usd"] == pytest.approx(1650)
    assert d.exposure["net_usd"] == pytest.approx(50) and d.exposure["leverage"] == pytest.approx(0.335)
    assert d.summary() == "risk checks passed"


def test_halt_refuses_even_a_clean_plan_and_even_in_scale_mode():
    for c in (cfg(), cfg(risk={"breach_action": "scale"})):
        d = check_plan(plan_from(GOOD), GOOD, AV, ADV, True, c)
        assert not d.approved and rules(d) == {"halted"}
        assert "halted" in d.summary()


@pytest.mark.parametrize("av", [50.0, 0.0, -5.0, float("nan")])
def test_account_value_below_minimum_or_invalid_refuses(av):
    d = check_plan(plan_from(GOOD), GOOD, av, ADV, False, cfg(risk={"breach_action": "scale"}))
    assert not d.approved and "account_value" in rules(d)


def test_position_cap_refuses_and_names_the_coin():
    targets = {**GOOD, "BTC": 1_500.0, "SOL": -1_450.0}  # 15% > 10%
    d = check_plan(plan_from(targets), targets, AV, ADV, False, cfg())
    assert not d.approved
    caps = [b for b in d.breaches if b.rule == "position_cap"]
    assert {b.coin for b in caps} == {"BTC", "SOL"}
    assert caps[0].limit == pytest.approx(1_000.0)
    assert "BTC" in d.summary() and "max_position_pct" in d.summary()


def test_side_gross_refuses():
    targets = {"BTC": 1000.0, "ETH": 1000.0, "SOL": 1000.0, "DOGE": 1000.0}
    shorts = {f"S{i}": -1000.0 for i in range(4)}
    book = {**targets, **shorts}
    adv = {**ADV, **{k: 1e9 for k in shorts}}
    orders = [o for o in plan_from(targets)] + [RiskOrder(k, False, 10.0, 100.0) for k in shorts]
    d = check_plan(orders, book, AV, adv, False, cfg())
    assert not d.approved
    assert {b.message.split()[1] for b in d.breaches if b.rule == "side_gross"} == {"long", "short"}


def test_total_leverage_refuses():
    # 2x total leverage: with side_gross_pct raised to the maximum the config allows, a 2.4x book breaches leverage
    c = cfg(side_gross_pct=100.0, max_position_pct=20.0)
    book = {f"L{i}": 2000.0 for i in range(6)} | {f"S{i}": -2000.0 for i in range(6)}
    adv = {k: 1e10 for k in book}
    orders = [RiskOrder(k, v > 0, abs(v) / 10, 10.0) for k, v in book.items()]
    d = check_plan(orders, book, AV, adv, False, c)
    assert not d.approved and "leverage" in rules(d)
    lev = next(b for b in d.breaches if b.rule == "leverage")
    assert lev.value == pytest.approx(24_000) and lev.limit == pytest.approx(20_000)


def test_net_exposure_band_refuses():
    targets = {"BTC": 900.0, "ETH": 800.0, "SOL": -300.0}  # net +1400 = 14% > 5%
    d = check_plan(plan_from(targets), targets, AV, ADV, False, cfg())
    assert not d.approved and rules(d) == {"net_exposure"}


def test_max_order_notional_refuses():
    c = cfg(risk={"max_order_notional_usd": 500.0})
    d = check_plan(plan_from(GOOD), GOOD, AV, ADV, False, c)
    assert not d.approved and rules(d) == {"order_notional"}
    assert {b.coin for b in d.breaches} == {"BTC", "ETH", "SOL", "DOGE"}


def test_liquidity_refuses_order_too_large_for_adv():
    adv = {**ADV, "DOGE": 20_000.0}  # 800 / 20k = 4% > 2.5%
    d = check_plan(plan_from(GOOD), GOOD, AV, adv, False, cfg())
    assert not d.approved and rules(d) == {"liquidity"}
    assert d.breaches[0].coin == "DOGE" and "ADV" in d.breaches[0].message


def test_unknown_adv_refuses_opening_but_not_closing():
    adv = {k: v for k, v in ADV.items() if k != "DOGE"}
    d = check_plan(plan_from(GOOD), GOOD, AV, adv, False, cfg())
    assert not d.approved and rules(d) == {"liquidity"}
    # closing a DOGE short without ADV is allowed (reduce-only)
    current = dict(GOOD)
    targets = {"BTC": 850.0, "SOL": -850.0}
    d2 = check_plan(plan_from(targets, current), targets, AV, adv, False, cfg())
    assert d2.approved, d2.reasons


def test_invalid_orders_refuse_with_the_coin():
    bad = [RiskOrder("BTC", True, -1.0, 100.0), RiskOrder("ETH", True, 1.0, float("nan"))]
    d = check_plan(bad, GOOD, AV, ADV, False, cfg(risk={"breach_action": "scale"}))
    assert not d.approved and rules(d) == {"invalid_plan"}
    assert {b.coin for b in d.breaches} == {"BTC", "ETH"}


@pytest.mark.parametrize(
    "targets, expected_rule",
    [
        ({"BTC": 1500.0, "SOL": -1500.0}, "position_cap"),
        ({"BTC": 900.0, "ETH": 800.0, "SOL": -300.0}, "net_exposure"),
    ],
)
def test_scale_mode_scales_book_level_breaches_and_the_scaled_book_passes(targets, expected_rule):
    c = cfg(risk={"breach_action": "scale"})
    d = check_plan(plan_from(targets), targets, AV, ADV, False, c)
    assert d.approved and d.scaled and 0 < d.scale < 1
    assert expected_rule in rules(d) and d.summary().startswith("scaled to")
    scaled = scale_targets(targets, d.scale).to_dict()
    again = check_plan(plan_from(scaled), scaled, AV, ADV, False, c)
    assert again.approved and not again.scaled, again.reasons


def test_scale_mode_solves_order_level_limits_against_current_positions():
    c = cfg(risk={"breach_action": "scale", "max_order_notional_usd": 600.0})
    current = {"BTC": 400.0, "SOL": -400.0}
    targets = {"BTC": 900.0, "SOL": -900.0}  # orders of 500 fit; fine
    assert check_plan(plan_from(targets, current), targets, AV, ADV, False, c).approved
    targets = {"BTC": 1000.0, "SOL": -1000.0, "ETH": 900.0, "DOGE": -900.0}  # ETH/DOGE orders 900 > 600
    d = check_plan(plan_from(targets, current), targets, AV, ADV, False, c, current_positions=current)
    assert d.approved and d.scaled
    scaled = scale_targets(targets, d.scale).to_dict()
    again = check_plan(plan_from(scaled, current), scaled, AV, ADV, False, c, current_positions=current)
    assert again.approved and not again.scaled, again.reasons


def test_scale_mode_refuses_when_no_factor_fits():
    # closing a $2000 position needs a $2000 order; the cap is $600 whatever the scale
    c = cfg(risk={"breach_action": "scale", "max_order_notional_usd": 600.0})
    current = {"BTC": 2000.0, "SOL": -500.0}
    targets = {"SOL": -500.0}
    d = check_plan(plan_from(targets, current), targets, AV, ADV, False, c)
    assert not d.approved and "order_notional" in rules(d)
    assert "no single scale factor" in d.summary()


def test_scale_mode_never_scales_past_a_non_scalable_breach():
    c = cfg(risk={"breach_action": "scale"})
    targets = {"BTC": 1500.0, "SOL": -1500.0}
    d = check_plan(plan_from(targets), targets, 50.0, ADV, False, c)
    assert not d.approved and "account_value" in rules(d)


def test_inputs_accept_frames_and_dicts():
    frame = pd.DataFrame(
        {"coin": ["BTC", "SOL"], "is_buy": [True, False], "sz": [0.009, 4.25], "limit_px": [1e5, 200.0]}
    )
    targets = pd.DataFrame({"coin": ["BTC", "SOL"], "notional_usd": [900.0, -850.0]})
    d = check_plan(frame, targets, AV, pd.Series(ADV), False, cfg())
    assert d.approved
    dicts = [{"coin": "BTC", "is_buy": True, "sz": 0.009, "limit_px": 1e5}]
    assert orders_frame(dicts)["notional_usd"].iloc[0] == pytest.approx(900.0)
    with pytest.raises(ValueError, match="limit_px"):
        orders_frame(pd.DataFrame({"coin": ["BTC"], "is_buy": [True], "sz": [1.0]}))


def test_rounding_slack_is_small():
    # 10.04% of account value passes (rounding tolerance); 10.2% does not
    ok = {"BTC": 1004.0, "SOL": -1000.0}
    assert check_plan(plan_from(ok), ok, AV, ADV, False, cfg()).approved
    bad = {"BTC": 1020.0, "SOL": -1000.0}
    assert not check_plan(plan_from(bad), bad, AV, ADV, False, cfg()).approved
    assert math.isclose(scale_targets(ok, 0.5)["BTC"], 502.0)
