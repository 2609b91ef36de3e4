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
