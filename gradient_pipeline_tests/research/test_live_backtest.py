"""The as-live backtest: live planner + pre-trade risk + drawdown stop + capacity, on real data (a dozen coins)."""

from __future__ import annotations

import numpy as np
import pytest

from gradient_pipeline.config import load_config
from gradient_pipeline.research.data import load_panel_freqtrade
from gradient_pipeline.research.live_backtest import passive_fill, run_as_live

COINS = ["BTC", "ETH", "SOL", "DOGE", "ARB", "OP", "LINK", "AVAX", "INJ", "SUI", "WIF", "kPEPE", "TIA"]
START, END = "2024-02-01", "2024-03-01"


@pytest.fixture(scope="module")
def panel(freqtrade_dir):
    return load_panel_freqtrade(freqtrade_dir, end=END, coins=COINS)


@pytest.fixture(scope="module")
def cfg():
    return load_config(None).model_copy(update={"liquidity_threshold_usd": 1000.0})


def _with(cfg, section=None, **kw):
    if section is None:
        return cfg.model_copy(update=kw)
    return cfg.model_copy(update={section: getattr(cfg, section).model_copy(update=kw)})


def test_small_orders_are_skipped_as_live_skips_them(panel, cfg):
    small = run_as_live(panel, cfg, START, END, capital_usd=2000)
    big = run_as_live(panel, _with(cfg, "risk", max_order_notional_usd=1e9), START, END, capital_usd=200_000)
    assert big.metrics["refused_share"] < 0.05
    assert small.metrics["skipped_small_orders"] > 0
    assert small.metrics["skipped_small_share"] > big.metrics["skipped_small_share"]
    b = small.bars  # only deltas under the minimum + buffer are skipped
    min_open = cfg.execution.min_order_usd + cfg.execution.min_order_buffer_usd
    assert (b["skipped_small_usd"] <= b["n_skipped_small"] * min_open + 1e-9).all()


def test_order_notional_limit_refuses_every_rebalance_at_large_capital(panel, cfg):
    """risk.max_order_notional_usd ($2,500 by default) with breach_action refuse: at $200k a full position is a
    $20k order, so live (and therefore the as-live backtest) never trades."""
    r = run_as_live(panel, cfg, START, END, capital_usd=200_000)
    assert r.metrics["traded_usd"] == 0 and r.metrics["refused_share"] == 1.0


def test_drawdown_stop_flattens_and_halts(panel, cfg):
    tight = _with(_with(cfg, "risk", drawdown_warn_pct=0.5), emergency_stop_drawdown_pct=1.0)
    r = run_as_live(panel, tight, START, END)
    assert r.metrics["halted_at"] is not None
    after = r.bars.loc[r.bars.index > r.metrics["halted_at"]]
    assert len(after) and (after["gross_exposure"] == 0).all() and (after["turnover"] == 0).all()
    assert r.bars.loc[r.metrics["halted_at"], "turnover"] > 0  # the flattening trade itself
    off = run_as_live(panel, _with(tight, "backtest", drawdown_stop=False), START, END)
    assert off.metrics["halted_at"] is None and off.bars["gross_exposure"].iloc[-1] > 0


def test_adv_limit_refuses_or_scales_as_configured(panel, cfg):
    tiny = _with(cfg, "risk", max_order_adv_pct=0.002)  # orders above 0.002 % of ADV breach
    refused = run_as_live(panel, tiny, START, END, capital_usd=50_000)
    assert refused.metrics["refused_share"] > 0.9 and refused.metrics["traded_usd"] < 1.0
    scaled = run_as_live(panel, _with(tiny, "risk", breach_action="scale"), START, END, capital_usd=50_000)
    assert scaled.metrics["traded_usd"] > 0
    assert (scaled.bars["scale"] < 1).any() and scaled.metrics["avg_gross_exposure"] < 0.7


def test_participation_cap_limits_fills(panel, cfg):
    r = run_as_live(panel, _with(_with(cfg, "backtest", participation_cap_pct=0.0001), "risk",
                                 max_order_notional_usd=1e9), START, END, capital_usd=100_000)
    assert r.metrics["clipped_share"] > 0.5
    assert r.metrics["avg_gross_exposure"] < 0.5 * r.metrics["avg_target_gross"]


def test_costs_are_fee_plus_spread_plus_sigma_impact(panel, cfg):
    flat = run_as_live(panel, _with(cfg, "backtest", impact_y=0.0), START, END)
    assert flat.metrics["shortfall_bps"] == pytest.approx(cfg.costs.taker_fee_bps + cfg.costs.slippage_base_bps)
    imp = run_as_live(panel, _with(cfg, "risk", max_order_notional_usd=1e9), START, END, capital_usd=100_000)
    assert imp.metrics["shortfall_bps"] > flat.metrics["shortfall_bps"] + 0.5


def test_passive_fill_rule():
    # a buy rests at the bid 100 × (1 − 1 bp) = 99.99: filled only if a later candle trades below it
    assert passive_fill(100.0, True, 1e-4, [99.995, 99.98], [101, 101], [100.5, 100.7]) == (True, 99.99)
    assert passive_fill(100.0, True, 1e-4, [99.995, 99.991], [101, 101], [100.5, 100.7]) == (False, 100.7)
    assert passive_fill(100.0, False, 1e-4, [99, 99], [100.02, 100.0], [99.5, 99.4]) == (True, 100.01)
    assert passive_fill(100.0, False, 1e-4, [99, 99], [100.01, 100.0], [99.5, np.nan]) == (False, 99.5)
    assert passive_fill(100.0, True, 1e-4, [], [], []) == (False, 100.0)  # no candle in the wait: cross now
