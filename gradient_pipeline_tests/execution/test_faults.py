"""Every fault kind leaves a consistent ledger and never a doubled order (real SDK, real local exchange)."""

from __future__ import annotations

import pytest

from gradient_pipeline_tests.execution.conftest import TARGETS
from gradient_pipeline_tests.execution.test_runner_paper import (
    assert_at_target,
    exchange_orders_per_coin,
    ledger,
    run,
)

# kind -> was the order processed by the exchange before the failure?
FAULTS = {
    "429": False,
    "500": False,
    "502": False,
    "timeout": False,
    "drop": False,
    "lost_response": True,
    "lost_response_drop": True,
    "lost_response_timeout": True,
}


def assert_consistent(cfg):
    """Ledger invariants after any run: no unknown fates; fills belong to known orders; sizes add up."""
    orders = ledger(cfg, "SELECT * FROM orders")
    assert not orders["status"].isin(["sending", "ambiguous", "resting"]).any()
    fills = ledger(cfg, "SELECT * FROM fills")
    assert fills["cloid"].isin(orders["cloid"]).all()
    traded = fills.groupby("cloid")["sz"].sum()
    for row in orders[orders["cloid"].isin(traded.index)].itertuples():
        assert row.filled_sz == pytest.approx(traded[row.cloid])
        assert row.status in ("filled", "partial", "canceled")
    assert set(exchange_orders_per_coin(cfg).values()) == {1}  # one exchange order per coin: nothing doubled


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_fault_on_order_batch(paper, kind):
    paper.handle.inject_fault(kind, count=1, action_type="order", hang_seconds=4.0)
    result = run(paper.cfg)
    assert result.status == "complete", result.reason
    assert_at_target(paper.cfg)
    assert_consistent(paper.cfg)
    orders = ledger(paper.cfg, "SELECT * FROM orders ORDER BY attempt")
    if FAULTS[kind]:
        # accepted before the failure: found by client id, never re-sent
        assert orders["attempt"].max() == 0 and set(orders["status"]) == {"filled"}
    elif kind == "429":
        # refused unprocessed and retried by the client with the same signed action
        assert orders["attempt"].max() == 0 and set(orders["status"]) == {"filled"}
    else:
        # not processed: the lookup proves it, attempt 0 is 'not_placed' and attempt 1 trades
        first = orders[orders["attempt"] == 0]
        assert set(first["status"]) == {"not_placed"}, first[["status", "error"]]
        assert set(orders[orders["attempt"] == 1]["status"]) == {"filled"}


def test_lost_response_and_failing_lookup_stops_then_resumes(paper):
    """If the order's fate cannot be learned, the run ends `failed` without re-sending; the next run resolves it."""
    paper.handle.inject_fault("lost_response", count=1, action_type="order")
    paper.handle.inject_fault("500", count=50, info_type="orderStatus")
    first = run(paper.cfg)
    assert first.status == "failed" and "unknown fate" in first.reason
    orders = ledger(paper.cfg, "SELECT * FROM orders")
    assert set(orders["status"]) == {"ambiguous"} and len(orders) == len(TARGETS)
    paper.handle.clear_faults()
    second = run(paper.cfg)
    assert second.rebalance_id == first.rebalance_id and second.status == "complete", second.reason
    orders = ledger(paper.cfg, "SELECT * FROM orders")
    assert len(orders) == len(TARGETS) and set(orders["status"]) == {"filled"}  # resolved, nothing re-sent
    assert_at_target(paper.cfg)
    assert_consistent(paper.cfg)
    status = ledger(paper.cfg, "SELECT status FROM rebalances")["status"]
    assert list(status) == ["complete"]


def test_wrong_key_is_rejected_and_recorded(paper, monkeypatch):
    """An unregistered signer: the exchange answers 'User or API Wallet … does not exist.'; nothing trades."""
    import eth_account

    monkeypatch.setenv("GRADIENT_PRIVATE_KEY", eth_account.Account.create().key.hex())
    cfg = paper.config(execution={"batch_size": 2})
    result = run(cfg)
    assert result.status == "failed" and "does not exist" in result.reason
    orders = ledger(cfg, "SELECT * FROM orders")
    assert len(orders) == len(TARGETS) and orders["attempt"].max() == 0  # no retry with a refused key
    sent = orders[orders["status"] == "rejected"]
    assert len(sent) == 2 and sent["error"].str.contains("User or API Wallet 0x.* does not exist").all()
    assert set(orders[orders["status"] != "rejected"]["status"]) == {"not_placed"}  # later batches never sent
    assert exchange_orders_per_coin(cfg) == {}
