"""Paper trading on the live market, offline: a replaying local exchange plays the live upstream (mainnet's role),
a paper local exchange takes its market from it, and the project's rebalance runner trades on the paper one."""

from __future__ import annotations

import json
import socket
import time

import eth_account
import pytest
import requests
from hyperliquid.api import API

from gradient_pipeline import timegrid
from gradient_pipeline.cli import main
from gradient_pipeline.config import LOCAL_API_URL
from gradient_pipeline.execution.runner import Rebalancer
from gradient_pipeline.exchange.hyperliquid.factory import trading_client
from gradient_pipeline.localexchange.cli import DEFAULT_PORT
from gradient_pipeline.localexchange.paper import PaperStateError, build_paper_exchange, run_paper_in_background
from gradient_pipeline.localexchange.upstream import UpstreamUnavailable
from gradient_pipeline_tests.execution.conftest import ADV, COINS, START, TARGETS, WINDOW, make_config

HOUR_MS = 3_600_000


def post(base_url: str, body: dict):
    return API(base_url, timeout=10).post("/info", body)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def upstream(local_exchange_factory):
    """The 'live market': a replaying local exchange, clock frozen at START (moved only by the test)."""
    return local_exchange_factory(start_time=START, coins=COINS)


@pytest.fixture
def account(monkeypatch):
    master, agent = eth_account.Account.create(), eth_account.Account.create()
    monkeypatch.setenv("GRADIENT_PRIVATE_KEY", agent.key.hex())
    monkeypatch.setenv("GRADIENT_ACCOUNT_ADDRESS", master.address)
    return master, agent


@pytest.fixture
def paper_factory(tmp_path, account):
    """`paper_factory(upstream_url, **options)` -> a paper exchange on that upstream, the account funded with 10k
    and its agent approved, state in tmp_path/paper_state.json. clock_sync_s=0: re-read the upstream's clock on
    every request (the test moves the upstream's clock by hours at a time)."""
    handles = []
    master, agent = account

    def start(upstream_url: str, **options):
        options.setdefault("accounts", {master.address: 10_000.0})
        options.setdefault("agents", {agent.address: master.address})
        options.setdefault("clock_sync_s", 0.0)
        handle = run_paper_in_background(upstream_url, options.pop("state_file", tmp_path / "paper_state.json"),
                                         **options)
        handles.append(handle)
        return handle

    yield start
    for h in handles:
        h.stop()


def rebalance(base_url: str, tmp_path, targets=TARGETS, window=WINDOW):
    cfg = make_config(base_url, str(tmp_path / "ledger.duckdb"))
    return cfg, Rebalancer(cfg, trading_client(cfg), cfg.duckdb_path).run(window, targets, ADV)


MARKET_BODIES = [
    {"type": "meta"},
    {"type": "metaAndAssetCtxs"},
    {"type": "allMids"},
    {"type": "l2Book", "coin": "BTC"},
    {"type": "l2Book", "coin": "kPEPE"},
    {"type": "candleSnapshot", "req": {"coin": "ETH", "interval": "1h", "startTime": timegrid.to_ms("2025-02-27"),
                                       "endTime": timegrid.to_ms(START)}},
    {"type": "candleSnapshot", "req": {"coin": "SOL", "interval": "4h", "startTime": timegrid.to_ms("2025-01-01")}},
    {"type": "fundingHistory", "coin": "DOGE", "startTime": timegrid.to_ms("2025-02-28")},
    {"type": "exchangeStatus"},
]


def test_market_info_is_the_upstreams(upstream, paper_factory):
    paper = paper_factory(upstream.base_url)
    for body in MARKET_BODIES:
        assert post(paper.base_url, body) == post(upstream.base_url, body), body
    # the SDK's own readers see the same market
    assert len(post(paper.base_url, {"type": "meta"})["universe"]) == len(COINS)
    # the paper exchange's clock is the upstream's (here: replay time), not this machine's 2026 wall clock
    assert abs(paper.now_ms() - upstream.now_ms()) < 60_000
    # account types are the paper exchange's own: the upstream knows nothing of this account
    master = next(iter(paper.engine._accounts))
    assert float(post(paper.base_url, {"type": "clearinghouseState", "user": master})["marginSummary"]
                 ["accountValue"]) == 10_000.0
    assert float(post(upstream.base_url, {"type": "clearinghouseState", "user": master})["marginSummary"]
                 ["accountValue"]) == 0.0


