"""`status` shows positions next to the last rebalance's targets (real paper rebalance, real local exchange)."""

from __future__ import annotations

import json

import pytest

from gradient_pipeline.cli import main
from gradient_pipeline.execution.runner import Rebalancer
from gradient_pipeline.exchange.hyperliquid.factory import trading_client
from gradient_pipeline_tests.execution.conftest import ADV, TARGETS, WINDOW


def _config_file(paper, tmp_path):
    path = tmp_path / "gradient_live.json"
    path.write_text(json.dumps(paper.cfg.model_dump(mode="json")))
    return str(path)


def test_status_shows_positions_next_to_targets(paper, tmp_path, monkeypatch, capsys):
    result = Rebalancer(paper.cfg, trading_client(paper.cfg), paper.db_path).run(WINDOW, TARGETS, ADV)
    assert result.status == "complete", result.reason
    monkeypatch.delenv("GRADIENT_DUCKDB_PATH", raising=False)
    cfg_file = _config_file(paper, tmp_path)

    # (the exit code is the drawdown level on the safety branch; the content is what this test is about)
    main(["status", "--config", cfg_file, "--json"])
    out = json.loads(capsys.readouterr().out)
    t = out["targets"]
    assert t["rebalance_id"] == result.rebalance_id and t["weights"] == pytest.approx(TARGETS)
    assert t["capital_usd"] == pytest.approx(10_000.0, rel=0.01)
    held = {p["coin"]: p["value_usd"] for p in out["positions"]}
    for coin, w in TARGETS.items():  # at target within the order-size rounding
        assert held[coin] == pytest.approx(w * t["capital_usd"], abs=12.0)

    # offline (from the book) renders the table with both sides; a coin not held shows size 0
    paper.handle.stop()
    main(["status", "--config", cfg_file, "--offline"])
    text = capsys.readouterr().out
    assert f"targets:        rebalance {result.rebalance_id} ({len(TARGETS)} coins" in text
    assert "target $" in text and "to trade $" in text
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.startswith("  ") and
            line.split()[0] in TARGETS}
    assert set(rows) == set(TARGETS)
    assert rows["SOL"][4] == f"{TARGETS['SOL']:+.3f}" and rows["BTC"][4] == f"{TARGETS['BTC']:+.3f}"
