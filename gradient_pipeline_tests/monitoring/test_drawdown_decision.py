"""The drawdown decision (pure) and the sensor built on it: a stop only after K consecutive breaching ticks, within
two ticks of a crossing even while a long rebalance runs and a writer holds the book, never on one bad tick."""

from __future__ import annotations

import datetime as dt
import math
import multiprocessing as mp
import threading
import time

import dagster as dg
import duckdb
import pytest

from gradient_pipeline.defs.monitoring.sensors import drawdown_sensor
from gradient_pipeline.defs.resources import GradientResource
from gradient_pipeline.monitoring.drawdown import DrawdownLimits, EquityReading, evaluate
from gradient_pipeline.monitoring.heartbeat import read_heartbeat
from gradient_pipeline.monitoring.status import exit_code_for
from gradient_pipeline_tests.monitoring.conftest import BOOK, open_book

NOW = dt.datetime(2026, 1, 1, 12, 0)
REBALANCE_TO = {"BTC": 0.095, "SOL": 0.085, "ETH": -0.095, "DOGE": -0.085}  # a small trade on the same book
LIM = DrawdownLimits(warn_pct=10, stop_pct=20, stop_ticks=2, unreachable_max_s=600, max_equity_age_s=900)


def _r(value, age_s=0.0):
    return EquityReading(value, NOW - dt.timedelta(seconds=age_s))


def test_levels_and_the_k_tick_rule():
    assert evaluate(_r(10_000), 10_000, 0, LIM, NOW).level == "ok"
    assert evaluate(_r(8_900), 10_000, 0, LIM, NOW).level == "warn"
    one = evaluate(_r(7_900), 10_000, 0, LIM, NOW)
    assert one.level == "warn" and one.pending_stop and one.breaching_ticks == 1 and one.at_stop_level
    two = evaluate(_r(7_900), 10_000, one.breaching_ticks, LIM, NOW)
    assert two.level == "stop" and two.breaching_ticks == 2
    # one bad tick then a good one: the streak resets, no stop
    back = evaluate(_r(9_500), 10_000, one.breaching_ticks, LIM, NOW)
    assert back.level == "ok" and back.breaching_ticks == 0
    assert evaluate(_r(7_900), 10_000, back.breaching_ticks, LIM, NOW).level == "warn"
    # K = 1 stops at once; a new high raises the mark
    assert evaluate(_r(7_900), 10_000, 0, DrawdownLimits(10, 20, 1), NOW).level == "stop"
    high = evaluate(_r(12_000), 10_000, 0, LIM, NOW)
    assert high.hwm == 12_000 and high.drawdown_pct == 0


def test_cannot_evaluate_cases():
    assert evaluate(_r(10_000), 10_000, 0, LIM, NOW, account_configured=False).alarm
    assert evaluate(_r(10_000), 10_000, 0, LIM, NOW, book_available=False).alarm
    # a failed read: tolerated within the limit (streak kept), an alarm beyond it or if there never was a read
    tolerated = evaluate(None, 10_000, 1, LIM, NOW, last_success_at=NOW - dt.timedelta(seconds=60), read_error="500")
    assert tolerated.level == "cannot_evaluate" and not tolerated.alarm and tolerated.breaching_ticks == 1
    late = evaluate(None, 10_000, 1, LIM, NOW, last_success_at=NOW - dt.timedelta(seconds=601), read_error="500")
    assert late.alarm and "unreachable" in late.reason
    assert evaluate(None, 10_000, 0, LIM, NOW, last_success_at=None).alarm
    stale = evaluate(_r(10_000, age_s=901), 10_000, 0, LIM, NOW)
    assert stale.alarm and "old" in stale.reason
    assert evaluate(_r(math.nan), 10_000, 0, LIM, NOW).alarm


def test_status_exit_codes():
    assert [exit_code_for(x, False) for x in ("ok", "warn", "pending_stop", "stop", "cannot_evaluate")] == [0, 1, 2, 2, 3]
    assert exit_code_for("ok", True) == 2 and exit_code_for("cannot_evaluate", True) == 3


def _hold_on_cue(path, take, ready, go):
    take.wait(120)
    conn = duckdb.connect(path)
    conn.execute("CREATE TABLE IF NOT EXISTS lock_holder (x INT)")
    ready.set()
    go.wait(120)
    conn.close()


def _tick(g, instance):
    return drawdown_sensor(dg.build_sensor_context(instance=instance, resources={"gradient": g}))


def _crash(ex):
    for coin, usd in BOOK.items():
        ex.price_shock(0.3 if usd > 0 else 2.0, coin)


def _baseline(paper_account, trading):
    from gradient_pipeline.monitoring.equity import record_equity

    from gradient_pipeline import book

    with book.connect(paper_account.db_path) as conn:
        record_equity(conn, trading.account_state(), paper_account.exchange.now(), "monitor")
    return GradientResource(config_path=str(paper_account.config_path), duckdb_path=str(paper_account.db_path))


