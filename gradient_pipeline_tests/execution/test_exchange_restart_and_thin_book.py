"""Two of the simulation's fault kinds on their own, through the real rebalance: a thin book (partial fills, the
run ends `partial` with its residual), and a local-exchange restart from its saved state (fills kept, ids never
repeated — also when the saved state lacks the id counters — and the ledger still equals `userFills`)."""

from __future__ import annotations

import pytest

from gradient_pipeline.exchange.hyperliquid.factory import trading_client
from gradient_pipeline.app.simulate import check_invariants
from gradient_pipeline_tests.execution.conftest import ADV, TARGETS, WINDOW
from gradient_pipeline_tests.execution.test_runner_paper import run


def test_a_thin_book_fills_partially_and_the_rebalance_says_partial(paper):
    paper.handle.thin_book(0.0005)  # ~$1 per level: every order fills only a sliver
    result = run(paper.cfg)
    assert result.status == "partial", result.summary()
    assert result.residual_usd and all(v > 0 for v in result.residual_usd.values())
    client = trading_client(paper.cfg)
    assert check_invariants(paper.cfg, client, paper.db_path, TARGETS, result, False, set()) == []
    paper.handle.thin_book(1.0)  # depth restored: the next window trades to target
    l2 = client.l2_touch("BTC")
    assert all(l2)


@pytest.mark.parametrize("keep_id_counters", [True, False])
def test_a_restarted_exchange_keeps_fills_and_never_repeats_ids(paper, keep_id_counters):
    first = run(paper.cfg)
    assert first.status == "complete", first.summary()
    client = trading_client(paper.cfg)
    before = client.fills_since()
    port = paper.handle.port
    paper.handle.restart(keep_id_counters=keep_id_counters)
    assert paper.handle.port == port
    after_restart = trading_client(paper.cfg).fills_since()
    assert [f.tid for f in after_restart] == [f.tid for f in before]  # nothing dropped
    # trade again after the restart: new ids are above every old one, and the ledger takes every fill
    paper.handle.price_shock(1.05, "BTC")
    paper.handle.advance(4)
    window2 = "2025-03-01 00:00"
    from gradient_pipeline.execution.runner import Rebalancer

    targets2 = {"BTC": 0.05, "ETH": 0.05, "SOL": -0.05, "kPEPE": -0.03, "DOGE": -0.02}  # market-neutral, smaller
    second = Rebalancer(paper.cfg, trading_client(paper.cfg), paper.db_path).run(window2, targets2, ADV)
    assert second.status == "complete", second.summary()
    fills = trading_client(paper.cfg).fills_since()
    new = [f for f in fills if f.tid not in {g.tid for g in before}]
    assert new and min(f.tid for f in new) > max(f.tid for f in before)
    assert min(f.oid for f in new) > max(f.oid for f in before)
    assert check_invariants(paper.cfg, trading_client(paper.cfg), paper.db_path, targets2, second, False,
                            {f.tid for f in before}) == []
    assert WINDOW != window2
