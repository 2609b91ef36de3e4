"""Run the local exchange: in a background thread (tests, demo) or in the foreground (CLI).

```python
with run_in_background(data_dir, "2025-05-01 00:05", coins=["BTC", "ETH"]) as ex:
    info = Info(ex.base_url, skip_ws=True, spot_meta={"universe": [], "tokens": []})
    ex.advance(4)                      # hours, or a timedelta
    ex.inject_fault("lost_response", action_type="order")
```
"""

from __future__ import annotations

import socket
import threading
import time
from datetime import timedelta

import pandas as pd
import uvicorn

from gradient_pipeline import timegrid
from gradient_pipeline.localexchange.app import LocalExchange, as_ms_delta, build_app
from gradient_pipeline.localexchange.faults import Fault, install_log_filter
from gradient_pipeline.localexchange.market import BookConfig, MarketView

HOST = "127.0.0.1"


def build_exchange(data_dir, start_time, *, speed: float = 0.0, accounts: dict[str, float | dict] | None = None,
                   agents: dict[str, str] | None = None, rate_limit_per_minute: float = 1200,
                   spread_bps: float = 2.0, level_step_bps: float = 1.0, book_levels: int = 20,
                   level_fraction_of_day_volume: float = 0.0005, min_level_usd: float = 2_000.0,
                   coins: list[str] | None = None, candle_history_limit: int | None = None,
                   engine_config: dict | None = None) -> LocalExchange:
    book = BookConfig(spread_bps=spread_bps, level_step_bps=level_step_bps, levels=book_levels,
                      level_fraction_of_day_volume=level_fraction_of_day_volume, min_level_usd=min_level_usd)
    return LocalExchange(data_dir, start_time, speed=speed, coins=coins, rate_limit_per_minute=rate_limit_per_minute,
                         book=book, candle_history_limit=candle_history_limit, accounts=accounts, agents=agents,
                         engine_config=engine_config)


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as err:
        sock.close()
        raise OSError(f"local exchange: cannot listen on {HOST}:{port} ({err})") from err
    return sock


def _uvicorn_server(exchange: LocalExchange, log_level: str) -> uvicorn.Server:
    install_log_filter()
    config = uvicorn.Config(build_app(exchange), log_level=log_level, lifespan="off", access_log=False,
                            timeout_graceful_shutdown=1)
    return uvicorn.Server(config)


class LocalExchangeHandle:
    """A running local exchange. The operator methods act directly on the in-process state (same effect as the
    `/_local/...` endpoints)."""

    def __init__(self, exchange: LocalExchange, server: uvicorn.Server, thread: threading.Thread, port: int):
        self.exchange = exchange
        self._server = server
        self._thread = thread
        self.port = port
        self.base_url = f"http://{HOST}:{port}"

    @property
    def market(self) -> MarketView:
        return self.exchange.market

    @property
    def engine(self):
        """The `TradingEngine`, or None when trading is not available."""
        return self.exchange.engine

    def now_ms(self) -> int:
        return self.exchange.now_ms()

    def now(self) -> pd.Timestamp:
        """Replay-now as a naive-UTC timestamp."""
        return timegrid.from_ms(self.exchange.now_ms())

    def set_time(self, ts, speed: float | None = None) -> pd.Timestamp:
        """Jump the replay clock to `ts` (timestamp-like, naive = UTC, or epoch ms); optionally change the speed."""
        return timegrid.from_ms(self.exchange.set_time(ts, speed))

    def advance(self, delta: timedelta | pd.Timedelta | float) -> pd.Timestamp:
        """Move the replay clock forward by a timedelta or a number of hours."""
        return timegrid.from_ms(self.exchange.advance(as_ms_delta(delta)))

    def inject_fault(self, kind: str, count: int = 1, info_type: str | None = None, action_type: str | None = None,
                     *, endpoint: str | None = None, hang_seconds: float | None = None) -> Fault:
        """Fail the next `count` matching requests; kinds in `faults.FAULT_KINDS`."""
        return self.exchange.faults.inject(kind, count, endpoint=endpoint, info_type=info_type,
                                           action_type=action_type, hang_seconds=hang_seconds)

    def clear_faults(self) -> None:
        self.exchange.faults.clear()

    def price_shock(self, factor: float, coin: str | None = None) -> None:
        """Multiply one coin's (or all coins') prices by `factor` from replay-now on."""
        self.exchange.price_shock(factor, coin)

    def thin_book(self, factor: float, coin: str | None = None) -> None:
        """Multiply one coin's (or every coin's) book depth by `factor` until changed (1 restores it): thin books,
        partial fills."""
        self.exchange.thin_book(factor, coin)

    def clear_shocks(self) -> None:
        """Forget every price shock (prices are the recorded ones again)."""
        self.exchange.clear_shocks()

    def restart(self, *, keep_id_counters: bool = True, ready_timeout: float = 10.0) -> None:
        """Restart as a process with a saved state would: stop serving, build a new trading engine from the old
        one's exported state (accounts, orders, fills, nonces, id counters), serve again on the same port. Pending
        faults and in-flight requests are lost, as in a real restart; the recorded market data (read-only), price
        shocks and book depth settings are reused. `keep_id_counters=False` drops the saved order/trade id counters
        (a state file written before they were saved): new ids must still never repeat old ones."""
        engine = self.exchange.engine
        if engine is None:
            raise RuntimeError("restart needs the trading engine (nothing to carry over without it)")
        saved = engine.export_state()
        if not keep_id_counters:
            saved = {**saved, "next_oid": 1, "next_tid": 1}
        old = self.exchange
        self.stop()
        new = LocalExchange(old.market.data.data_dir, old.now_ms(), market=old.market,
                            rate_limit_per_minute=old.limiter.budget, engine_config=dict(engine.config))
        new.engine.import_state(saved)
        self._server, self._thread, _ = start_serving(new, self.port, "warning", ready_timeout, "local-exchange")
        self.exchange = new

    def fund(self, address: str, usdc: float, mode: str | None = None) -> None:
        """Deposit `usdc` (creating the account; `mode` = standard | unified-account | portfolio-margin)."""
        self.exchange.fund(address, usdc, mode)

    def approve_builder(self, master: str, builder: str, max_fee_rate: str = "0.1%") -> None:
        self.exchange.approve_builder(master, builder, max_fee_rate)

    def venue_now_ms(self) -> int:
        """The venue clock (nonces, expiresAfter, scheduleCancel): wall clock + operator offset."""
        return self.exchange.venue_clock()["now_ms"]

    def scheduled_cancel_ms(self, address: str) -> int | None:
        """The account's armed scheduleCancel time (venue ms), or None."""
        return self.exchange.engine.scheduled_cancel_ms(address)

    def advance_venue_clock(self, seconds: float) -> int:
        """Move the venue clock forward (a due scheduleCancel fires); returns the new venue now in ms."""
        return self.exchange.advance_venue_clock(round(float(seconds) * 1000))

    def approve_agent(self, agent: str, master: str) -> None:
        self.exchange.approve_agent(agent, master)

    def reset_rate_limits(self) -> None:
        self.exchange.limiter.reset()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> LocalExchangeHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalExchangeHandle({self.base_url}, now={self.now()})"


