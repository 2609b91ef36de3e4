"""Backtest accounting on hand-checkable cases, cost model, and point-in-time invariance on real data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gradient_pipeline.core.backtest import run_backtest
from gradient_pipeline.core.costs import CostParams, slippage_bps
from gradient_pipeline.core.signals import SignalParams
from gradient_pipeline.core.portfolio import PortfolioParams
from gradient_pipeline.core.strategy import StrategyParams, run_strategy

TIMES = pd.date_range("2024-01-01", periods=3, freq="4h")


def test_pnl_fees_and_funding_by_hand():
    close = np.array([[100.0, 50.0], [110.0, 45.0], [110.0, 45.0]])
    w = np.array([[0.5, -0.5], [0.5, -0.5], [0.0, 0.0]])
    funding = np.array([[0.0, 0.0], [0.001, 0.002], [0.0, 0.0]])
    adv = np.full((3, 2), 1e12)
    costs = CostParams(taker_fee_bps=10.0, slippage_base_bps=0.0, slippage_impact_coef=0.0)
    bars = run_backtest(TIMES, w, close, funding, adv, costs).bars
    # bar 0: buy 0.5 / sell 0.5 of capital at 10 bp
    assert bars.turnover.iloc[0] == pytest.approx(1.0) and bars.fees.iloc[0] == pytest.approx(0.001)
    eq0 = 1 - 0.001
    # bar 1: long +10 %, short leg -10 % (gains); funding: long pays 0.1 %, short receives 0.2 %
    pnl = 0.5 * 0.10 + (-0.5) * (-0.10)
    fu = 0.5 * 0.001 + (-0.5) * 0.002
    assert bars.gross.iloc[1] == pytest.approx(pnl / eq0) and bars.funding.iloc[1] == pytest.approx(fu / eq0)
    eq_mid = eq0 + pnl - fu
    drifted = np.array([0.5 * 1.1, -0.5 * 0.9])  # positions after the move, traded back to ±0.5 × equity
    traded = np.abs(np.array([0.5, -0.5]) * eq_mid - drifted).sum()
    assert bars.turnover.iloc[1] == pytest.approx(traded / eq_mid)
    eq1 = eq_mid - traded * 0.001
    assert bars.equity.iloc[1] == pytest.approx(eq1) and bars.net.iloc[1] == pytest.approx(eq1 / eq0 - 1)
    # bar 2: flat prices; positions of ±0.5 × eq_mid (sized before the fee) are closed
    assert bars.turnover.iloc[2] == pytest.approx(eq_mid / eq1)
    assert bars.equity.iloc[2] == pytest.approx(eq1 - eq_mid * 0.001)


def test_slippage_grows_with_trade_size():
    c = CostParams()
    k = c.slippage_impact_coef
    s = slippage_bps([100, 1_000, 10_000, 1e9], [1e6] * 4, c)
    assert (np.diff(s) > 0).all() and s[0] == pytest.approx(1.0 + k * 1e4 * np.sqrt(1e-4))
    assert s[-1] == pytest.approx(1.0 + k * 1e4)  # capped at ratio 1
    assert slippage_bps([100], [np.nan], c)[0] == s[-1]  # unknown ADV pays the capped impact


def test_zero_costs_net_equals_gross(real_panel):
    run = run_strategy(real_panel, StrategyParams(SignalParams(), PortfolioParams()))
    bt = run_backtest(run.times, run.weights.weights, real_panel.close, real_panel.funding, run.signals.adv, CostParams.zero())
    np.testing.assert_allclose(bt.bars.net.to_numpy()[1:], bt.bars.gross.to_numpy()[1:], atol=1e-15)
    with_costs = run_backtest(run.times, run.weights.weights, real_panel.close, real_panel.funding, run.signals.adv, CostParams())
    m = with_costs.metrics
    assert m["sharpe"] < m["sharpe_gross"] and m["fees_paid"] > 0 and m["slippage_paid"] > 0
    b = with_costs.bars
    eq_prev = np.r_[1.0, b.equity.to_numpy()[:-1]]
    eq_mid = eq_prev * (1 + b.gross - b.funding)
    assert m["fees_paid"] == pytest.approx((b.turnover * eq_mid * 4.5e-4 / eq_prev).sum(), rel=1e-9)


@pytest.mark.parametrize("cfg", [
    PortfolioParams(),
    PortfolioParams(rebalance_hours=24, band=0.005, smoothing=0.5),
    PortfolioParams(vol_target=True, target_vol=0.1),
])
def test_point_in_time_invariance(real_panel, cfg):
    """Targets at T computed from data truncated at T equal those computed from the full history."""
    params = StrategyParams(SignalParams(), cfg)
    full = run_strategy(real_panel, params, start="2023-06-01")
    for t_end in ["2023-09-13 08:00", "2024-01-01 00:00", "2024-02-29 20:00"]:
        trunc = run_strategy(real_panel.truncate(t_end), params, start="2023-06-01")
        k = len(trunc.times)
        assert trunc.times[-1] == pd.Timestamp(t_end)
        assert np.array_equal(trunc.weights.weights, full.weights.weights[:k])
        assert np.array_equal(trunc.weights.rank, full.weights.rank[:k])


def test_future_data_change_does_not_move_past_targets(real_panel):
    params = StrategyParams(SignalParams(), PortfolioParams())
    base = run_strategy(real_panel, params)
    from dataclasses import replace
    shocked_close = real_panel.close.copy()
    shocked_close[-50:] *= 3.0  # a later crash / pump
    shocked = run_strategy(replace(real_panel, close=shocked_close), params)
    assert np.array_equal(base.weights.weights[:-50], shocked.weights.weights[:-50])
    assert not np.array_equal(base.weights.weights[-50:], shocked.weights.weights[-50:])
