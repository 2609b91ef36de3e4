"""The core (numba kernels) against the independent pandas reference (`strategy_reference`), on the full
shared history: weights to 1e-12, net returns to 1e-10. Slow-ish (the reference loops bar by bar in Python,
about half a minute per configuration), kept in the suite because it is the test that catches a strategy
error both core kernels would share (e.g. weighting by sigma instead of 1/sigma)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gradient_pipeline.core.backtest import run_backtest
from gradient_pipeline.core.costs import CostParams
from gradient_pipeline.core.panel import panel_from_frames
from gradient_pipeline.core.portfolio import PortfolioParams
from gradient_pipeline.core.signals import SignalParams
from gradient_pipeline.core.strategy import StrategyParams, run_strategy
from gradient_pipeline.marketdata.freqtrade import load_candles, load_funding
from gradient_pipeline_tests.reference import strategy_reference as ref

START = "2023-06-01"  # weights from here (signals from each coin's first candle), as in the README's figures


@pytest.fixture(scope="module")
def frames(freqtrade_dir):
    return load_candles(freqtrade_dir), load_funding(freqtrade_dir)


@pytest.fixture(scope="module")
def core_panel(frames):
    return panel_from_frames(*frames)


@pytest.fixture(scope="module")
def ref_panel(frames):
    return ref.wide(*frames)


CASES = {
    "default": {},
    "24h_band1_smooth05": dict(rebalance_hours=24, band=0.01, smoothing=0.5),
    "8h_equal_conc10_band05": dict(rebalance_hours=8, weight_scheme="equal", concentration_pct=10.0, band=0.005),
    "vol_target_smooth03_cap4": dict(vol_target=True, target_vol=0.15, max_scale=2.0, smoothing=0.3, cap=0.04),
}


@pytest.mark.parametrize("case", list(CASES))
def test_core_matches_the_pandas_reference_on_the_full_history(core_panel, ref_panel, case):
    kw = CASES[case]
    rp = ref.RefParams(**kw)
    pp = PortfolioParams(**kw)
    run = run_strategy(core_panel, StrategyParams(SignalParams(), pp), start=START)
    close, notional, funding = ref_panel
    assert list(close.columns) == list(core_panel.coins) and close.index.equals(core_panel.times)
    w_ref, (_, _, _, adv) = ref.weights(close, notional, rp, start=START)
    w_core = run.weights.weights
    assert w_ref.shape == w_core.shape
    diff = np.abs(w_core - w_ref.to_numpy())
    assert diff.max() <= 1e-12, (case, w_ref.index[int(np.argmax(diff.max(1)))], float(diff.max()))
    assert np.array_equal(w_core != 0, w_ref.to_numpy() != 0)  # the same names held, not merely close weights
    assert (np.abs(w_core).sum(1) > 0).mean() > 0.9  # a real book, not two empty ones agreeing
    o = run.offset
    bt = run_backtest(run.times, w_core, core_panel.close[o:], core_panel.funding[o:], run.signals.adv[o:],
                      CostParams(), 5000.0)
    net_ref = ref.backtest(w_ref, close, funding, adv, rp)
    np.testing.assert_allclose(bt.bars["net"].to_numpy(), net_ref.to_numpy(), rtol=0, atol=1e-10)


def test_reference_is_not_trivially_equal_to_itself_under_a_different_rule(ref_panel):
    """The reference must be able to disagree: σ-weighting instead of 1/σ changes its weights."""
    close, notional, _ = ref_panel
    a, _ = ref.weights(close.iloc[-400:], notional.iloc[-400:], ref.RefParams())
    b, _ = ref.weights(close.iloc[-400:], notional.iloc[-400:], ref.RefParams(weight_scheme="equal"))
    assert np.abs(a.to_numpy() - b.to_numpy()).max() > 1e-3
    assert pd.Index(a.columns).is_monotonic_increasing
