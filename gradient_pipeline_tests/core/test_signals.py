"""The signal kernel equals pandas' EWMA definitions, continues exactly from stored state, and starts coins at
their first trade."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gradient_pipeline.core.signals import (
    MAX_GAP_BARS, SignalParams, SignalState, compute_signals, pandas_alpha, trailing_adv,
)

P = SignalParams()


def pandas_reference(close: pd.Series, notional: pd.Series, params: SignalParams):
    """The strategy card's formulas written with pandas, for one coin."""
    traded = notional > 0
    c = close.copy()
    if traded.any():
        c[: traded.idxmax()] = np.nan  # back-filled pre-trade rows are not history
    else:
        c[:] = np.nan
    r = np.log(c / c.shift(1))
    sigma = r.ewm(span=params.vol_span, adjust=False, min_periods=params.vol_span).std()
    z = (r / sigma).replace([np.inf, -np.inf], np.nan)
    zf = z.fillna(0.0).where(c.notna().cummax())
    ewms = [zf.ewm(span=s, adjust=False).mean() for s in params.spans]
    return r, sigma, sum(ewms), ewms


def test_kernel_equals_pandas_on_real_data(real_panel):
    res = compute_signals(real_panel.close, real_panel.notional, real_panel.coins, P, keep_ewm=True)
    for j, coin in enumerate(real_panel.coins):
        close = pd.Series(real_panel.close[:, j])
        notional = pd.Series(real_panel.notional[:, j])
        r, sigma, score, ewms = pandas_reference(close, notional, P)
        np.testing.assert_allclose(res.r[:, j], r.to_numpy(), rtol=0, atol=1e-12, err_msg=coin)
        np.testing.assert_allclose(res.sigma[:, j], sigma.to_numpy(), rtol=0, atol=1e-12, err_msg=coin)
        np.testing.assert_allclose(res.score[:, j], score.to_numpy(), rtol=0, atol=1e-12, err_msg=coin)
        np.testing.assert_allclose(res.ewm[:, j, -1], ewms[-1].to_numpy(), rtol=0, atol=1e-12, err_msg=coin)
        # a coin has a sigma exactly once it has vol_span observed returns
        first = int(np.argmax(np.isfinite(sigma.to_numpy()))) if sigma.notna().any() else None
        if first is not None:
            assert int(r.iloc[: first + 1].notna().sum()) == P.vol_span


def test_alpha_matches_pandas_span():
    x = pd.Series(np.random.default_rng(1).normal(size=50))
    a = pandas_alpha(24)
    manual = [x.iloc[0]]
    for v in x.iloc[1:]:
        manual.append(((1 - a) * manual[-1] + a * v) / ((1 - a) + a))
    np.testing.assert_array_equal(np.array(manual), x.ewm(span=24, adjust=False).mean().to_numpy())


@pytest.mark.parametrize("cut", [1, 37, 500, 2000])
def test_state_continuation_is_bit_identical(real_panel, cut):
    full = compute_signals(real_panel.close, real_panel.notional, real_panel.coins, P)
    head = compute_signals(real_panel.close[:cut], real_panel.notional[:cut], real_panel.coins, P)
    tail = compute_signals(real_panel.close[cut:], real_panel.notional[cut:], real_panel.coins, P, state=head.state,
                           notional_prefix=real_panel.notional[:cut])
    for name in ("r", "sigma", "z", "score", "adv"):
        a, b = getattr(full, name)[cut:], getattr(tail, name)
        assert np.array_equal(a, b, equal_nan=True), name


def test_state_survives_coin_reordering(real_panel):
    head = compute_signals(real_panel.close[:300], real_panel.notional[:300], real_panel.coins, P)
    rev = tuple(reversed(real_panel.coins))
    st = head.state.reindex(rev)
    tail = compute_signals(real_panel.close[300:, ::-1], real_panel.notional[300:, ::-1], rev, P, state=st)
    full = compute_signals(real_panel.close, real_panel.notional, real_panel.coins, P)
    assert np.array_equal(full.score[300:], tail.score[:, ::-1], equal_nan=True)


def test_pre_trade_rows_are_not_history():
    T = 80
    close = np.full((T, 1), 100.0)
    close[40:, 0] = 100 * np.exp(np.cumsum(np.full(40, 0.01)))
    notional = np.zeros((T, 1))
    notional[40:, 0] = 1e6  # trading starts at bar 40; before that: back-filled prices, zero volume
    res = compute_signals(close, notional, ["X"], P)
    assert np.isnan(res.score[:40]).all() and np.isnan(res.r[:41]).all()
    assert np.isfinite(res.score[40:]).all()
    assert res.r[41, 0] == pytest.approx(np.log(close[41, 0] / close[40, 0]))


def test_long_gap_drops_the_coin_and_restarts_it():
    rng = np.random.default_rng(3)
    T = 200
    close = np.exp(np.cumsum(rng.normal(0, 0.02, (T, 1)), 0))
    close[50:50 + MAX_GAP_BARS + 1, 0] = np.nan
    notional = np.where(np.isnan(close), np.nan, 1e6)
    res = compute_signals(close, notional, ["X"], P)
    assert np.isfinite(res.score[50 + MAX_GAP_BARS - 1, 0])  # still carried during a short gap
    assert np.isnan(res.score[50 + MAX_GAP_BARS, 0])  # dropped
    restart = 50 + MAX_GAP_BARS + 1
    fresh = compute_signals(close[restart:], notional[restart:], ["X"], P)
    assert np.array_equal(res.score[restart:], fresh.score, equal_nan=True)


def test_combinations(real_panel):
    s = compute_signals(real_panel.close, real_panel.notional, real_panel.coins, P, keep_ewm=True)
    m = compute_signals(real_panel.close, real_panel.notional, real_panel.coins, SignalParams(combination="mean"))
    v = compute_signals(real_panel.close, real_panel.notional, real_panel.coins, SignalParams(combination="sign_sum"))
    np.testing.assert_allclose(m.score, s.score / len(P.spans), rtol=1e-13, atol=1e-15)
    ok = np.isfinite(v.score)
    assert np.array_equal(v.score[ok], np.round(v.score[ok])) and np.abs(v.score[ok]).max() <= len(P.spans)
    np.testing.assert_array_equal(v.score[ok], np.sign(s.ewm).sum(2)[ok])
    with pytest.raises(ValueError, match="signal_combination"):
        compute_signals(real_panel.close[:5], real_panel.notional[:5], real_panel.coins, SignalParams(combination="x"))


def test_adv_is_trailing_sum_known_at_the_bar():
    n = np.arange(1.0, 21.0).reshape(-1, 1)
    n[5, 0] = np.nan  # missing candle counts as no volume
    adv = trailing_adv(n, 6)
    ref = pd.Series(n[:, 0]).fillna(0).rolling(6, min_periods=1).sum().to_numpy()
    np.testing.assert_allclose(adv[:, 0], ref)


def test_fresh_state_is_empty():
    st = SignalState(("A", "B"), 3)
    assert not st.started.any() and np.isnan(st.ewm).all() and st.ewm.shape == (2, 3)
