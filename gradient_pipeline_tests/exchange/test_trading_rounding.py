"""Rounding, cloids and response classification of the trading adapter (pure functions, real SDK wire helpers)."""

from __future__ import annotations

import pytest
from hyperliquid.utils.signing import float_to_wire
from hypothesis import given
from hypothesis import strategies as st

from gradient_pipeline.exchange.hyperliquid.payloads import classify_order_response
from gradient_pipeline.exchange.hyperliquid.rounding import is_valid_price, is_valid_size, round_price, round_size
from gradient_pipeline.venue.model import OrderRequest, client_order_id


@pytest.mark.parametrize(
    "px, szd, is_buy, expected",
    [
        (97123.55, 5, True, 97124.0),  # BTC: 5 sig figs -> integer, buy rounds up
        (97123.55, 5, False, 97123.0),
        (123456.7, 5, True, 123457.0),  # integer prices always allowed, even with 6 figures
        (0.0123456, 0, True, 0.012346),  # kPEPE: szDecimals 0 -> 6 decimals, 5 sig figs
        (0.0123456, 0, False, 0.012345),
        (3012.345, 4, True, 3012.4),  # ETH: 5 sig figs wins over 2 decimals
        (1.234567, 1, False, 1.2345),  # 5 decimals allowed (6-1), 5 sig figs -> 4 decimals
        (0.00123456, 2, True, 0.0013),  # 6-2 = 4 decimals cap
        (99999.9, 5, True, 100000.0),  # rounding up adds a digit
    ],
)
def test_round_price_directional(px, szd, is_buy, expected):
    out = round_price(px, szd, is_buy)
    assert out == expected
    assert is_valid_price(out, szd)
    assert (out >= px) if is_buy else (out <= px)


def test_round_size_floors_to_lot():
    assert round_size(1234.9, 0) == 1234.0  # kPEPE
    assert round_size(0.123456789, 5) == 0.12345  # BTC
    assert round_size(-0.000019, 5) == -0.00001
    assert round_size(0.000009, 5) == 0.0
    assert is_valid_size(round_size(0.123456789, 5), 5)
    assert not is_valid_size(0.123456, 5)


@given(px=st.floats(1e-6, 1e6, allow_nan=False), szd=st.integers(0, 5), is_buy=st.booleans())
def test_round_price_always_valid_and_never_less_aggressive(px, szd, is_buy):
    out = round_price(px, szd, is_buy)
    float_to_wire(out)  # the SDK's wire helper accepts it (≤ 8 decimals, exact)
    assert is_valid_price(out, szd)
    if is_buy:
        assert out >= px
    else:
        assert out <= px or out == pytest.approx(10 ** -(6 - szd))  # tiny prices floor to one tick


def test_cloid_deterministic_and_distinct():
    a = client_order_id("paper-20250301T0000-abc", "BTC", "open", 0)
    assert a == client_order_id("paper-20250301T0000-abc", "BTC", "open", 0)
    assert a.startswith("0x") and len(a) == 34
    others = {client_order_id("paper-20250301T0000-abc", c, leg, n)
              for c in ("BTC", "ETH") for leg in ("open", "close") for n in range(3)}
    assert len(others) == 12


def _orders(n):
    return [OrderRequest("BTC", True, 0.01, 100000.0, False, client_order_id("r", "BTC", "open", i)) for i in range(n)]


def test_classify_outcomes():
    o = _orders(4)
    resp = {"status": "ok", "response": {"type": "order", "data": {"statuses": [
        {"filled": {"totalSz": "0.01", "avgPx": "97000.0", "oid": 1}},
        {"filled": {"totalSz": "0.004", "avgPx": "97000.0", "oid": 2}},
        {"resting": {"oid": 3}},
        {"error": "Order must have minimum value of $10. asset=0"},
    ]}}}
    kinds = [x.kind for x in classify_order_response(resp, o)]
    assert kinds == ["filled", "partial", "resting", "rejected"]
    whole = classify_order_response({"status": "err", "response": "User or API Wallet 0xabc does not exist."}, o)
    assert {x.kind for x in whole} == {"rejected"} and "does not exist" in whole[0].error
    garbled = classify_order_response({"error": "Could not parse JSON: <html>"}, o)
    assert {x.kind for x in garbled} == {"ambiguous"}
    short = classify_order_response({"status": "ok", "response": {"data": {"statuses": [{"resting": {"oid": 1}}]}}}, o)
    assert {x.kind for x in short} == {"ambiguous"}