def test_stop_fires_within_two_ticks_while_a_long_rebalance_runs_and_a_writer_holds_the_book(paper_account):
    from gradient_pipeline.execution.runner import Rebalancer
    from gradient_pipeline.exchange.hyperliquid.factory import trading_client

    trading = paper_account.trading()
    open_book(trading, BOOK)
    g = _baseline(paper_account, trading)
    ex = paper_account.exchange
    with dg.instance_for_test() as instance:
        assert "below the warning level" in _tick(g, instance).skip_message
        # a writer run will hold the book (a backfill, the rebalance job's tag): its process is started now and
        # takes the lock on cue (starting a process is slow on a busy machine; taking the lock is not)
        ctx = mp.get_context("spawn")
        take, ready, go = ctx.Event(), ctx.Event(), ctx.Event()
        proc = ctx.Process(target=_hold_on_cue, args=(str(paper_account.db_path), take, ready, go))
        proc.start()
        # a long rebalance: its order batch is held at the exchange (delay fault: processed, no answer for 40 s)
        ex.inject_fault("lost_response_timeout", count=1, action_type="order", hang_seconds=40.0)
        from gradient_pipeline.config import parse_config

        slow = parse_config({**paper_account.cfg.model_dump(),
                             "rate_limit": {**paper_account.cfg.rate_limit.model_dump(), "request_timeout_s": 60.0}})
        client = trading_client(slow)
        window = client.server_time().floor("4h") - __import__("pandas").Timedelta(hours=4)
        result = {}
        reb = threading.Thread(target=lambda: result.setdefault("r", Rebalancer(
            slow, client, str(paper_account.db_path)).run(window, REBALANCE_TO, {c: 1e9 for c in BOOK})))
        try:
            reb.start()
            deadline = time.monotonic() + 60
            while ex.exchange.faults.pending() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not ex.exchange.faults.pending(), "the rebalance never sent its order batch"
            take.set()
            assert ready.wait(60)
            _crash(ex)  # the crossing
            first = _tick(g, instance)
            second = _tick(g, instance)
            still_running = reb.is_alive()
        finally:
            take.set()
            go.set()
            proc.join(30)
        reb.join(120)
    assert still_running  # both ticks happened while the rebalance was still in flight
    assert not (isinstance(first, dg.RunRequest) and first.job_name == "emergency_stop_job")  # not on one tick
    assert isinstance(second, dg.RunRequest) and second.job_name == "emergency_stop_job", second
    assert second.run_config["ops"]["emergency_flatten"]["config"]["drawdown_pct"] >= 20
    assert result["r"].status in ("complete", "partial", "refused", "failed")  # terminal, with a reason
    assert result["r"].reason


def test_one_bad_tick_does_not_stop(paper_account):
    trading = paper_account.trading()
    open_book(trading, BOOK)
    g = _baseline(paper_account, trading)
    ex = paper_account.exchange
    with dg.instance_for_test() as instance:
        _tick(g, instance)
        _crash(ex)
        bad = _tick(g, instance)
        assert not (isinstance(bad, dg.RunRequest) and bad.job_name == "emergency_stop_job")
        assert read_heartbeat(paper_account.db_path).breaching_ticks == 1
        for coin, usd in BOOK.items():  # the bad print reverts
            ex.price_shock(1 / 0.3 if usd > 0 else 0.5, coin)
        good = _tick(g, instance)
        assert not isinstance(good, dg.RunRequest) or good.job_name != "emergency_stop_job"
        hb = read_heartbeat(paper_account.db_path)
        assert hb.breaching_ticks == 0 and hb.level in ("ok", "warn")
    assert set(trading.account_state().positions) == set(BOOK)


@pytest.mark.parametrize("k", [3])
def test_stop_ticks_is_configurable(paper_account, tmp_path, k):
    import json

    trading = paper_account.trading()
    open_book(trading, BOOK)
    _baseline(paper_account, trading)
    cfg_path = tmp_path / "k.json"
    cfg_path.write_text(json.dumps({"mode": "paper", "exchange_base_url": paper_account.exchange.base_url,
                                    "duckdb_path": str(paper_account.db_path), "risk": {"drawdown_stop_ticks": k}}))
    g = GradientResource(config_path=str(cfg_path), duckdb_path=str(paper_account.db_path))
    _crash(paper_account.exchange)
    with dg.instance_for_test() as instance:
        ticks = [_tick(g, instance) for _ in range(k)]
    stops = [isinstance(t, dg.RunRequest) and t.job_name == "emergency_stop_job" for t in ticks]
    assert stops == [False] * (k - 1) + [True]


@pytest.mark.parametrize("mode", ["unified-account", "portfolio-margin"])
def test_the_tick_reads_unified_and_portfolio_margin_equity_and_does_not_stop(local_exchange_factory, tmp_path, mode):
    """Such accounts show a ~zero perp balance in clearinghouseState (cash under spotClearinghouseState): the
    tick's equity is the real one, so a healthy account is not 100% "down" and the stop does not fire."""
    import eth_account

    from gradient_pipeline.exchange.hyperliquid.client import HyperliquidClient
    from gradient_pipeline.monitoring.drawdown import read_equity
    from gradient_pipeline_tests.monitoring.conftest import write_config

    acct = eth_account.Account.create()
    ex = local_exchange_factory(start_time="2025-05-01 00:05", coins=["BTC", "ETH"],
                                accounts={acct.address: {"usdc": 10_000.0, "mode": mode}})
    cfg = write_config(tmp_path / "cfg.json", ex.base_url, tmp_path / "g.duckdb")
    client = HyperliquidClient.from_config(cfg)
    perp_only = client.info_post({"type": "clearinghouseState", "user": acct.address})
    assert float(perp_only["marginSummary"]["accountValue"]) < 1.0  # what the old read took as equity
    state = read_equity(cfg, acct.address, client)
    assert state.account_value == pytest.approx(10_000.0)
    decision = evaluate(EquityReading(state.account_value, NOW), hwm=10_000.0, breaching_ticks=1, limits=LIM, now=NOW)
    assert decision.level == "ok" and decision.breaching_ticks == 0
