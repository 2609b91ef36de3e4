"""The adapter's venue safety valves and mode-correct equity, through `TradingClient` (real SDK) against the local
exchange: account equity in standard / unified / portfolio-margin accounts, scheduleCancel arm/clear, expiresAfter
on every signed action, and the approved-agents read."""

from __future__ import annotations

import eth_account
import pandas as pd
import pytest
from hyperliquid.utils.signing import get_timestamp_ms

from gradient_pipeline.exchange.hyperliquid.errors import ActionRefusedError
from gradient_pipeline.exchange.hyperliquid.payloads import equity_from_states
from gradient_pipeline.exchange.hyperliquid.rounding import round_price
from gradient_pipeline.exchange.hyperliquid.trading import TradingClient
from gradient_pipeline.venue.model import OrderRequest, client_order_id

START = "2025-03-01 00:05"
COINS = ["BTC", "ETH"]


def open_client(handle, connect, wallet, master, **kwargs) -> TradingClient:
    client, _ = connect(handle)
    return TradingClient(client, wallet, master.address, **kwargs)


def ioc_buy(handle, coin: str, usd: float, rid: str = "t") -> OrderRequest:
    _, asks = handle.market.book(coin)
    szd = handle.market.coin(coin).sz_decimals
    sz = round(usd / asks[0][0], szd)
    return OrderRequest(coin, True, sz, round_price(asks[0][0] * 1.01, szd, True), False,
                        client_order_id(rid, coin, "buy", 0))


def engine_account_value(handle, address: str) -> float:
    eng = handle.engine
    return eng.summary(eng._accounts[address.lower()]).account_value


@pytest.mark.parametrize("mode", ["standard", "unified-account", "portfolio-margin"])
def test_account_equity_is_right_in_every_account_mode(local_exchange_factory, connect, mode):
    master = eth_account.Account.create()
    handle = local_exchange_factory(start_time=START, coins=COINS,
                                    accounts={master.address: {"usdc": 10_000.0, "mode": mode}})
    trading = open_client(handle, connect, master, master)
    eq = trading.account_equity()
    assert eq.equity == pytest.approx(10_000.0)
    if mode != "standard":
        # what an equity reader that only looks at the perp state would see: nothing
        assert eq.perp_account_value == 0.0 and eq.spot_collateral == pytest.approx(10_000.0)
    outcome, = trading.bulk_orders([ioc_buy(handle, "ETH", 2_000.0)])
    assert outcome.kind == "filled", outcome
    handle.advance(2)  # the mark moves
    eq = trading.account_equity()
    truth = engine_account_value(handle, master.address)
    assert eq.equity == pytest.approx(truth, abs=1e-5) and eq.unrealized_pnl != 0
    assert eq.equity < 10_000.0 + abs(eq.unrealized_pnl) + 1  # sanity: the fee and PnL are in it, no double count
    state = trading.account_state()
    assert state.account_value == pytest.approx(truth, abs=1e-5) and "ETH" in state.positions
    assert state.mode == {"standard": "default", "unified-account": "unifiedAccount",
                          "portfolio-margin": "portfolioMargin"}[mode]


def test_equity_from_states_needs_the_spot_state_in_unified_mode():
    with pytest.raises(ValueError, match="needs spotClearinghouseState"):
        equity_from_states("unifiedAccount", {"marginSummary": {"accountValue": "0.0"}, "assetPositions": []}, None)
    spot = {"balances": [{"coin": "USDC", "total": "500.5", "hold": "1.0"}, {"coin": "HYPE", "total": "3.0"}]}
    perp = {"marginSummary": {"accountValue": "-2.0"},
            "assetPositions": [{"position": {"coin": "ETH", "unrealizedPnl": "-2.0"}}]}
    assert equity_from_states("portfolioMargin", perp, spot).equity == pytest.approx(498.5)
    assert equity_from_states("default", {"marginSummary": {"accountValue": "7.5"}}, None).equity == 7.5


def test_schedule_cancel_arms_fires_and_clears(local_exchange_factory, connect):
    master = eth_account.Account.create()
    handle = local_exchange_factory(start_time=START, coins=COINS, accounts={master.address: 10_000.0})
    trading = open_client(handle, connect, master, master)
    with pytest.raises(ActionRefusedError, match="at least 5 seconds") as refused:
        trading.schedule_cancel(get_timestamp_ms() + 1_000)
    assert refused.value.venue_message == "Scheduled cancel time too early, must be at least 5 seconds from now."
    at = trading.schedule_cancel(pd.Timestamp.now(tz="UTC") + pd.Timedelta(seconds=60))
    assert handle.scheduled_cancel_ms(master.address) == at
    trading.clear_schedule_cancel()
    assert handle.scheduled_cancel_ms(master.address) is None
    # armed, with an order resting: the venue cancels it once its clock passes the time
    bids, _ = handle.market.book("ETH")
    rest = OrderRequest("ETH", True, 0.01, round_price(bids[-1][0] * 0.99, 4, False), False,
                        client_order_id("t", "ETH", "rest", 0), tif="Gtc")
    assert trading.bulk_orders([rest])[0].kind == "resting"
    trading.schedule_cancel(get_timestamp_ms() + 10_000)
    handle.advance_venue_clock(11)
    assert trading.open_orders() == [] and trading.order_status(rest.cloid).venue_status == "scheduledCancel"


def test_every_signed_action_carries_expires_after(local_exchange_factory, connect):
    master = eth_account.Account.create()
    handle = local_exchange_factory(start_time=START, coins=COINS, accounts={master.address: 10_000.0})
    trading = open_client(handle, connect, master, master, expires_after_s=20)
    # the request reaches the venue 21 s after it was signed (the venue clock runs 21 s ahead of ours)
    handle.advance_venue_clock(21)
    outcome, = trading.bulk_orders([ioc_buy(handle, "ETH", 100.0)])
    assert outcome.kind == "rejected" and outcome.error == "action refused: Action already expired"
    with pytest.raises(ActionRefusedError, match="Action already expired"):
        trading.schedule_cancel(handle.venue_now_ms() + 60_000)
    with pytest.raises(RuntimeError, match="Action already expired"):
        trading.update_leverage("ETH", 3)
    assert trading.fills_since() == []
    # without an expiry the same late request still lands: it is the adapter's expiresAfter that stopped it
    no_expiry = open_client(handle, connect, master, master, expires_after_s=None)
    assert no_expiry.bulk_orders([ioc_buy(handle, "ETH", 100.0, rid="u")])[0].kind == "filled"
    with pytest.raises(ValueError, match="expires_after_s"):
        open_client(handle, connect, master, master, expires_after_s=0)


def test_approved_agents_lists_the_signer_for_a_preflight(local_exchange_factory, connect):
    master, agent = eth_account.Account.create(), eth_account.Account.create()
    handle = local_exchange_factory(start_time=START, coins=COINS, accounts={master.address: 1_000.0},
                                    agents={agent.address: master.address})
    trading = open_client(handle, connect, agent, master)
    agents = trading.approved_agents()
    assert [a["address"] for a in agents] == [agent.address.lower()]
    assert agents[0]["validUntil"] > get_timestamp_ms()
    assert open_client(handle, connect, None, eth_account.Account.create()).approved_agents() == []