def test_rebalance_fills_against_the_upstreams_book_and_survives_a_restart(upstream, paper_factory, account,
                                                                           tmp_path):
    master, _ = account
    paper = paper_factory(upstream.base_url)
    books = {c: post(upstream.base_url, {"type": "l2Book", "coin": c}) for c in TARGETS}

    cfg, result = rebalance(paper.base_url, tmp_path)
    assert result.status == "complete", result.reason
    fills = post(paper.base_url, {"type": "userFills", "user": master.address})
    assert {f["coin"] for f in fills} == set(TARGETS)
    for f in fills:  # a buy takes the upstream's asks (levels[1]), a sell its bids (levels[0])
        levels = books[f["coin"]]["levels"][1 if f["side"] == "B" else 0]
        assert float(f["px"]) in {float(lv["px"]) for lv in levels}, f
        assert float(f["px"]) == float(levels[0]["px"]), "a rebalance-sized order fills at the upstream's touch"
    state = post(paper.base_url, {"type": "clearinghouseState", "user": master.address})
    mids = post(upstream.base_url, {"type": "allMids"})
    held = {p["position"]["coin"]: float(p["position"]["szi"]) for p in state["assetPositions"]}
    capital = 10_000.0  # the account value when the rebalance started (fresh account)
    for coin, w in TARGETS.items():
        assert held[coin] * float(mids[coin]) == pytest.approx(w * capital, abs=15.0), coin
    # nothing was sent to the upstream: its books are untouched and it has no such account
    assert post(upstream.base_url, {"type": "userFills", "user": master.address}) == []
    assert {c: post(upstream.base_url, {"type": "l2Book", "coin": c}) for c in TARGETS} == books

    # restart from the state file: same account, balance not funded twice, no id used again
    state_file = paper.state_file
    saved = json.loads(state_file.read_text())
    assert saved["upstream"] == upstream.base_url
    # already on disk before any shutdown (a kill -9 would lose nothing): the fills and positions
    [on_disk] = [a for a in saved["engine"]["accounts"] if a["address"] == master.address.lower()]
    assert sorted(f["tid"] for f in on_disk["fills"]) == sorted(f["tid"] for f in fills)
    assert {c: p["szi"] for c, p in on_disk["positions"].items() if p["szi"]} == held
    paper.stop()
    again = paper_factory(upstream.base_url)
    state2 = post(again.base_url, {"type": "clearinghouseState", "user": master.address})
    assert state2["assetPositions"] == state["assetPositions"]
    assert state2["marginSummary"]["accountValue"] == state["marginSummary"]["accountValue"]
    assert post(again.base_url, {"type": "userFills", "user": master.address}) == fills

    flipped = {"BTC": -0.06, "ETH": 0.04, "AVAX": 0.02}
    _, result2 = rebalance(again.base_url, tmp_path, targets=flipped, window="2025-03-01 00:00")
    assert result2.status == "complete", result2.reason
    all_fills = post(again.base_url, {"type": "userFills", "user": master.address})
    new = [f for f in all_fills if f not in fills]
    assert new and min(f["tid"] for f in new) > max(f["tid"] for f in fills)
    assert not {f["oid"] for f in new} & {f["oid"] for f in fills}
    assert len({f["tid"] for f in all_fills}) == len(all_fills)


def test_funding_is_the_upstreams_hourly_rate(upstream, paper_factory, account, tmp_path):
    master, _ = account
    paper = paper_factory(upstream.base_url)
    _, result = rebalance(paper.base_url, tmp_path)
    assert result.status == "complete", result.reason
    upstream.advance(1)  # the live market moves past 01:00; the paper exchange follows its clock
    hour = timegrid.to_ms("2025-03-01 01:00")
    rows = post(paper.base_url, {"type": "userFunding", "user": master.address, "startTime": hour - HOUR_MS})
    paid = {r["delta"]["coin"]: float(r["delta"]["fundingRate"]) for r in rows if r["time"] == hour}
    assert set(paid) == set(TARGETS)
    for coin, rate in paid.items():
        history = post(upstream.base_url, {"type": "fundingHistory", "coin": coin, "startTime": hour})
        assert rate == pytest.approx(float(history[0]["fundingRate"]), rel=1e-9), coin
    # paid once: the next request (same hour) pays nothing more, and a restart does not pay it again
    assert len(post(paper.base_url, {"type": "userFunding", "user": master.address, "startTime": hour})) == len(rows)
    [on_disk] = [a for a in json.loads(paper.state_file.read_text())["engine"]["accounts"]
                 if a["address"] == master.address.lower()]
    assert len(on_disk["funding"]) == len(rows)  # written when paid, not only at shutdown
    paper.stop()
    again = paper_factory(upstream.base_url)
    assert len(post(again.base_url, {"type": "userFunding", "user": master.address, "startTime": hour})) == len(rows)


