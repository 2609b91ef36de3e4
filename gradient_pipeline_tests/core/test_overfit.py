"""Deflated Sharpe ratio and PBO (CSCV) on synthetic return panels with a known answer."""

from __future__ import annotations

import numpy as np

from gradient_pipeline.core.overfit import deflated_sharpe, expected_max_sharpe, pbo_cscv, per_bar_sharpe


def test_pure_noise_search_is_flagged():
    rng = np.random.default_rng(1)
    R = rng.normal(0, 0.01, (200, 2000))  # 200 zero-edge configurations
    best = int(np.argmax(per_bar_sharpe(R)))
    d = deflated_sharpe(R[best], per_bar_sharpe(R))
    assert d["sr"] > 0 and d["sr"] <= d["sr_star"] * 1.5 and d["dsr"] < 0.95  # luck, and DSR says so
    p = pbo_cscv(R, blocks=10)
    assert p["splits"] == 252 and 0.3 < p["pbo"] < 0.7  # noise: the IS pick is a coin flip OOS


def test_a_real_edge_passes():
    rng = np.random.default_rng(2)
    R = rng.normal(0, 0.01, (50, 2000))
    R[7] += 0.003  # per-bar Sharpe 0.3: a real, stable edge
    d = deflated_sharpe(R[7], per_bar_sharpe(R))
    assert d["dsr"] > 0.99
    assert pbo_cscv(R, blocks=10)["pbo"] < 0.05


def test_expected_max_sharpe_grows_with_trials():
    assert expected_max_sharpe(1, 1.0) == 0.0
    a, b = expected_max_sharpe(10, 0.01), expected_max_sharpe(1000, 0.01)
    assert 0 < a < b
