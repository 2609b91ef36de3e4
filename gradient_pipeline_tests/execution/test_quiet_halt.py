"""Quiet while halted: a flat, halted account raises no position-drift alert tick after tick."""

import datetime as dt


from gradient_pipeline.config import parse_config
from gradient_pipeline.venue.model import AccountState, Position
from gradient_pipeline.book.engine import engine_for
from gradient_pipeline.book import ledger
from gradient_pipeline.monitoring.alerts import is_active
from gradient_pipeline.monitoring.equity import EquityState
from gradient_pipeline.monitoring.halt import set_halt
from gradient_pipeline.monitoring.review import review_snapshot
from gradient_pipeline_tests.monitoring.conftest import alert_receiver  # noqa: F401 - the real HTTP receiver fixture

CFG = parse_config({"alerts": {"min_interval_s": 0}})


def _ledger_with_targets(conn):
    ledger.start_rebalance(conn, "rb-1", dt.datetime(2025, 5, 1), "paper", "local", "0xabc", 10_000.0)
    ledger.snapshot(conn, dt.datetime(2025, 5, 1, 4), "rebalance_end", "rb-1", 10_000.0, 0.0, {},
                    {"BTC": 0.10, "ETH": -0.10})
    ledger.finish_rebalance(conn, "rb-1", "complete", None)


def test_flat_and_halted_is_quiet_and_positions_left_open_alert_once(tmp_path, alert_receiver):
    conn = engine_for(tmp_path / "g.duckdb").connect()  # the book beside that DuckDB path
    _ledger_with_targets(conn)
    state = EquityState(dt.datetime(2025, 5, 1, 8), 8_000.0, 10_000.0, 20.0, "monitor")
    flat = AccountState(8_000.0, 0.0, {})
    # not halted: a flat account drifts from the last rebalance's targets (that is worth one alert)
    review_snapshot(conn, CFG, flat, state)
    assert is_active(conn, "position_drift")
    set_halt(conn, "drawdown 20% ≥ 20%", source="test")
    # halted and flat: the target is flat, so the condition clears and every later tick is silent
    for _ in range(3):
        assert review_snapshot(conn, CFG, flat, state) == []
    assert not is_active(conn, "position_drift")
    # halted with a position the flatten left behind: alerted once, not per tick
    left = AccountState(8_000.0, 900.0, {"ETH": Position("ETH", -18.0, 50.0, 900.0, 0.0)})
    deliveries = [review_snapshot(conn, CFG, left, state) for _ in range(3)]
    assert [len(d) for d in deliveries] == [1, 0, 0]
    assert "the halt" in deliveries[0][0].body
    assert len(alert_receiver.posts) == 2  # the pre-halt drift and the left-open position: nothing per tick
