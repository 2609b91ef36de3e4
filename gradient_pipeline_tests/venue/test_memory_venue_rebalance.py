"""A second venue, added by implementing `ExecutionVenue` in one file (`memory.py`), drives whole rebalances
through the real runner, planner, risk gate and operations book — nothing of the rebalance logic is doubled."""

from __future__ import annotations

import pytest

from gradient_pipeline.book import halt as book_halt
from gradient_pipeline import book
from gradient_pipeline.config import parse_config
from gradient_pipeline.execution.runner import Rebalancer
from gradient_pipeline.venue import ExecutionVenue, InstrumentSpec
from gradient_pipeline_tests.conftest import book_frame
from gradient_pipeline_tests.venue.memory import MemoryVenue, TickInstrument

WINDOW = "2025-02-28 20:00"
MIDS = {"AAA": 101.37, "BBB": 7.4219, "CCC": 0.5113, "DDD": 2403.0}
TARGETS = {"AAA": 0.08, "BBB": -0.07, "CCC": -0.03}  # DDD: no target (net -2%: inside the risk limit)
ADV = {c: 5e8 for c in MIDS}


def make_venue(**kw) -> MemoryVenue:
    instruments = {"AAA": TickInstrument("AAA", lot=0.05, tick=0.01), "BBB": TickInstrument("BBB", lot=1.0, tick=0.0005),
                   "CCC": TickInstrument("CCC", lot=10.0, tick=0.0001), "DDD": TickInstrument("DDD", lot=0.001, tick=0.5)}
    return MemoryVenue(instruments, dict(MIDS), cash_usd=10_000.0, **kw)


def make_cfg(tmp_path, **extra):
    return parse_config({"mode": "paper", "duckdb_path": str(tmp_path / "g.duckdb"), **extra})


def run(cfg, venue, window=WINDOW, targets=TARGETS):
    return Rebalancer(cfg, venue, cfg.duckdb_path).run(window, targets, ADV)


def held_usd(venue: MemoryVenue) -> dict[str, float]:
    return {c: szi * venue.mids[c] for c, (szi, _px) in venue.positions.items()}


def test_the_double_is_an_execution_venue_with_its_own_instrument_rules():
    venue = make_venue()
    assert isinstance(venue, ExecutionVenue)
    spec = venue.instruments()["BBB"]
    assert isinstance(spec, InstrumentSpec)
    assert spec.round_size(12.9) == 12.0 and spec.round_price(7.42191, True) == pytest.approx(7.4220)
    assert not spec.is_valid_price(7.4221) and spec.is_valid_price(7.422)


