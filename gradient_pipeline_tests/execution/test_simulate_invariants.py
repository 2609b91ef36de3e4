"""The simulation's invariant checker catches a ledger that disagrees with the exchange, a rebalance left
running, and an opening fill while halted (so its "0 violations" means something)."""

from __future__ import annotations

import duckdb

from gradient_pipeline.app.simulate import check_invariants
from gradient_pipeline_tests.execution.test_runner_paper import run


def test_invariants_catch_a_ledger_that_disagrees_with_the_exchange(paper):
    from gradient_pipeline.exchange.hyperliquid.factory import trading_client
    from gradient_pipeline_tests.execution.conftest import TARGETS

    result = run(paper.cfg)
    client = trading_client(paper.cfg)
    assert check_invariants(paper.cfg, client, paper.db_path, TARGETS, result, False, set()) == []
    import sqlalchemy as sa

    from gradient_pipeline import book

    with book.connect(paper.db_path) as conn, conn.begin():
        conn.execute(sa.text("DELETE FROM fills WHERE tid = (SELECT min(tid) FROM fills)"))
        conn.execute(sa.text("UPDATE rebalances SET status = 'running'"))
    found = check_invariants(paper.cfg, client, paper.db_path, TARGETS, result, False, set())
    assert any("ledger fills" in v for v in found) and any("not terminal" in v for v in found), found
    # while halted every fill must close: an opening fill is a violation
    assert any("while halted" in v for v in
               check_invariants(paper.cfg, client, paper.db_path, TARGETS, None, True, set()))
