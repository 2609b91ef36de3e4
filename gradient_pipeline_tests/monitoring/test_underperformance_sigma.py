"""The underperformance check's σ: the latest paper-vs-backtest tracking error (`research track`), or a loud fallback."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from gradient_pipeline.config import parse_config
from gradient_pipeline.monitoring.performance import (
    compare,
    tracking_path,
    underperformance_sigma,
)

BARS = pd.date_range("2025-05-01", periods=13, freq="4h")


@pytest.fixture
def cfg(tmp_path):
    return parse_config({"duckdb_path": str(tmp_path / "data" / "gradient.duckdb")})


def _backtest():
    # +0.1% a bar with ±1% bar volatility
    return pd.Series([0.001 + (0.01 if i % 2 else -0.01) for i in range(len(BARS))], index=BARS)


def _live(bt, lag_per_bar):
    """Live equity that earns the backtest's return minus `lag_per_bar` every bar."""
    return pd.Series(10_000 * np.cumprod(np.r_[1.0, 1 + bt.to_numpy()[1:] - lag_per_bar]), index=BARS)


def test_sigma_comes_from_the_stored_tracking_run(cfg):
    path = tracking_path(cfg)
    assert path == cfg.resolved_duckdb_path.parent / "tracking_error.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"tracking_error_bp": 2.5, "windows": 60, "start": "2025-06-01 00:00:00",
                                "execution": "ioc", "created_at": "2026-01-01 00:00:00"}))
    bt = _backtest()
    s = underperformance_sigma(cfg, bt)
    assert s.source == "tracking" and s.per_bar == pytest.approx(2.5e-4)
    assert "2.50 bp per 4h window" in s.note and "60 windows" in s.note
    # 5 bp a bar behind the backtest over 12 bars: invisible against the backtest's 1% bar volatility, but
    # 60 bp against a tracking error of 2.5 bp per window (σ·√12 ≈ 8.7 bp) is a -6.9σ underperformance
    live = _live(bt, 5e-4)
    loose = compare(live, bt)
    tight = compare(live, bt, s.per_bar)
    assert loose.z > -2
    assert tight.z < -2
    assert tight.sd == pytest.approx(2.5e-4 * np.sqrt(12))


def test_no_tracking_run_falls_back_loudly(cfg, caplog):
    bt = _backtest()
    with caplog.at_level("WARNING"):
        s = underperformance_sigma(cfg, bt)
    assert s.source == "backtest"
    assert s.per_bar == pytest.approx(float(np.std(bt.to_numpy(), ddof=1)))
    assert "FALLBACK" in s.note and "does not exist" in s.note and "research track" in s.note
    assert "FALLBACK" in caplog.text
    assert underperformance_sigma(cfg, None) is None  # nothing to fall back on: the caller says it cannot run


@pytest.mark.parametrize("content", ["{not json", json.dumps({"tracking_error_bp": 0}), json.dumps({"windows": 6})])
def test_unreadable_tracking_file_is_named_in_the_fallback(cfg, content):
    path = tracking_path(cfg)
    path.parent.mkdir(parents=True)
    path.write_text(content)
    s = underperformance_sigma(cfg, _backtest())
    assert s.source == "backtest" and str(path) in s.note and "unreadable" in s.note
