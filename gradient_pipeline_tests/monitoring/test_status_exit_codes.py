"""`status` exit codes, from the same drawdown decision as the sensor: 0 ok, 1 warning, 2 halted or at the stop
level, 3 cannot evaluate (exchange unreachable with no recent reading, no book, no account)."""

from __future__ import annotations

import json

from gradient_pipeline.monitoring.equity import record_equity
from gradient_pipeline_tests.monitoring.conftest import BOOK, open_book
from gradient_pipeline_tests.monitoring.test_cli import run_cli


def test_status_exit_codes_follow_the_drawdown_decision(paper_account, tmp_path):
    trading = paper_account.trading()
    open_book(trading, BOOK)
    env = paper_account.env()
    # the operations book cannot be read (a PostgreSQL book whose server is down): halt state unknown → 3
    dead_book = {**env, "GRADIENT_BOOK_URL": "postgresql+psycopg://postgres@127.0.0.1:9/nobook?connect_timeout=2"}
    out = run_cli(["status"], dead_book)
    assert out.returncode == 3, out.stdout + out.stderr
    from gradient_pipeline import book

    with book.connect(paper_account.db_path) as conn:
        record_equity(conn, trading.account_state(), paper_account.exchange.now(), "monitor")
    out = run_cli(["status"], env)
    assert out.returncode == 0, out.stdout + out.stderr
    ex = paper_account.exchange
    ex.price_shock(0.3, "BTC")
    ex.price_shock(0.3, "SOL")  # ≈ 12% below the mark: warning
    out = run_cli(["status", "--json"], env)
    assert out.returncode == 1, out.stdout + out.stderr
    js = json.loads(out.stdout)
    assert js["exit_code"] == 1 and js["drawdown_level"] == "warn" and 10 <= js["drawdown_pct"] < 20
    ex.price_shock(2.0, "ETH")
    ex.price_shock(2.0, "DOGE")  # past the stop level (the mark was never written by a rebalance: still seen)
    out = run_cli(["status"], env)
    assert out.returncode == 2 and "stop" in out.stdout, out.stdout + out.stderr
    # the exchange stops answering and the drawdown check never read it: cannot evaluate → 3
    fast = tmp_path / "fast.json"
    fast.write_text(json.dumps({"mode": "paper", "exchange_base_url": ex.base_url,
                                "duckdb_path": str(paper_account.db_path),
                                "rate_limit": {"max_retries": 1, "backoff_base_s": 0.01, "backoff_max_s": 0.02}}))
    ex.inject_fault("500", count=1000, endpoint="info")
    out = run_cli(["status"], {**env, "GRADIENT_CONFIG": str(fast)})
    ex.clear_faults()
    assert out.returncode == 3, out.stdout + out.stderr
    assert "exchange not reachable" in out.stdout
