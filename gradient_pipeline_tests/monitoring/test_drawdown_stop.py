"""A drawdown injected at the local exchange (price shocks on the held coins) goes through the real Dagster
pieces: monitor_job snapshots → drawdown_sensor → warning job → emergency_stop_job → flat, halted (surviving a
new process), rebalances refused while halted, alerts once each, then resume."""

from __future__ import annotations

import os
import subprocess
import sys

import dagster as dg
from gradient_pipeline import book
from gradient_pipeline.book import ledger
import pytest

from gradient_pipeline.defs.monitoring import defs as monitoring_defs
from gradient_pipeline.defs.monitoring.sensors import drawdown_sensor, equity_sensor
from gradient_pipeline.defs.resources import GradientResource
from gradient_pipeline.monitoring.halt import is_halted
from gradient_pipeline_tests.monitoring.conftest import BOOK, open_book


def _job(name, gradient):
    return dg.Definitions.merge(monitoring_defs, dg.Definitions(resources={"gradient": gradient})).resolve_job_def(name)


def _evaluate(sensor, gradient, instance):
    ctx = dg.build_sensor_context(instance=instance, resources={"gradient": gradient})
    return sensor(ctx)


def _launch(request: dg.RunRequest, gradient, instance):
    job = _job(request.job_name or "monitor_job", gradient)
    result = job.execute_in_process(run_config=request.run_config or {}, instance=instance, tags=request.tags,
                                    raise_on_error=False)
    return result


def _snapshot(gradient, instance):
    r = _job("monitor_job", gradient).execute_in_process(instance=instance)
    assert r.success
    return r.asset_materializations_for_node("equity_snapshot")[0].metadata


def test_drawdown_warning_then_emergency_stop_flatten_halt_resume(paper_account, alert_receiver, tmp_path):
    ex = paper_account.exchange
    trading = paper_account.trading()
    open_book(trading, BOOK)
    gradient = GradientResource(config_path=str(paper_account.config_path), duckdb_path=str(paper_account.db_path))

    with dg.instance_for_test() as instance:
        # the equity sensor asks for a snapshot run (the interval is tracked in its cursor)
        req = equity_sensor(dg.build_sensor_context(instance=instance, resources={"gradient": gradient}))
        assert isinstance(req, dg.SensorResult) and req.run_requests[0].run_key.startswith("equity-")
        md = _snapshot(gradient, instance)
        assert md["drawdown_pct"].value < 1.0 and md["n_positions"].value == 4
        assert isinstance(_evaluate(drawdown_sensor, gradient, instance), dg.SkipReason)

        # 1) the longs fall 70%: ~12% drawdown → warning, once
        ex.price_shock(0.3, "BTC")
        ex.price_shock(0.3, "SOL")
        md = _snapshot(gradient, instance)
        assert 10 <= md["drawdown_pct"].value < 20
        req = _evaluate(drawdown_sensor, gradient, instance)
        assert isinstance(req, dg.RunRequest) and req.job_name == "drawdown_warning_job"
        assert _launch(req, gradient, instance).success
        assert isinstance(_evaluate(drawdown_sensor, gradient, instance), dg.SkipReason)  # already warned
        assert len(alert_receiver.posts) == 1
        assert "drawdown warning" in alert_receiver.posts[0]["json"]["title"]

        # 2) the shorts double: > 20% → emergency stop
        ex.price_shock(2.0, "ETH")
        ex.price_shock(2.0, "DOGE")
        md = _snapshot(gradient, instance)
        assert md["drawdown_pct"].value >= 20
        # one breaching tick is not enough (risk.drawdown_stop_ticks = 2): the next tick confirms it
        first = _evaluate(drawdown_sensor, gradient, instance)
        assert isinstance(first, dg.SkipReason) and "tick 1 of 2" in first.skip_message
        req = _evaluate(drawdown_sensor, gradient, instance)
        assert isinstance(req, dg.RunRequest) and req.job_name == "emergency_stop_job"
        result = _launch(req, gradient, instance)
        assert result.success
        state = trading.account_state()
        assert state.positions == {} and trading.open_orders() == []
        # halted, so the sensor does not stop again
        skip = _evaluate(drawdown_sensor, gradient, instance)
        assert isinstance(skip, dg.SkipReason) and "halted and the account is flat" in skip.skip_message
        assert len(alert_receiver.posts) == 2
        stop = alert_receiver.posts[1]["json"]
        assert "EMERGENCY STOP" in stop["title"] and "account is FLAT" in stop["message"]
        assert "HALTED" in stop["message"] and stop["type"] == "failure"

    # the halt survives a restart: a new process with a new connection sees it
    check = subprocess.run(
        [sys.executable, "-c", "import sys\nfrom gradient_pipeline import book\n"
         "from gradient_pipeline.monitoring.halt import halt_reason, is_halted\n"
         f"with book.connect({str(paper_account.db_path)!r}) as c:\n    print(halt_reason(c)); h = is_halted(c)\n"
         "sys.exit(0 if h else 3)"],
        capture_output=True, text=True, env={**os.environ, **paper_account.env()}, timeout=60,
    )
    assert check.returncode == 0, check.stderr
    assert "HALTED" in check.stdout and "drawdown_sensor" in check.stdout and "emergency_stop_drawdown_pct" in check.stdout

    # while halted a rebalance trades nothing and ends refused, visibly in the ledger
    _assert_rebalance_refused(paper_account)

    # resume (scripted confirmation) clears the halt and re-bases the high-water mark
    env = {**os.environ, **paper_account.env()}
    out = subprocess.run([sys.executable, "-m", "gradient_pipeline.cli", "resume", "--yes"], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    with book.connect(paper_account.db_path) as conn:
        assert not is_halted(conn)
    with dg.instance_for_test() as instance:
        md = _snapshot(gradient, instance)
        assert md["drawdown_pct"].value < 0.5
        skip = _evaluate(drawdown_sensor, gradient, instance)
        assert isinstance(skip, dg.SkipReason) and "below the warning level" in skip.skip_message
    assert len(alert_receiver.posts) == 2  # nothing new after resume


def _assert_rebalance_refused(paper_account):
    runner_mod = pytest.importorskip("gradient_pipeline.execution.runner")
    from gradient_pipeline.exchange.hyperliquid.factory import trading_client

    client = trading_client(paper_account.cfg)
    before = len(client.fills_since())
    window = client.server_time().floor("4h") - __import__("pandas").Timedelta(hours=4)
    runner = runner_mod.Rebalancer(paper_account.cfg, client, str(paper_account.db_path))
    result = runner.run(window, {"BTC": 0.1, "ETH": -0.1}, {"BTC": 1e9, "ETH": 1e9})
    assert result.status == "refused" and "halt" in (result.reason or "").lower()
    assert result.orders_sent == 0 and len(client.fills_since()) == before
    assert client.account_state().positions == {}
    with book.connect(paper_account.db_path) as conn:
        row = ledger.get_rebalance(conn, result.rebalance_id)
    assert row["status"] == "refused" and "halt" in row["reason"].lower()
