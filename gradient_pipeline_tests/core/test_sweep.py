"""The sweep reproduces the backtest for each configuration and picks winners honestly."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from gradient_pipeline.core.backtest import run_backtest
from gradient_pipeline.core.costs import CostParams
from gradient_pipeline.core.portfolio import PortfolioParams
from gradient_pipeline.core.signals import SignalParams
from gradient_pipeline.core.strategy import StrategyParams, run_strategy
from gradient_pipeline.core.sweep import SweepGrid, run_sweep

GRID = SweepGrid(concentration_pct=(20.0, 35.0), rebalance_hours=(4, 24), weight_scheme=("inverse_vol", "equal"),
                 span_sets={"all": (2, 4, 8, 16, 32, 64, 128, 256, 512, 1024), "slow": (64, 128, 256, 512, 1024)},
                 band_pct=(0.0, 1.0), smoothing=(1.0, 0.5))
BASE = StrategyParams(SignalParams(), PortfolioParams())


@pytest.fixture(scope="module")
def sweep(real_panel):
    return run_sweep(real_panel, BASE, GRID, CostParams(), "2023-12-01", folds=3)


def test_grid_size_and_rows(sweep):
    assert GRID.size == 64 and len(sweep.table) == 64 and sweep.net.shape == (64, len(sweep.times))


@pytest.mark.parametrize("cid", [0, 13, 41, 63])
def test_each_row_equals_a_direct_backtest(real_panel, sweep, cid):
    c = sweep.table.iloc[cid]
    spans = GRID.span_sets[c.span_set]
    pp = replace(PortfolioParams(), concentration_pct=c.concentration_pct, rebalance_hours=int(c.rebalance_hours),
                 weight_scheme=c.weight_scheme, band=c.band_pct / 100, smoothing=c.smoothing)
    run = run_strategy(real_panel, StrategyParams(SignalParams(spans=spans), pp))
    bt = run_backtest(run.times, run.weights.weights, real_panel.close, real_panel.funding, run.signals.adv, CostParams())
    np.testing.assert_allclose(sweep.net[cid], bt.bars.net.to_numpy(), rtol=0, atol=1e-13)


def test_winner_and_walk_forward(sweep):
    w = sweep.winner()
    assert w.is_sharpe == sweep.table.is_sharpe.max()
    wf = sweep.walk_forward
    assert len(wf) == 3 and (wf.start >= sweep.split).all()
    # each fold's choice is the best net Sharpe on the bars before it
    for row in wf.itertuples():
        a = int(sweep.times.searchsorted(row.start))
        train = sweep.net[:, 1:a]
        sh = train.mean(1) / train.std(1, ddof=1)
        assert row.config_id == int(np.nanargmax(sh))
    text = sweep.statement()
    assert "In-sample" in text and "Out-of-sample" in text and f"config {int(w.config_id)}" in text


# the fused sparse kernel equals the dense weights + backtest path on random panels, every option included
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import pandas as pd  # noqa: E402

from gradient_pipeline.core.portfolio import eligibility, rank_order, target_path  # noqa: E402
from gradient_pipeline.core.sweep import simulate_config  # noqa: E402


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), T=st.integers(3, 60), N=st.integers(1, 20),
       conc=st.sampled_from([10.0, 35.0, 50.0]), reb=st.sampled_from([4, 8, 24]),
       scheme=st.sampled_from(["inverse_vol", "equal"]), band=st.sampled_from([0.0, 0.005]),
       smoothing=st.sampled_from([1.0, 0.6]), vt=st.booleans())
def test_sparse_kernel_equals_dense_path(seed, T, N, conc, reb, scheme, band, smoothing, vt):
    rng = np.random.default_rng(seed)
    times = pd.date_range("2024-01-01", periods=T, freq="4h")
    close = np.exp(np.cumsum(rng.normal(0, 0.03, (T, N)), 0))
    close[rng.random((T, N)) < 0.05] = np.nan
    score = rng.normal(size=(T, N))
    score[rng.random((T, N)) < 0.1] = np.nan
    sigma = rng.uniform(0.005, 0.1, (T, N))
    adv = rng.lognormal(14, 2, (T, N))
    delisted = rng.random((T, N)) < 0.03
    funding = rng.normal(0, 1e-4, (T, N))
    r_hist = np.log(close / np.vstack([np.full((1, N), np.nan), close[:-1]]))
    r_hist = np.vstack([np.full((23, N), np.nan), r_hist])
    pp = replace(PortfolioParams(), concentration_pct=conc, rebalance_hours=reb, weight_scheme=scheme, band=band,
                 smoothing=smoothing, vol_target=vt, target_vol=0.3)
    dense = target_path(times, score, sigma, adv, close, delisted, pp, None, r_hist)
    ref = run_backtest(times, dense.weights, close, funding, adv, CostParams(), 5000.0).bars.to_numpy()
    elig = eligibility(close, delisted, score, sigma, adv, pp)
    order, m = rank_order(score, elig)
    out = simulate_config(times, order, m, sigma, elig, r_hist, pp, close, funding, adv, CostParams(), 5000.0)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-14)
