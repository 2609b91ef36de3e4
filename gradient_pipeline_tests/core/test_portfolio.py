"""Selection, weights, caps, turnover controls and the weight invariants (incl. hypothesis property tests)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradient_pipeline.core.portfolio import (
    PortfolioParams, check_weights, eligibility, exit_bound, rebalance_mask, target_path,
)
from gradient_pipeline.core.signals import SignalParams, compute_signals
from gradient_pipeline.core.strategy import StrategyParams, run_strategy

PP = PortfolioParams()
T0 = pd.Timestamp("2024-01-01")


def one_bar(scores, sigmas=None, params=PP, adv=1e9, prev=None, delisted=None):
    """Run target_path on a single bar (window ending 04:00 UTC: a rebalance bar for every interval ≤ 4h)."""
    s = np.asarray(scores, dtype=float)[None, :]
    sig = np.ones_like(s) if sigmas is None else np.asarray(sigmas, dtype=float)[None, :]
    n = s.shape[1]
    d = np.zeros((1, n), bool) if delisted is None else np.asarray(delisted)[None, :]
    return target_path(pd.DatetimeIndex([T0]), s, sig, np.full((1, n), adv), np.ones((1, n)), d, params,
                       None if prev is None else np.asarray(prev, float))


@pytest.mark.parametrize("n", [2, 3, 5, 7, 10, 20, 41, 100])
@pytest.mark.parametrize("conc", [10.0, 35.0, 50.0])
def test_selection_counts(n, conc):
    rng = np.random.default_rng(n)
    res = one_bar(rng.normal(size=n), rng.uniform(0.01, 0.1, n), PortfolioParams(concentration_pct=conc, cap=1.0, max_leverage=2.0))
    w = res.weights[0]
    k = min(math.ceil(n * conc / 100), n // 2)
    assert (w > 0).sum() == k and (w < 0).sum() == k


def test_longs_are_the_highest_scores_shorts_the_lowest():
    scores = np.array([0.5, -2.0, 3.0, 1.0, -1.0, 0.0, 2.0, -3.0, 0.2, -0.5])
    w = one_bar(scores, params=PortfolioParams(concentration_pct=30.0, cap=1.0)).weights[0]
    assert set(np.flatnonzero(w > 0)) == {2, 6, 3}
    assert set(np.flatnonzero(w < 0)) == {7, 1, 4}


def test_ties_are_broken_by_coin_name():
    # columns are in coin-name order; all scores equal: rank 1.. goes A→Z, longs take the first names
    res = one_bar(np.zeros(6), params=PortfolioParams(concentration_pct=33.0, cap=1.0))
    w = res.weights[0]
    assert list(np.flatnonzero(w > 0)) == [0, 1] and list(np.flatnonzero(w < 0)) == [4, 5]
    assert list(res.rank[0]) == [1, 2, 3, 4, 5, 6]
    # a tie at the long/short boundary: the earlier name is preferred for the long side
    w2 = one_bar(np.array([1.0, 2.0, 2.0, 0.0, -1.0, -5.0]), params=PortfolioParams(concentration_pct=16.0, cap=1.0)).weights[0]
    assert np.flatnonzero(w2 > 0).tolist() == [1]


def test_inverse_vol_weights_and_side_gross():
    sig = np.array([0.01, 0.02, 0.04, 0.04, 0.02, 0.01])
    w = one_bar([3, 2, 1, -1, -2, -3], sig, PortfolioParams(concentration_pct=50.0, cap=1.0)).weights[0]
    longs = w[:3]
    np.testing.assert_allclose(longs / longs.sum(), (1 / sig[:3]) / (1 / sig[:3]).sum())
    assert longs.sum() == pytest.approx(0.35) and w[3:].sum() == pytest.approx(-0.35)
    eq = one_bar([3, 2, 1, -1, -2, -3], sig, PortfolioParams(concentration_pct=50.0, cap=1.0, weight_scheme="equal")).weights[0]
    np.testing.assert_allclose(eq, [0.35 / 3] * 3 + [-0.35 / 3] * 3)


def test_cap_redistributes_excess_within_the_side():
    # one very low-vol coin would take 0.35 * (100/(100+10+10+10)) ≈ 0.27 > cap 0.10
    sig = np.array([0.001, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01])
    res = one_bar([4, 3, 2, 1, -1, -2, -3, -4], sig, PortfolioParams(concentration_pct=50.0))
    w = res.weights[0]
    assert w[0] == pytest.approx(0.10)
    np.testing.assert_allclose(w[1:4], [(0.35 - 0.10) / 3] * 3)
    assert w[:4].sum() == pytest.approx(0.35) and np.abs(w).max() <= 0.10 + 1e-15
    assert res.info[0, 6] >= 1 and res.info[0, 7] == 0  # capped, not shrunk


def test_side_shrinks_when_cap_makes_the_gross_infeasible():
    res = one_bar([3, 2, 1, -1, -2, -3], params=PortfolioParams(concentration_pct=33.0, cap=0.10))
    w = res.weights[0]  # k = 2, 2 × 10 % < 35 %
    np.testing.assert_allclose(w, [0.1, 0.1, 0, 0, -0.1, -0.1])
    assert res.info[0, 7] == 1
    assert check_weights(w, res.eligible[0], res.info[0], PortfolioParams(concentration_pct=33.0)) == []


def test_ineligible_coins_never_get_weight():
    scores = np.array([5.0, 4.0, 3.0, -3.0, -4.0, -5.0, 0.0, 0.1])
    sig = np.ones(8)
    sig[1] = np.nan  # no sigma yet
    delisted = np.zeros(8, bool)
    delisted[0] = True
    res = one_bar(scores, sig, PortfolioParams(concentration_pct=50.0, cap=1.0), delisted=delisted)
    w = res.weights[0]
    assert w[0] == 0 and w[1] == 0 and (w != 0).sum() == 6
    illiquid = one_bar(scores, None, PortfolioParams(concentration_pct=50.0, cap=1.0), adv=10_000 / 0.025)
    assert (illiquid.weights == 0).all()  # threshold < 2.5 % × ADV fails at equality
    held = one_bar(scores, sig, PortfolioParams(concentration_pct=50.0, cap=1.0, smoothing=0.5),
                   prev=[0.2, 0.2, 0, 0, 0, 0, 0, 0], delisted=delisted)
    assert held.weights[0, 0] == 0 and held.weights[0, 1] == 0  # held positions are exited too


def test_rebalance_mask_anchored_at_epoch():
    times = pd.date_range("2024-01-01", periods=12, freq="4h")
    assert rebalance_mask(times, 4).all()
    m24 = rebalance_mask(times, 24)
    assert list(times[m24] + pd.Timedelta(hours=4)) == [pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-03")]  # 00:00 UTC ends
    assert rebalance_mask(times, 8).sum() == 6


def test_turnover_controls_on_real_data(real_panel):
    base = StrategyParams(SignalParams(), PortfolioParams())
    run = run_strategy(real_panel, base)
    w = run.weights.weights
    # 24h interval: weights change only on rebalance bars or when a coin must be exited
    from dataclasses import replace
    r24 = run_strategy(real_panel, replace(base, portfolio=replace(base.portfolio, rebalance_hours=24)))
    reb = rebalance_mask(r24.times, 24)
    w24, el = r24.weights.weights, r24.weights.eligible
    for t in np.flatnonzero(~reb)[1:]:
        changed = w24[t] != w24[t - 1]
        assert (~el[t][changed]).all() or not changed.any()
    # band and smoothing cut turnover
    to = lambda x: np.abs(np.diff(x, axis=0)).sum(1).mean()  # noqa: E731
    band = run_strategy(real_panel, replace(base, portfolio=replace(base.portfolio, band=0.01))).weights.weights
    smooth = run_strategy(real_panel, replace(base, portfolio=replace(base.portfolio, smoothing=0.3))).weights.weights
    assert to(band) < to(w) and to(smooth) < to(w) and to(w24) < to(w)


def test_smoothing_formula():
    p = PortfolioParams(concentration_pct=50.0, cap=1.0, smoothing=0.25)
    prev = np.array([0.0, 0.35, -0.35, 0.0])
    res = one_bar([2, 1, -1, -2], params=p, prev=prev)
    target = one_bar([2, 1, -1, -2], params=PortfolioParams(concentration_pct=50.0, cap=1.0)).weights[0]
    np.testing.assert_allclose(res.weights[0], 0.25 * target + 0.75 * prev)


def test_band_compares_the_target_with_the_held_weight():
    p = PortfolioParams(concentration_pct=50.0, cap=1.0, band=0.05)  # equal sigmas: every target is ±0.175
    prev = np.array([0.16, 0.05, -0.16, 0.0])
    w = one_bar([2, 1, -1, -2], params=p, prev=prev).weights[0]
    assert w[0] == 0.16 and w[2] == -0.16  # held within the band of the target: no trade
    np.testing.assert_allclose(w[[1, 3]], [0.175, -0.175])  # 0.125 off target, and an entry: traded to target


def test_band_never_blocks_entries_exits_or_flips():
    p = PortfolioParams(concentration_pct=20.0, cap=1.0, band=0.5)  # a band wider than any target
    prev = np.array([0.0, 0.02, 0.0, 0.0, 0.03])  # coin 1 held, target 0; coin 4 held long, target short
    w = one_bar([2, 1, 0, -1, -2], params=p, prev=prev).weights[0]
    np.testing.assert_allclose(w, [0.35, 0.0, 0.0, 0.0, -0.35])


def test_band_and_smoothing_converge_to_the_target():
    """The old rule (band on a·(τ − p)) froze every change below band/a; now the held book walks to the target."""
    p = PortfolioParams(concentration_pct=50.0, cap=1.0, band=0.01, smoothing=0.5)
    T = 12
    times = pd.date_range(T0, periods=T, freq="4h")
    score = np.tile([2.0, 1.0, -1.0, -2.0], (T, 1))
    w = target_path(times, score, np.ones((T, 4)), np.full((T, 4), 1e9), np.ones((T, 4)), np.zeros((T, 4), bool),
                    p).weights
    np.testing.assert_allclose(w[0], [0.0875, 0.0875, -0.0875, -0.0875])  # entries: half way
    np.testing.assert_allclose(w[1], [0.13125, 0.13125, -0.13125, -0.13125])
    # .153, .164, then the step to .1695 would leave a gap .0055 < band: it goes to the target exactly
    assert (w[4:] == np.array([0.175, 0.175, -0.175, -0.175])).all() and (w[3] != w[4]).all()


@pytest.mark.parametrize("band,smoothing", [(0.0, 1.0), (0.01, 1.0), (0.01, 0.5), (0.0, 0.5), (0.005, 0.3)])
def test_zero_target_exits_within_the_stated_bound(band, smoothing):
    p = PortfolioParams(concentration_pct=20.0, cap=0.1, band=band, smoothing=smoothing)
    n = exit_bound(p.cap, band, smoothing)
    T = n + 3
    times = pd.date_range(T0, periods=T, freq="4h")
    score = np.tile([2.0, 1.0, 0.0, -1.0, -2.0], (T, 1))  # coins 1-3 never selected: target 0
    prev = np.array([0.1, 0.1, -0.1, 0.1, -0.1])
    w = target_path(times, score, np.ones((T, 5)), np.full((T, 5), 1e9), np.ones((T, 5)), np.zeros((T, 5), bool),
                    p, prev).weights
    assert (w[n - 1:, 1:4] == 0).all()  # flat after n rebalances ...
    if n > 1:
        assert (w[n - 2, 1:4] != 0).all()  # ... and the bound is tight for a position at the cap
    if (band, smoothing) == (0.01, 0.5):
        assert n == 4


@pytest.mark.parametrize("enabled", [False, True])
def test_vol_target(real_panel, enabled):
    from dataclasses import replace
    pp = replace(PortfolioParams(), vol_target=enabled, target_vol=0.05, max_scale=1.0)
    run = run_strategy(real_panel, StrategyParams(SignalParams(), pp))
    scale = run.weights.info[:, 8]
    gross = np.abs(run.weights.weights).sum(1)
    active = run.weights.info[:, 1] > 0
    if not enabled:
        assert (scale == 1).all()
    else:
        assert (scale[active] <= 1 + 1e-12).all() and (scale[active] < 1).mean() > 0.5  # 5 % target is tight
        assert gross[active].max() <= 0.7 + 1e-9
        t = int(np.flatnonzero(active)[-1])
        fv = run.weights.info[t, 9]
        assert scale[t] == pytest.approx(min(1.0, 0.05 / fv))
    for t in range(len(run.times)):
        assert check_weights(run.weights.weights[t], run.weights.eligible[t], run.weights.info[t], pp) == []


def test_check_weights_flags_violations():
    pp = PortfolioParams(cap=0.2)
    el = np.ones(4, bool)
    info = np.zeros(11)
    info[1] = 2
    ok = np.array([0.175, 0.175, -0.175, -0.175])
    assert check_weights(ok, el, info, pp) == []
    assert any("non-finite" in v for v in check_weights(np.array([np.nan, 0, 0, 0]), el, info, pp))
    assert any("cap" in v for v in check_weights(np.array([0.25, 0.10, -0.175, -0.175]), el, info, pp))
    assert any("net" in v for v in check_weights(np.array([0.175, 0.175, -0.175, -0.1]), el, info, pp))
    assert any("counts" in v for v in check_weights(np.array([0.35, 0.0, -0.175, -0.175]), el, info, pp))
    el2 = el.copy()
    el2[0] = False
    assert any("ineligible coin A" in v for v in check_weights(ok, el2, info, pp, coins=list("ABCD")))


# ---------------- property tests on random panels ----------------

@st.composite
def panels(draw):
    T = draw(st.integers(2, 30))
    N = draw(st.integers(1, 25))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    score = rng.normal(size=(T, N))
    score[rng.random((T, N)) < draw(st.floats(0, 0.5))] = np.nan  # gaps
    for j in range(N):
        if rng.random() < 0.3:  # listed mid-range
            score[: rng.integers(0, T), j] = np.nan
        if rng.random() < 0.1:  # all-NaN column
            score[:, j] = np.nan
    if draw(st.booleans()):
        score = np.round(score, 1)  # many ties
    sigma = rng.uniform(0.001, 0.2, (T, N))
    sigma[rng.random((T, N)) < 0.1] = np.nan
    adv = rng.lognormal(13, 2, (T, N))
    close = np.where(rng.random((T, N)) < 0.05, np.nan, 1.0)
    delisted = rng.random((T, N)) < 0.05
    params = PortfolioParams(
        concentration_pct=draw(st.sampled_from([5.0, 20.0, 35.0, 50.0])),
        cap=draw(st.sampled_from([0.02, 0.05, 0.10, 0.35])),
        weight_scheme=draw(st.sampled_from(["inverse_vol", "equal"])),
        rebalance_hours=draw(st.sampled_from([4, 8, 24])),
        band=draw(st.sampled_from([0.0, 0.0, 0.01])),
        smoothing=draw(st.sampled_from([1.0, 1.0, 0.5])),
    )
    times = pd.date_range("2024-01-01", periods=T, freq="4h")
    return times, score, sigma, adv, close, delisted, params


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(panels())
def test_weight_invariants_hold_on_random_panels(panel):
    times, score, sigma, adv, close, delisted, params = panel
    res = target_path(times, score, sigma, adv, close, delisted, params)
    w = res.weights
    assert np.isfinite(w).all()
    assert ((w == 0) | res.eligible).all()  # no weight on an ineligible coin
    assert res.eligible[delisted].sum() == 0
    assert (np.abs(w) <= params.cap + 1e-12).all()
    assert (np.abs(w).sum(1) <= params.max_leverage + 1e-9).all()
    for t in range(len(times)):
        assert check_weights(w[t], res.eligible[t], res.info[t], params) == [], (t, w[t])
        if not params.path_dependent:
            n = int(res.eligible[t].sum())
            k = min(math.ceil(n * params.concentration_pct / 100 - 1e-9), n // 2) if n >= 2 else 0
            assert (w[t] > 0).sum() == k == (w[t] < 0).sum()
            assert abs(w[t].sum()) < 1e-9
            expect = min(params.side_gross, k * params.cap)
            assert w[t][w[t] > 0].sum() == pytest.approx(expect, abs=1e-9)
            # longs outrank shorts
            if k:
                assert np.nanmin(score[t][w[t] > 0]) >= np.nanmax(score[t][w[t] < 0])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(panels(), st.sampled_from([(0.01, 0.5), (0.0, 0.5), (0.02, 0.25), (0.01, 1.0)]))
def test_zero_target_reaches_zero_within_the_bound_on_random_panels(panel, controls):
    """A coin whose target stays 0 for `exit_bound` consecutive rebalances holds nothing (module doc, step 6)."""
    from dataclasses import replace
    times, score, sigma, adv, close, delisted, params = panel
    params = replace(params, band=controls[0], smoothing=controls[1])
    fresh = replace(params, band=0.0, smoothing=1.0, rebalance_hours=4)  # the target of every bar
    tau = target_path(times, score, sigma, adv, close, delisted, fresh).weights
    w = target_path(times, score, sigma, adv, close, delisted, params).weights
    bound = exit_bound(params.cap, params.band, params.smoothing)
    run = np.zeros(score.shape[1], dtype=int)  # consecutive rebalances with a zero target
    for t in np.flatnonzero(rebalance_mask(times, params.rebalance_hours)):
        run = np.where(tau[t] == 0, run + 1, 0)
        assert (w[t][run >= bound] == 0).all(), (t, bound, w[t], run)
        # a held coin with a non-zero target is on its target's side or moving towards it
        held = (w[t] != 0) & (tau[t] != 0)
        prev = w[t - 1] if t else np.zeros_like(w[t])
        assert (np.abs(w[t][held] - tau[t][held]) <= np.abs(prev[held] - tau[t][held]) + 1e-12).all()


def test_rebalance_phase_shifts_the_grid():
    times = pd.date_range("2024-01-01", periods=12, freq="4h")
    ends = (times + pd.Timedelta(hours=4))[rebalance_mask(times, 24, 8)]
    assert list(ends.hour) == [8, 8] and rebalance_mask(times, 24, 0).sum() == 2
    with pytest.raises(ValueError, match="phase"):
        rebalance_mask(times, 24, 24)


def test_gross_above_max_leverage_is_scaled_down_pro_rata():
    """Exiting coins decaying under smoothing plus new entries can exceed the leverage limit: the whole book is
    scaled to exactly the limit, every weight by the same factor."""
    p = PortfolioParams(concentration_pct=10.0, cap=1.0, smoothing=0.5, max_leverage=1.0)  # k = 1
    prev = np.array([0.0, 0.5, -0.5, 0.5, -0.5, 0.0])  # coins 1-4 have zero targets (middle ranks)
    res = one_bar([3, 2, 1, -1, -2, -3], params=p, prev=prev)
    w = res.weights[0]
    unscaled = np.array([0.175, 0.25, -0.25, 0.25, -0.25, -0.175])  # a·τ entries + (1 − a)·p exits: gross 1.35
    assert np.abs(w).sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(w, unscaled / 1.35, rtol=1e-12)