def start_serving(exchange, port: int, log_level: str, ready_timeout: float, name: str
                  ) -> tuple[uvicorn.Server, threading.Thread, int]:
    """Serve `exchange` on 127.0.0.1:`port` (0: a free port) in a daemon thread; return (server, thread, port) once
    it accepts requests, or raise naming the port (the server is told to exit)."""
    sock = _bind(port)
    bound_port = sock.getsockname()[1]
    server = _uvicorn_server(exchange, log_level)
    errors: list[BaseException] = []

    def serve():
        try:
            server.run(sockets=[sock])
        except BaseException as err:  # surfaced to the caller below
            errors.append(err)
        finally:
            sock.close()

    thread = threading.Thread(target=serve, name=f"{name}-{bound_port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + ready_timeout
    while not server.started:
        if errors or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError(f"{name} failed to start on {HOST}:{bound_port}: {errors[:1]}")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"{name} did not start on {HOST}:{bound_port} within {ready_timeout}s")
        time.sleep(0.01)
    return server, thread, bound_port


def run_in_background(data_dir, start_time, speed: float = 0.0, port: int = 0,
                      accounts: dict[str, float | dict] | None = None, agents: dict[str, str] | None = None,
                      rate_limit_per_minute: float = 1200, spread_bps: float = 2.0, *,
                      level_step_bps: float = 1.0, book_levels: int = 20,
                      level_fraction_of_day_volume: float = 0.0005, min_level_usd: float = 2_000.0,
                      coins: list[str] | None = None, candle_history_limit: int | None = None,
                      engine_config: dict | None = None, log_level: str = "warning",
                      ready_timeout: float = 10.0) -> LocalExchangeHandle:
    """Start a local exchange on 127.0.0.1 (`port=0`: a free port) in a daemon thread; return once it accepts
    requests. Data errors (missing directory, unknown coin) raise here, before anything listens."""
    exchange = build_exchange(
        data_dir, start_time, speed=speed, accounts=accounts, agents=agents,
        rate_limit_per_minute=rate_limit_per_minute, spread_bps=spread_bps, level_step_bps=level_step_bps,
        book_levels=book_levels, level_fraction_of_day_volume=level_fraction_of_day_volume,
        min_level_usd=min_level_usd, coins=coins, candle_history_limit=candle_history_limit,
        engine_config=engine_config)
    server, thread, bound_port = start_serving(exchange, port, log_level, ready_timeout, "local-exchange")
    return LocalExchangeHandle(exchange, server, thread, bound_port)


def serve_forever(exchange: LocalExchange, port: int, log_level: str = "info") -> None:
    """Foreground server for the CLI (Ctrl-C stops it)."""
    sock = _bind(port)
    try:
        _uvicorn_server(exchange, log_level).run(sockets=[sock])
    finally:
        sock.close()
