"""The operator commands as an operator runs them: separate processes, no Dagster daemon, real local exchange."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from gradient_pipeline import book
from gradient_pipeline.book import ledger
from gradient_pipeline.monitoring.halt import is_halted
from gradient_pipeline_tests.monitoring.conftest import BOOK, open_book


def run_cli(args: list[str], env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **env, "TZ": "UTC"}
    return subprocess.run(
        [sys.executable, "-m", "gradient_pipeline.cli", *args], env=full_env, input=stdin, capture_output=True,
        text=True, timeout=120,
    )


def test_emergency_stop_cli_flattens_halts_and_alerts_without_dagster(paper_account, alert_receiver, tmp_path):
    trading = paper_account.trading()
    open_book(trading, BOOK)
    assert set(trading.account_state().positions) == set(BOOK)
    env = {**paper_account.env(), "GRADIENT_ALERT_URLS": alert_receiver.url,
           "DAGSTER_HOME": str(tmp_path / "no_dagster_here")}  # no instance, no daemon

    # without --yes and without a terminal: refused, nothing touched
    refused = run_cli(["emergency-stop", "--flatten-all"], env, stdin="")
    assert refused.returncode == 1 and "refusing without a terminal" in refused.stderr
    assert set(trading.account_state().positions) == set(BOOK)

    done = run_cli(["emergency-stop", "--flatten-all", "--yes", "--reason", "test drill"], env)
    assert done.returncode == 0, done.stderr
    assert "account is FLAT" in done.stdout and "halt set" in done.stdout
    state = trading.account_state()
    assert state.positions == {} and trading.open_orders() == []

    # the halt survives the process: a brand-new connection sees it
    with book.connect(paper_account.db_path) as conn:
        assert is_halted(conn)
        orders = ledger.table_frame(conn, "orders")
        fills = ledger.table_frame(conn, "fills")
        equity = ledger.table_frame(conn, "equity")
    orders = orders[orders["rebalance_id"].str.startswith("emergency-")]
    assert len(orders) == len(BOOK) and orders["reduce_only"].all() and (orders["status"] == "filled").all()
    assert fills[fills["rebalance_id"].fillna("").str.startswith("emergency-")]["coin"].nunique() == len(BOOK)
    assert equity.loc[equity["source"] == "emergency_stop", "n_positions"].tolist() == [0]

    # exactly one alert, carrying the reason and the flatten result, and no secret
    assert len(alert_receiver.posts) == 1
    msg = alert_receiver.posts[0]["json"]
    assert "EMERGENCY STOP" in msg["title"] and "test drill" in msg["message"] and "FLAT" in msg["message"]
    assert msg["type"] == "failure"
    key = paper_account.key_hex.removeprefix("0x")
    assert all(key not in json.dumps(p) for p in alert_receiver.posts)
    assert key not in done.stdout + done.stderr

    # status (another process) shows the halt and a flat account
    status = run_cli(["status"], env)
    assert status.returncode == 2, status.stderr  # exit code 2: halted
    assert "HALTED" in status.stdout and "test drill" in status.stdout and "positions:      0" in status.stdout

    # resume asks for confirmation; without it nothing changes
    no = run_cli(["resume"], env, stdin="")
    assert no.returncode == 1 and "NOT resumed" in no.stdout
    with book.connect(paper_account.db_path) as conn:
        assert is_halted(conn)
    yes = run_cli(["resume", "--yes"], env)
    assert yes.returncode == 0, yes.stderr
    assert "resumed" in yes.stdout
    with book.connect(paper_account.db_path) as conn:
        assert not is_halted(conn)
        hwm = ledger.table_frame(conn, "high_water_mark").iloc[0]
    assert abs(hwm["hwm_usd"] - state.account_value) < 1e-6 and hwm["reason"].startswith("rebase")


def test_status_shows_positions_exposure_and_last_rebalance(paper_account, tmp_path):
    trading = paper_account.trading()
    open_book(trading, BOOK)
    with book.connect(paper_account.db_path) as conn:
        ledger.start_rebalance(conn, "rb-test-1", "2025-04-30 20:00", "paper", "local", paper_account.address, 10_000.0)
        ledger.finish_rebalance(conn, "rb-test-1", "partial", "residual DOGE $12")
    out = run_cli(["status"], paper_account.env())
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "mode:           paper (sends orders)" in text
    assert f"network:        local ({paper_account.exchange.base_url})" in text
    assert "halt:           not halted" in text
    assert "positions:      4" in text
    for coin in BOOK:
        assert f"  {coin} " in text
    assert "last rebalance: rb-test-1" in text and "partial" in text and "residual DOGE $12" in text
    js = json.loads(run_cli(["status", "--json"], paper_account.env()).stdout)
    e = js["exposure"]
    assert 1650 < e["long_usd"] < 1750 and 1650 < e["short_usd"] < 1750
    assert abs(e["net_usd"]) < 50 and abs(e["gross_usd"] - e["long_usd"] - e["short_usd"]) < 1e-9
    assert js["drawdown_pct"] is not None and js["drawdown_pct"] < 1
    # offline: the exchange is not contacted; without a snapshot the account value is unknown
    off = run_cli(["status", "--offline"], paper_account.env())
    assert "account value:  unknown" in off.stdout


def test_emergency_stop_script(paper_account, tmp_path):
    from gradient_pipeline_tests.conftest import REPO_ROOT

    trading = paper_account.trading()
    open_book(trading, {"BTC": 600.0, "ETH": -600.0})
    env = {**os.environ, **paper_account.env(), "GRADIENT_ALERT_URLS": ""}
    out = subprocess.run([str(REPO_ROOT / "scripts" / "gradient_emergency_stop.sh"), "--yes", "--reason", "script drill"],
                         env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "account is FLAT" in out.stdout and "--- status after the emergency stop ---" in out.stdout
    assert "HALTED" in out.stdout and "script drill" in out.stdout
    assert trading.account_state().positions == {}


def test_emergency_stop_without_flatten_cancels_and_halts_only(paper_account):
    from gradient_pipeline_tests.monitoring.test_emergency import _resting_bid

    trading = paper_account.trading()
    open_book(trading, BOOK)
    _resting_bid(trading)
    out = run_cli(["emergency-stop", "--yes", "--reason", "pause"], {**paper_account.env(), "GRADIENT_ALERT_URLS": ""})
    assert out.returncode == 0, out.stderr
    assert "1 open order(s) cancelled" in out.stdout and "halt set" in out.stdout
    assert trading.open_orders() == [] and set(trading.account_state().positions) == set(BOOK)
    with book.connect(paper_account.db_path) as conn:
        assert is_halted(conn)


def test_status_while_a_writer_holds_the_ledger(paper_account):
    import multiprocessing as mp

    from gradient_pipeline_tests.monitoring.test_sensors import _hold

    ctx = mp.get_context("spawn")
    ready, go = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold, args=(str(paper_account.db_path), ready, go))
    proc.start()
    try:
        assert ready.wait(60)
        out = run_cli(["status"], paper_account.env())
    finally:
        go.set()
        proc.join(30)
    assert out.returncode == 0, out.stderr
    # the writers hold DuckDB and an open book transaction: status still reads the book, and says nothing is wrong
    assert "halt:           not halted" in out.stdout and "account value:  $" in out.stdout
    assert "could not be read" not in out.stdout and "locked" not in out.stdout


def test_drawdown_drill_shows_warning_stop_flatten_alert_and_halt(tmp_path):
    live_db = tmp_path / "live" / "gradient.duckdb"  # the operator's own book: the drill records its pass there
    env = {"DAGSTER_HOME": str(tmp_path / "dagster_home"), "GRADIENT_ALERT_URLS": "",
           "GRADIENT_DUCKDB_PATH": str(live_db)}
    out = run_cli(["drawdown-drill", "--workdir", str(tmp_path / "drill")], env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    from gradient_pipeline import book
    from gradient_pipeline.book.heartbeats import last_beat
    from gradient_pipeline.app.drill import DRILL_HEARTBEAT

    with book.connect(live_db) as conn:
        assert last_beat(conn, DRILL_HEARTBEAT) is not None  # what `preflight` checks
        from gradient_pipeline.book.ledger import table_frame

        assert table_frame(conn, "rebalances").empty  # the drill's trades stay in its own book
    text = out.stdout
    order = ["launch drawdown_warning_job", "[gradient] drawdown warning", "launch emergency_stop_job",
             "[gradient] EMERGENCY STOP at", "account is FLAT", "a rebalance while halted: refused",
             "halt:           HALTED", "positions:      0", "alerts received: 2"]
    positions = [text.find(s) for s in order]
    assert all(p >= 0 for p in positions), dict(zip(order, positions))
    assert positions == sorted(positions)
