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
    # 32 choices × (one phase at 4h + six at 24h)
    assert GRID.size == 224 and len(sweep.table) == 224 and sweep.net.shape == (224, len(sweep.times))
    assert sorted(sweep.table.loc[sweep.table.rebalance_hours == 24, "phase_hours"].unique()) == [0, 4, 8, 12, 16, 20]
    assert {"is_avg_gross_exposure", "oos_avg_gross_exposure", "is_sharpe_gross_after_funding"} <= set(sweep.table)
    assert any(c.startswith("h_2023H2") for c in sweep.table) and any(c.startswith("q_2024Q1") for c in sweep.table)


def test_phases_differ_and_overfit_report(sweep):
    t = sweep.table
    d24 = t[(t.rebalance_hours == 24) & (t.span_set == "all") & (t.concentration_pct == 35) & (t.band_pct == 0)
            & (t.smoothing == 1) & (t.weight_scheme == "inverse_vol")]
    assert len(d24) == 6 and d24.is_sharpe.nunique() == 6  # each phase is its own path
    o = sweep.overfit
    assert -1 <= o["spearman_is_oos_net"] <= 1 and -1 <= o["spearman_is_oos_gross"] <= 1
    assert 0 <= o["dsr"] <= 1 and 0 <= o["pbo"] <= 1 and o["dsr_n_trials"] == 224
    assert ("NO configuration has a reliable net edge" in sweep.statement()) == (not o["reliable_net_edge"])


@pytest.mark.parametrize("cid", [0, 13, 41, 63, 100, 223])
def test_each_row_equals_a_direct_backtest(real_panel, sweep, cid):
    c = sweep.table.iloc[cid]
    spans = GRID.span_sets[c.span_set]
    pp = replace(PortfolioParams(), concentration_pct=c.concentration_pct, rebalance_hours=int(c.rebalance_hours),
                 weight_scheme=c.weight_scheme, band=c.band_pct / 100, smoothing=c.smoothing,
                 rebalance_phase_hours=int(c.phase_hours))
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


def test_batched_configs_equal_each_config_alone_and_the_dense_path():
    """The batched kernel runs configurations side by side (bar-major); none may leak into another: each
    row of a mixed batch has the same bits as that configuration run alone, and matches the dense path."""
    from gradient_pipeline.core.portfolio import rebalance_mask
    from gradient_pipeline.core.sweep import panel_inputs, simulate_configs, target_books

    rng = np.random.default_rng(7)
    T, N = 400, 30
    times = pd.date_range("2024-01-01", periods=T, freq="4h")
    close = np.exp(np.cumsum(rng.normal(0, 0.03, (T, N)), 0))
    close[rng.random((T, N)) < 0.03] = np.nan
    score = rng.normal(size=(T, N))
    score[rng.random((T, N)) < 0.05] = np.nan
    sigma = rng.uniform(0.005, 0.1, (T, N))
    adv = rng.lognormal(14, 2, (T, N))
    adv[rng.random((T, N)) < 0.02] = np.nan
    delisted = rng.random((T, N)) < 0.01
    funding = rng.normal(0, 1e-4, (T, N))
    costs = CostParams()
    base = PortfolioParams()
    pps = [replace(base, concentration_pct=conc, rebalance_hours=reb, weight_scheme=ws, band=band, smoothing=sm)
           for conc, reb, ws, band, sm in [(10.0, 4, "inverse_vol", 0.0, 1.0), (50.0, 24, "equal", 0.01, 0.5),
                                           (35.0, 8, "inverse_vol", 0.005, 1.0), (10.0, 12, "equal", 0.0, 0.5),
                                           (35.0, 4, "inverse_vol", 0.0, 0.7)]]
    elig = eligibility(close, delisted, score, sigma, adv, base)
    order, m = rank_order(score, elig)
    shared = panel_inputs(close, sigma, adv)
    hours = [4, 8, 12, 24]
    masks = np.stack([rebalance_mask(times, h) for h in hours])
    books = [target_books(order, m, shared[1], np.zeros((T, 0)), pp) for pp in pps]
    cfg = [(j, hours.index(pp.rebalance_hours), pp.band, pp.smoothing) for j, pp in enumerate(pps)]
    batch = simulate_configs(books, cfg, masks, elig, shared, funding, costs, 5000.0, base.max_leverage)
    assert batch.shape == (len(pps), T, 9)
    for j, pp in enumerate(pps):
        alone = simulate_config(times, order, m, sigma, elig, np.zeros((T, 0)), pp, close, funding, adv, costs,
                                5000.0)
        np.testing.assert_array_equal(batch[j], alone)
        dense = target_path(times, score, sigma, adv, close, delisted, pp)
        ref = run_backtest(times, dense.weights, close, funding, adv, costs, 5000.0).bars.to_numpy()
        np.testing.assert_allclose(batch[j], ref, rtol=1e-12, atol=1e-14)
    assert len({float(batch[j, -1, 6]) for j in range(len(pps))}) == len(pps)  # the configurations differ


def test_batching_and_threads_do_not_change_results(real_panel, sweep):
    """However configurations are split into batches and threads, each gets the same bits (and the sweep's
    table and returns equal the single-threaded run)."""
    from concurrent.futures import ThreadPoolExecutor

    from gradient_pipeline.core.signals import compute_signals
    from gradient_pipeline.core.portfolio import rebalance_mask
    from gradient_pipeline.core.sweep import config_params, panel_inputs, simulate_grid

    sig = compute_signals(real_panel.close, real_panel.notional, real_panel.coins, BASE.signal)
    elig = eligibility(real_panel.close, real_panel.delisted, sig.score, sig.sigma, sig.adv, BASE.portfolio)
    order, m = rank_order(sig.score, elig)
    shared = panel_inputs(real_panel.close, sig.sigma, sig.adv)
    masks = {(h, ph): rebalance_mask(real_panel.times, h, ph) for h in GRID.rebalance_hours for ph in range(0, h, 4)}
    configs = [c for c in GRID.configs() if c["span_set"] == "all"]
    T = len(real_panel.times)
    args = (configs, order, m, elig, np.zeros((T, 0)), shared, real_panel.funding, masks, BASE.portfolio,
            CostParams(), 5000.0)
    one = simulate_grid(*args)
    with ThreadPoolExecutor(2) as pool:
        many = simulate_grid(*args, pool=pool, workers=2, batch=3)
    np.testing.assert_array_equal(one, many)
    # and the sweep's "all" rows are these (the sweep ran them as one batch on one thread)
    ids = [i for i, c in enumerate(GRID.configs()) if c["span_set"] == "all"]
    np.testing.assert_array_equal(sweep.net[ids], one[:, :, 4])
    assert config_params(BASE.portfolio, configs[5]).band == configs[5]["band_pct"] / 100
    parallel = run_sweep(real_panel, BASE, GRID, CostParams(), "2023-12-01", folds=3, workers=2)
    np.testing.assert_array_equal(parallel.net, sweep.net)
    pd.testing.assert_frame_equal(parallel.table, sweep.table)