def test_one_rebalance_end_to_end_on_the_double(tmp_path):
    cfg = make_cfg(tmp_path)
    venue = make_venue()
    result = run(cfg, venue)

    assert result.status == "complete", result.reason
    # positions: every target reached within one lot (and the $ minimum), nothing held without a target
    lots = {c: s.lot * MIDS[c] for c, s in venue.instruments().items()}
    held = held_usd(venue)
    assert set(held) == set(TARGETS)
    capital = 10_000.0
    for coin, w in TARGETS.items():
        assert held[coin] == pytest.approx(w * capital, abs=lots[coin] + 1e-9), coin
    # orders: one IOC per coin, on the instrument's grid, recorded with the venue's ids, all filled
    orders = book_frame(cfg.duckdb_path, "SELECT * FROM orders")
    assert len(orders) == len(TARGETS) and set(orders["status"]) == {"filled"}
    assert (orders["tif"] == "Ioc").all() and orders["oid"].notna().all()
    for r in orders.itertuples():
        spec = venue.instruments()[r.coin]
        assert spec.is_valid_size(r.sz) and spec.is_valid_price(r.limit_px)
    # fills: the ledger holds exactly the venue's fills, attributed to this rebalance
    fills = book_frame(cfg.duckdb_path, "SELECT * FROM fills ORDER BY tid")
    assert list(fills["tid"]) == [f.tid for f in venue.fills]
    assert list(fills["sz"]) == [f.sz for f in venue.fills] and list(fills["px"]) == [f.px for f in venue.fills]
    assert fills["rebalance_id"].eq(result.rebalance_id).all() and (fills["fee_usd"] > 0).all()
    assert result.fills == len(venue.fills) == len(TARGETS)
    # positions and equity snapshots at start and end; the end one equals the venue's account
    eq = book_frame(cfg.duckdb_path, "SELECT * FROM equity ORDER BY source")
    assert list(eq["source"]) == ["rebalance_end", "rebalance_start"]
    assert eq["account_value_usd"].iloc[0] == pytest.approx(venue.account_state().account_value)
    pos = book_frame(cfg.duckdb_path, "SELECT coin, szi FROM positions WHERE source = 'rebalance_end'")
    assert dict(zip(pos["coin"], pos["szi"])) == {c: szi for c, (szi, _p) in venue.positions.items()}
    # terminal status in the book; the venue's dead-man switch was armed for the round and cleared at the end
    reb = book_frame(cfg.duckdb_path, "SELECT status, n_orders FROM rebalances")
    assert list(reb["status"]) == ["complete"] and int(reb["n_orders"][0]) == len(TARGETS)
    assert venue.dead_man_log[0] is not None and venue.dead_man_log[-1] is None and venue.dead_man_at is None
    assert set(venue.leverage) == set(TARGETS)

    # the same window again resumes the finished rebalance and sends nothing
    again = run(cfg, venue)
    assert again.status == "complete" and again.resumed and len(venue.batches) == 1


def test_a_lost_answer_is_resolved_by_client_id_and_nothing_is_sent_twice(tmp_path):
    cfg = make_cfg(tmp_path)
    venue = make_venue()
    venue.lose_next_answers(1)  # the batch executes, its answer is lost
    result = run(cfg, venue)
    assert result.status == "complete", result.reason
    assert len(venue.batches) == 1  # the lookups found the fills: no second round, no order sent twice
    orders = book_frame(cfg.duckdb_path, "SELECT status FROM orders")
    assert set(orders["status"]) == {"filled"}
    assert len(venue.fills) == len(TARGETS)


def test_flip_closes_reduce_only_then_opens(tmp_path):
    cfg = make_cfg(tmp_path)
    venue = make_venue()
    assert run(cfg, venue).status == "complete"
    flipped = {"AAA": -0.05, "DDD": 0.04}  # AAA flips, BBB and CCC close, DDD opens
    result = run(cfg, venue, window="2025-03-01 00:00", targets=flipped)
    assert result.status == "complete", result.reason
    o = book_frame(cfg.duckdb_path, "SELECT coin, leg, reduce_only, side FROM orders WHERE rebalance_id = ?",
                   [result.rebalance_id])
    legs = {(r.coin, r.leg): (bool(r.reduce_only), r.side) for r in o.itertuples()}
    assert legs[("AAA", "close")] == (True, "sell") and legs[("AAA", "open")] == (False, "sell")
    assert legs[("BBB", "close")] == (True, "buy") and legs[("CCC", "close")] == (True, "buy")
    assert set(venue.positions) == {"AAA", "DDD"} and venue.positions["AAA"][0] < 0


def test_halted_book_refuses_and_the_venue_sees_no_order(tmp_path):
    cfg = make_cfg(tmp_path)
    venue = make_venue()
    with book.connect(cfg.duckdb_path) as conn:
        book_halt.set_halt(conn, "test halt")
    result = run(cfg, venue)
    assert result.status == "refused" and "halted" in result.reason
    assert venue.batches == [] and venue.positions == {}


def test_a_venue_without_a_dead_man_switch_trades_and_says_so(tmp_path):
    cfg = make_cfg(tmp_path)
    venue = make_venue(refuse_schedule_cancel=True)
    events: list[str] = []
    result = Rebalancer(cfg, venue, cfg.duckdb_path, on_event=events.append).run(WINDOW, TARGETS, ADV)
    assert result.status == "complete", result.reason
    assert any(e.startswith("DEAD-MAN SWITCH NOT ARMED") for e in events)