def test_upstream_down_is_a_clear_error_and_recovery_is_automatic(local_exchange_factory, paper_factory, account,
                                                                  tmp_path):
    master, _ = account
    port = free_port()
    upstream = local_exchange_factory(start_time=START, coins=COINS, port=port)
    paper = paper_factory(upstream.base_url)
    _, result = rebalance(paper.base_url, tmp_path)
    assert result.status == "complete", result.reason
    before = post(paper.base_url, {"type": "clearinghouseState", "user": master.address})

    upstream.stop()
    for body in ({"type": "allMids"}, {"type": "clearinghouseState", "user": master.address}):
        r = requests.post(f"{paper.base_url}/info", json=body, timeout=20)
        assert r.status_code == 500 and f"upstream {upstream.base_url} unavailable" in r.text, r.text
    assert requests.get(f"{paper.base_url}/_local/clock", timeout=5).ok  # still serving, nothing crashed

    # the live market comes back on the same address: the paper exchange carries on, account intact
    back = local_exchange_factory(start_time=START, coins=COINS, port=port)
    assert post(paper.base_url, {"type": "allMids"}) == post(back.base_url, {"type": "allMids"})
    after = post(paper.base_url, {"type": "clearinghouseState", "user": master.address})
    assert after["assetPositions"] == before["assetPositions"]
    assert after["crossMarginSummary"]["totalRawUsd"] == before["crossMarginSummary"]["totalRawUsd"]


def test_unreachable_upstream_at_start_fails_fast_with_the_url(tmp_path, capsys):
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(UpstreamUnavailable, match=f"upstream {dead} unavailable"):
        build_paper_exchange(dead, tmp_path / "state.json", timeout_s=2.0)
    assert not (tmp_path / "state.json").exists()
    code = main(["exchange", "serve", "--upstream", dead, "--state-file", str(tmp_path / "state.json"),
                 "--port", str(free_port())])
    assert code == 2
    assert f"upstream {dead} unavailable" in capsys.readouterr().err


def test_state_file_problems_are_named_and_the_file_is_left_alone(upstream, paper_factory, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(PaperStateError, match="bad.json: cannot be read"):
        paper_factory(upstream.base_url, state_file=bad)
    assert bad.read_text() == "{not json"

    paper = paper_factory(upstream.base_url)
    with pytest.raises(PaperStateError, match="in use by another paper exchange"):
        paper_factory(upstream.base_url)
    paper.stop()
    other = f"http://127.0.0.1:{free_port()}"
    saved = json.loads(paper.state_file.read_text())
    saved["upstream"] = other
    paper.state_file.write_text(json.dumps(saved))
    with pytest.raises(PaperStateError, match=f"holds the account of upstream {other}"):
        paper_factory(upstream.base_url)


def test_operator_clock_and_shocks_are_refused_in_upstream_mode(upstream, paper_factory):
    paper = paper_factory(upstream.base_url)
    r = requests.post(f"{paper.base_url}/_local/clock/advance", json={"hours": 1}, timeout=5)
    assert r.status_code == 400 and "follows the upstream" in r.json()["error"]
    r = requests.post(f"{paper.base_url}/_local/price_shock", json={"factor": 0.5}, timeout=5)
    assert r.status_code == 400 and "not available when the market comes from an upstream" in r.json()["error"]


def test_serve_defaults_to_the_port_paper_mode_uses():
    assert f"http://127.0.0.1:{DEFAULT_PORT}" == LOCAL_API_URL
    with pytest.raises(SystemExit):
        main(["exchange", "serve", "--data", "x", "--upstream", "testnet"])


def test_clock_waits_at_the_hour_for_the_upstreams_funding_then_moves_on(local_exchange_factory, paper_factory,
                                                                         account):
    """8-hourly funding era (before 2023-06-08): the hour 01:00 has no event, 08:00 has one."""
    from hyperliquid.exchange import Exchange

    master, agent = account
    upstream = local_exchange_factory(start_time="2023-05-20 00:30", coins=["BTC", "ETH"])
    paper = paper_factory(upstream.base_url, funding_wait_s=1.5)
    meta = post(paper.base_url, {"type": "meta"})
    ex = Exchange(agent, paper.base_url, account_address=master.address, meta=meta,
                  spot_meta={"universe": [], "tokens": []}, timeout=10)
    assert ex.market_open("BTC", True, 0.01)["status"] == "ok"

    def paper_time():
        return post(paper.base_url, {"type": "clearinghouseState", "user": master.address})["time"]

    def funding_rows():
        return post(paper.base_url, {"type": "userFunding", "user": master.address, "startTime": 0})

    upstream.advance(1)  # upstream at 01:30: no funding event at 01:00 will ever come
    one = timegrid.to_ms("2023-05-20 01:00")
    assert paper_time() == one - 1  # held just before the hour, waiting for the event
    time.sleep(1.6)
    assert paper_time() >= one + 30 * 60_000  # gave up waiting, moved on
    assert funding_rows() == []  # and paid nothing for an hour without an event

    upstream.advance(7)  # 08:30: the 08:00 event exists, so the clock crosses at once and pays it
    eight = timegrid.to_ms("2023-05-20 08:00")
    assert paper_time() >= eight + 30 * 60_000
    [row] = funding_rows()
    history = post(upstream.base_url, {"type": "fundingHistory", "coin": "BTC", "startTime": eight})
    assert row["time"] == eight
    assert float(row["delta"]["fundingRate"]) == pytest.approx(float(history[0]["fundingRate"]))
