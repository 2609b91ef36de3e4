"""`gradient-pipeline watchdog` (cron, no Dagster): alerts when the drawdown check has not evaluated recently,
pings a dead-man URL when it has."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import duckdb

from gradient_pipeline.monitoring.drawdown_check import check_drawdown
from gradient_pipeline.monitoring.equity import record_equity
from gradient_pipeline_tests.monitoring.test_cli import run_cli


class PingReceiver:
    def __init__(self):
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ping/abc"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def test_watchdog_alerts_when_stale_and_pings_when_fresh(paper_account, alert_receiver, tmp_path):
    pings = PingReceiver()
    env = {**paper_account.env(), "GRADIENT_ALERT_URLS": alert_receiver.url, "GRADIENT_DEADMAN_URL": pings.url,
           "DAGSTER_HOME": str(tmp_path / "no_dagster")}
    try:
        # never evaluated (daemon never ran): alert, exit 1, no ping
        out = run_cli(["watchdog"], env)
        assert out.returncode == 1 and "never evaluated" in out.stderr, out.stdout + out.stderr
        assert [t for t in alert_receiver.titles() if "STALE" in t] and pings.paths == []
        # the drawdown check runs (as the sensor does): fresh → ping, exit 0, the alert re-arms
        trading = paper_account.trading()
        from gradient_pipeline import book

        with book.connect(paper_account.db_path) as conn:
            record_equity(conn, trading.account_state(), paper_account.exchange.now(), "monitor")
        check_drawdown(paper_account.cfg, str(paper_account.db_path))
        out = run_cli(["watchdog"], env)
        assert out.returncode == 0 and "ok: last drawdown evaluation" in out.stdout, out.stdout + out.stderr
        assert pings.paths == ["/ping/abc"]
        # the daemon dies: the heartbeat ages past the limit → alert (once), exit 1, no ping
        time.sleep(1.1)
        n = len(alert_receiver.posts)
        stale = run_cli(["watchdog", "--max-age", "1"], env)
        again = run_cli(["watchdog", "--max-age", "1"], env)
        assert stale.returncode == 1 and again.returncode == 1
        assert "last successful drawdown evaluation" in stale.stderr
        assert len(alert_receiver.posts) == n + 1  # once until it recovers
        assert pings.paths == ["/ping/abc"]
    finally:
        pings.stop()
