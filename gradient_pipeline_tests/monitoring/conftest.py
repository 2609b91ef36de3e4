"""Fixtures for monitoring tests: a real HTTP alert receiver, a funded paper account on the local exchange with
positions opened through the real SDK, and a configuration file pointing at both."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import eth_account
import pytest

from gradient_pipeline.config import GradientConfig, load_config

START = "2025-05-01 00:05"
COINS = ["BTC", "ETH", "SOL", "DOGE"]
# a small market-neutral book: coin -> signed USD notional
BOOK = {"BTC": 900.0, "SOL": 800.0, "ETH": -900.0, "DOGE": -800.0}


class AlertReceiver:
    """Records every POST (path + JSON body) sent to http://127.0.0.1:<port>/..."""

    def __init__(self):
        self.posts: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"raw": raw.decode(errors="replace")}
                receiver.posts.append({"path": self.path, "json": body})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):  # keep pytest output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/alerts"

    def titles(self) -> list[str]:
        return [p["json"].get("title", "") for p in self.posts]

    def messages(self) -> list[str]:
        return [p["json"].get("message", "") for p in self.posts]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def alert_receiver(monkeypatch):
    r = AlertReceiver()
    monkeypatch.setenv("GRADIENT_ALERT_URLS", r.url)
    yield r
    r.stop()


@dataclass
class PaperAccount:
    exchange: object  # LocalExchangeHandle
    address: str
    key_hex: str
    config_path: Path
    db_path: Path
    cfg: GradientConfig

    def trading(self):
        from gradient_pipeline.monitoring.account import open_trading

        return open_trading(self.cfg, signer=True)

    def env(self) -> dict[str, str]:
        return {"GRADIENT_PRIVATE_KEY": self.key_hex, "GRADIENT_ACCOUNT_ADDRESS": self.address,
                "GRADIENT_CONFIG": str(self.config_path)}


def write_config(path: Path, base_url: str, db_path: Path, **overrides) -> GradientConfig:
    data = {"mode": "paper", "exchange_base_url": base_url, "duckdb_path": str(db_path), **overrides}
    path.write_text(json.dumps(data))
    return load_config(path)


def open_book(trading, book: dict[str, float]) -> None:
    """Open `book` (coin -> signed USD) with IOC orders through the real SDK."""
    from gradient_pipeline.exchange.hyperliquid.rounding import round_price, round_size
    from gradient_pipeline.venue.model import OrderRequest, client_order_id

    mids = trading.all_mids()
    orders = []
    for coin, usd in sorted(book.items()):
        buy = usd > 0
        szd = trading.sz_decimals[coin]
        px = round_price(mids[coin] * (1.01 if buy else 0.99), szd, buy)
        orders.append(OrderRequest(coin, buy, round_size(abs(usd) / mids[coin], szd), px, False,
                                   client_order_id("test-open", coin, "open", 0)))
    outcomes = trading.bulk_orders(orders)
    assert all(o.kind == "filled" for o in outcomes), outcomes


@pytest.fixture
def paper_account(local_exchange_factory, tmp_path, monkeypatch) -> PaperAccount:
    acct = eth_account.Account.create()
    ex = local_exchange_factory(start_time=START, coins=COINS, accounts={acct.address: 10_000.0})
    db = tmp_path / "gradient.duckdb"
    cfg_path = tmp_path / "gradient_live.json"
    cfg = write_config(cfg_path, ex.base_url, db)
    pa = PaperAccount(ex, acct.address, acct.key.hex(), cfg_path, db, cfg)
    for k, v in pa.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("GRADIENT_DUCKDB_PATH", raising=False)
    return pa


def store_backtest(conn, start: str, n: int, net) -> None:
    """A stored backtest as research writes it (tables from research.store), per-bar net returns from `net(i)`."""
    import pandas as pd

    from gradient_pipeline.research import store

    store.ensure(conn)
    bars = pd.date_range(start, periods=n, freq="4h")
    conn.execute("INSERT INTO backtest_runs (run_id, created_at, start_ts, end_ts, n_bars) VALUES ('bt', now(), ?, ?, ?)",
                 [bars[0].to_pydatetime(), bars[-1].to_pydatetime(), n])
    conn.executemany("INSERT INTO backtest_equity (run_id, ts, net) VALUES ('bt', ?, ?)",
                     [[t.to_pydatetime(), float(net(i))] for i, t in enumerate(bars)])
