"""Pure parts of the trading engine: position accounting, book walking, wire numbers, precision rules, nonces."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradient_pipeline.localexchange import fmt
from gradient_pipeline.localexchange import orders as E
from gradient_pipeline.localexchange.accounts import Position, apply_fill, direction
from gradient_pipeline.localexchange.matching import Liquidity, floor_sz, walk
from gradient_pipeline.localexchange.nonces import NonceBook

fills_strategy = st.lists(
    st.tuples(st.booleans(), st.integers(1, 500), st.integers(5_000, 15_000)),  # is_buy, size lots, price cents
    min_size=1, max_size=30)


@settings(max_examples=200, deadline=None)
@given(fills=fills_strategy, final_cents=st.integers(5_000, 15_000))
def test_realised_plus_unrealised_pnl_equals_cash_flow(fills, final_cents):
    """Whatever the sequence of opens, adds, partial closes and flips: closedPnl summed plus the unrealised PnL
    at any price equals the trading cash flow valued at that price."""
    pos = Position()
    realised = cash = 0.0
    signed = 0.0
    for is_buy, lots, cents in fills:
        sz, px = lots / 100, cents / 100
        effect = apply_fill(pos, is_buy, px, sz, 2)
        realised += effect.closed_pnl
        cash += -sz * px if is_buy else sz * px
        signed = round(signed + (sz if is_buy else -sz), 2)
        assert effect.direction == direction(effect.start_position, is_buy, sz)
    assert pos.szi == pytest.approx(signed, abs=1e-9)
    final = final_cents / 100
    unrealised = pos.szi * (final - pos.entry_px)
    assert realised + unrealised == pytest.approx(cash + signed * final, abs=1e-6)


@pytest.mark.parametrize("start,is_buy,sz,expected", [
    (0.0, True, 1, "Open Long"), (0.0, False, 1, "Open Short"), (1.0, True, 1, "Open Long"),
    (1.0, False, 0.5, "Close Long"), (1.0, False, 1.0, "Close Long"), (1.0, False, 2, "Long > Short"),
    (-1.0, True, 0.5, "Close Short"), (-1.0, True, 3, "Short > Long"), (-1.0, False, 1, "Open Short"),
])
def test_direction_texts(start, is_buy, sz, expected):
    assert direction(start, is_buy, sz) == expected


def test_walk_stops_at_limit_and_respects_lot_size():
    asks = [(100.0, 0.123456), (100.5, 1.0), (101.0, 5.0)]
    assert walk(asks, True, 100.5, 10.0, 3) == [(100.0, 0.123), (100.5, 1.0)]
    assert walk(asks, True, 99.9, 10.0, 3) == []
    assert walk(asks, True, 101.0, 0.5, 3) == [(100.0, 0.123), (100.5, 0.377)]
    bids = [(99.0, 2.0), (98.0, 2.0)]
    assert walk(bids, False, 98.5, 3.0, 1) == [(99.0, 2.0)]


def test_liquidity_is_consumed_and_recovers_at_its_half_life():
    liq = Liquidity(half_life_ms=60_000)
    liq.reset_if_moved(1)
    book = [(100.0, 1.0), (101.0, 1.0)]
    liq.take("X", "ask", 100.0, 0.6)
    assert liq.remaining("X", "ask", book) == [(100.0, pytest.approx(0.4)), (101.0, 1.0)]
    liq.take("X", "ask", 100.0, 0.4)
    assert liq.remaining("X", "ask", book) == [(101.0, 1.0)]
    assert liq.remaining("X", "bid", book) == book  # other side untouched
    liq.reset_if_moved(2)  # a millisecond later the level is still (almost) gone
    assert liq.remaining("X", "ask", book)[0][0] == 101.0 or liq.remaining("X", "ask", book)[0][1] < 1e-4
    liq.reset_if_moved(60_001)  # one half-life after the take: half the consumed size is back
    assert liq.remaining("X", "ask", book)[0] == (100.0, pytest.approx(0.5, rel=1e-3))
    liq.reset_if_moved(60_001 + 20 * 60_000)
    assert liq.remaining("X", "ask", book) == [(100.0, pytest.approx(1.0, abs=1e-5)), (101.0, 1.0)]
    liq.take("X", "ask", 100.0, 1.0)
    liq.reset_if_moved(5)  # the clock was rewound: memory dropped
    assert liq.remaining("X", "ask", book) == book


def test_liquidity_with_zero_half_life_is_fresh_at_every_instant():
    liq = Liquidity(half_life_ms=0)
    liq.reset_if_moved(1)
    liq.take("X", "ask", 100.0, 1.0)
    assert liq.remaining("X", "ask", [(100.0, 1.0)]) == []
    liq.reset_if_moved(2)
    assert liq.remaining("X", "ask", [(100.0, 1.0)]) == [(100.0, 1.0)]


@pytest.mark.parametrize("x,decimals,text", [
    (0, 6, "0.0"), (-0.0000001, 6, "0.0"), (100, 6, "100.0"), (0.1 + 0.2, 6, "0.3"), (-95.0598241, 6, "-95.059824"),
    (113377.0, 8, "113377.0"), (0.00001234, 8, "0.00001234"),
])
def test_wire_numbers(x, decimals, text):
    assert fmt.num(x, decimals) == text


def test_floor_sz_tolerates_float_noise():
    assert floor_sz(0.3, 1) == 0.3  # 0.3 * 10 = 2.9999999999999996
    assert floor_sz(0.129, 2) == 0.12


@pytest.mark.parametrize("px,sz_decimals,ok", [
    ("1234.5", 0, True), ("1234.56", 0, False), ("0.001234", 0, True), ("0.0012345", 0, False),
    ("0.01234", 1, True), ("0.012345", 1, False), ("123456", 5, True), ("117365.5", 1, False),
    ("0", 0, False), ("-1", 0, False), ("abc", 0, False), ("12.30", 4, True),
])
def test_price_rule_examples_from_the_docs(px, sz_decimals, ok):
    value, err = E.check_price(px, sz_decimals)
    assert (err is None) == ok
    assert err in (None, E.TICK)


def test_size_rule():
    assert E.check_size("1.001", 3) == (1.001, None)
    assert E.check_size("1.0001", 3) == (None, E.INVALID_SIZE)
    assert E.check_size("0", 3) == (None, E.ZERO_SIZE)
    assert E.check_size("-1", 3) == (None, E.INVALID_SIZE)


def test_nonce_book_rules():
    book, now = NonceBook(), 1_700_000_000_000
    assert book.check("a", now, now) is None
    book.use("a", now)
    assert book.check("a", now, now) == f"Invalid nonce: duplicate nonce {now}"
    assert book.check("b", now, now) is None
    for k in range(1, 100):
        book.use("a", now + k)
    assert book.check("a", now - 1, now) == f"Invalid nonce: nonce too low {now - 1} < {now}"
    book.use("a", now + 500)  # the 101st: `now` drops out of the kept set
    assert book.check("a", now, now) == f"Invalid nonce: nonce too low {now} < {now + 1}"
