"""Paper trading on the live market: a local exchange whose market is an upstream Hyperliquid info URL
(`upstream.UpstreamMarket`) and whose accounts live in a state file that survives restarts.

```python
with run_paper_in_background("testnet", "data/paper_exchange_state.json",
                             accounts={master: 10_000.0}, agents={agent: master}) as ex:
    ...  # point the project's config at ex.base_url (mode: paper); orders fill against testnet's real book
```
CLI: `gradient-pipeline exchange serve --upstream mainnet|testnet|URL [--state-file PATH] [--accounts FILE]`.

Money safety: only `/info` reads go to the upstream. Orders are matched by the local trading engine against the
upstream's L2 book and never leave this process.

Persistence (`PaperStateFile`): after every engine call that changed anything (orders, fills, funding, nonces,
deposits, agents, the oid/tid counters — everything `TradingEngine.export_state` holds; see `PaperEngine._call` for
how a change is detected) the state is written to the state file atomically (temp file in the same directory,
fsync, rename), so a crash leaves the previous or the new state, never half of one. On start the file is loaded; `--accounts` deposits apply only to addresses the file does
not know yet, so a restart never funds an account twice. The file records its upstream: pointing it at another
network is refused (positions on mainnet prices are not positions on testnet). An exclusive lock (`<file>.lock`)
keeps a second paper exchange off the same file. A file that cannot be read is reported and left untouched.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
import time
from pathlib import Path

from gradient_pipeline import timegrid
from gradient_pipeline.localexchange.app import LocalExchange
from gradient_pipeline.localexchange.replay import HOUR_MS
from gradient_pipeline.localexchange.server import HOST, LocalExchangeHandle, start_serving
from gradient_pipeline.localexchange.upstream import UpstreamMarket

log = logging.getLogger(__name__)

FORMAT = "gradient-pipeline paper exchange state"
FORMAT_VERSION = 1
DEFAULT_STATE_FILE = "data/paper_exchange_state.json"
FULL_CHECK_S = 60.0  # at least this often a call compares the whole state with the file
FUNDING_WAIT_S = 60.0  # longest the clock waits at an hour for the upstream to publish that hour's funding


class PaperStateError(ValueError):
    """The state file cannot be used; the message names the file and what is wrong."""


class PaperStateFile:
    """The paper account state on disk (see the module docstring). `open()` takes the lock; `close()` frees it."""

    def __init__(self, path, upstream_url: str):
        self.path = Path(path).expanduser()
        self.upstream_url = upstream_url
        self._lock_fd: int | None = None
        self._last_text: str | None = None

    def open(self) -> dict | None:
        """Lock the file and return the saved engine state (None when there is none yet)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise PaperStateError(f"state file {self.path}: in use by another paper exchange ({self.path}.lock)")
        self._lock_fd = fd
        try:
            return self._read()
        except BaseException:
            self.close()
            raise

    def _read(self) -> dict | None:
        if not self.path.exists():
            return None
        try:
            doc = json.loads(self.path.read_text())
        except (OSError, ValueError) as err:
            raise PaperStateError(f"state file {self.path}: cannot be read ({err}); fix or move it away") from err
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != FORMAT_VERSION:
            raise PaperStateError(f"state file {self.path}: not a version-{FORMAT_VERSION} paper exchange state file")
        if doc.get("upstream") != self.upstream_url:
            raise PaperStateError(f"state file {self.path}: holds the account of upstream {doc.get('upstream')}, "
                                  f"not {self.upstream_url}; use another --state-file for this upstream")
        if not isinstance(doc.get("engine"), dict):
            raise PaperStateError(f"state file {self.path}: 'engine' is missing or not an object")
        self._last_text = json.dumps(doc["engine"], sort_keys=True, separators=(",", ":"))
        return doc["engine"]

    def save(self, engine_state: dict) -> bool:
        """Write `engine_state` if it differs from what is on disk; True if written."""
        if self._lock_fd is None:
            raise PaperStateError(f"state file {self.path}: not open (or already closed)")
        text = json.dumps(engine_state, sort_keys=True, separators=(",", ":"))
        if text == self._last_text:
            return False
        doc = (f'{{"format":{json.dumps(FORMAT)},"version":{FORMAT_VERSION},"upstream":{json.dumps(self.upstream_url)},'
               f'"saved_at":{json.dumps(str(timegrid.from_ms(int(time.time() * 1000))))},"engine":{text}}}')
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(doc)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a power cut
        finally:
            os.close(dir_fd)
        self._last_text = text
        return True

    @property
    def is_open(self) -> bool:
        return self._lock_fd is not None

    def close(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None


def _action_assets(body) -> set[int]:
    """Asset indices an /exchange action places or modifies orders on (malformed bodies: the engine reports)."""
    action = body.get("action") if isinstance(body, dict) else None
    if not isinstance(action, dict):
        return set()
    wires = []
    if action.get("type") == "order" and isinstance(action.get("orders"), list):
        wires = action["orders"]
    elif action.get("type") == "modify":
        wires = [action.get("order")]
    elif action.get("type") == "batchModify" and isinstance(action.get("modifies"), list):
        wires = [m.get("order") for m in action["modifies"] if isinstance(m, dict)]
    return {w["a"] for w in wires if isinstance(w, dict) and isinstance(w.get("a"), int)}


class PaperEngine:
    """The `TradingEngine` with the upstream data each call needs fetched first (`UpstreamMarket.prepare`) and
    the state saved after it. Every other attribute is the engine's own."""

    def __init__(self, engine, market: UpstreamMarket, store: PaperStateFile, funding_wait_s: float = FUNDING_WAIT_S):
        self._engine, self._market, self._store = engine, market, store
        self._full_check = time.monotonic()
        self.funding_wait_s = float(funding_wait_s)
        self._waiting: tuple[int, float] | None = None  # (hour the clock is held before, since when)
        market.clock.hour_gate = self._may_enter_hour
        self.ACCOUNT_INFO_TYPES = engine.ACCOUNT_INFO_TYPES

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def _in_use(self) -> tuple[set[str], set[str]]:
        """(coins with a position, coins with a resting order), read from the engine's accounts as state.py does."""
        positioned, resting = set(), set()
        for acct in self._engine._accounts.values():
            positioned |= {c for c, p in acct.positions.items() if p.szi}
            resting |= {o.coin for o in acct.open_orders()}
        return positioned, resting

    def _may_enter_hour(self, hour: int) -> bool:
        """The clock's hour gate: cross into `hour` once the upstream has published its funding for every coin
        held (or after `funding_wait_s`). Never raises: an unreachable upstream just means "not yet"."""
        if self._waiting is None or self._waiting[0] != hour:
            self._waiting = (hour, time.monotonic())
        try:
            positioned, _ = self._in_use()
            if not positioned:
                return True
            since = min(hour, (self._engine._last_ms // HOUR_MS + 1) * HOUR_MS)
            missing = self._market.funding_missing(positioned, since, hour)
        except Exception as err:  # noqa: BLE001 - the gate must not fail the caller; waiting is the safe answer
            missing = ["(unknown)"]
            log.warning("paper exchange: funding for the hour %s not readable yet: %s", timegrid.from_ms(hour), err)
        if not missing:
            return True
        if time.monotonic() - self._waiting[1] >= self.funding_wait_s:
            log.warning("paper exchange: the upstream published no funding for %s at %s after %.0f s; moving on "
                        "without paying it", ", ".join(missing), timegrid.from_ms(hour), self.funding_wait_s)
            return True
        return False

    def _prepare(self, assets=()) -> None:
        # Which coins the engine will price: positions (marks, funding) and resting orders (books); the upstream
        # fetches happen here, before the engine runs.
        positioned, resting = self._in_use()
        self._market.prepare(marks=bool(assets))  # the clock first (and the universe, to name the assets)
        incoming = {m.name for m in map(self._market.coin_by_asset, assets) if m is not None}
        now, last = self._market.now_ms(), self._engine._last_ms
        hour_crossed = positioned and now // HOUR_MS > last // HOUR_MS
        since = (last // HOUR_MS + 1) * HOUR_MS if hour_crossed else None  # catching up (e.g. after a restart)
        self._market.prepare(marks=bool(positioned or resting or incoming), books=resting | incoming,
                             funding=positioned, funding_since_ms=since)

    def _fingerprint(self) -> tuple:
        """Cheap summary of what a clock move or an account query can change (funding, resting fills, scheduled
        cancels, liquidation, delisting); exporting the whole state costs ~0.1 s per 1000 fills (bench)."""
        e = self._engine
        return (e._next_oid, e._next_tid, len(e._agents), tuple(
            (a.address, a.balance, len(a.fills), len(a.funding), len(a.ledger), a.scheduled_cancel_ms,
             tuple((o.oid, o.remaining, o.status) for o in a.open_orders()),
             tuple(sorted((c, p.szi) for c, p in a.positions.items())), tuple(sorted(a.leverage.items())))
            for a in e._accounts.values()))

    def _call(self, method: str, *args, assets=(), changes: bool = False):
        """Prepare, call the engine, save. `changes`: the call always changes state (a signed action moves the
        signer's nonces; deposits, agents); other calls are saved when their fingerprint moved, and at least
        every FULL_CHECK_S the whole state is compared with the file (whatever else may have changed it)."""
        self._prepare(assets)
        before = None if changes else self._fingerprint()
        try:
            return getattr(self._engine, method)(*args)
        finally:
            now = time.monotonic()
            if changes or self._fingerprint() != before or now - self._full_check >= FULL_CHECK_S:
                self._store.save(self._engine.export_state())
                self._full_check = now

    def on_clock(self, now_ms: int) -> None:
        return self._call("on_clock", now_ms)

    def handle_info(self, body):
        return self._call("handle_info", body)

    def handle_exchange(self, body):
        return self._call("handle_exchange", body, assets=_action_assets(body), changes=True)

    def fund(self, address: str, usdc: float, mode: str | None = None) -> None:
        return self._call("fund", address, usdc, mode, changes=True)

    def approve_agent(self, agent: str, master: str) -> None:
        return self._call("approve_agent", agent, master, changes=True)

    def import_state(self, saved: dict) -> None:
        return self._call("import_state", saved, changes=True)


def build_paper_exchange(upstream: str, state_file=DEFAULT_STATE_FILE, *, accounts: dict[str, float] | None = None,
                         agents: dict[str, str] | None = None, rate_limit_per_minute: float = 1200,
                         engine_config: dict | None = None, funding_wait_s: float = FUNDING_WAIT_S,
                         **market_options) -> LocalExchange:
    """A `LocalExchange` on `upstream` (`mainnet`, `testnet` or a URL) with its accounts in `state_file`.

    Raises `UpstreamUnavailable` if the upstream cannot be reached, `PaperStateError` if the state file cannot be
    used. `market_options` go to `UpstreamMarket` (`ttl_s`, `ctx_ttl_s`, `clock_sync_s`, `timeout_s`, …).
    The returned exchange's `paper_store` must be closed when done (`close_paper_exchange`).
    """
    market = UpstreamMarket(upstream, **market_options)
    store = PaperStateFile(state_file, market.url)
    saved = store.open()
    try:
        ex = LocalExchange(None, None, market=market, rate_limit_per_minute=rate_limit_per_minute,
                           engine_config=engine_config)
        if ex.engine is None:
            raise RuntimeError("paper exchange: the trading engine (localexchange/engine.py) is missing")
        ex.engine = PaperEngine(ex.engine, market, store, funding_wait_s)
        if saved is not None:
            ex.engine.import_state(saved)
        known = {a["address"].lower() for a in (saved or {}).get("accounts", [])}
        for address, usdc in (accounts or {}).items():
            if address.lower() in known:
                log.info("paper exchange: %s kept from %s (not funded again)", address, store.path)
            else:
                ex.fund(address, usdc)
        for agent, master in (agents or {}).items():
            ex.approve_agent(agent, master)
        store.save(ex.engine.export_state())
    except BaseException:
        store.close()
        raise
    ex.paper_store = store
    ex.upstream_url = market.url
    return ex


def close_paper_exchange(ex: LocalExchange) -> None:
    """Save once more and release the state file's lock."""
    store = getattr(ex, "paper_store", None)
    if store is not None and store.is_open:
        with ex.lock:
            store.save(ex.engine.export_state())
            store.close()
            ex.market.close()


class PaperExchangeHandle(LocalExchangeHandle):
    """A running paper exchange (`LocalExchangeHandle`; the clock and price-shock methods raise in this mode)."""

    @property
    def state_file(self) -> Path:
        return self.exchange.paper_store.path

    def stop(self) -> None:
        super().stop()
        close_paper_exchange(self.exchange)


def run_paper_in_background(upstream: str, state_file=DEFAULT_STATE_FILE, port: int = 0, *,
                            log_level: str = "warning", ready_timeout: float = 10.0, **options) -> PaperExchangeHandle:
    """Start a paper exchange on 127.0.0.1 (`port=0`: a free port) in a daemon thread; `options` as for
    `build_paper_exchange`. Returns once it accepts requests."""
    exchange = build_paper_exchange(upstream, state_file, **options)
    try:
        server, thread, bound_port = start_serving(exchange, port, log_level, ready_timeout, "paper-exchange")
    except BaseException:
        close_paper_exchange(exchange)
        raise
    return PaperExchangeHandle(exchange, server, thread, bound_port)


def serve_paper(args, accounts: dict[str, float], agents: dict[str, str]) -> int:
    """`exchange serve --upstream …` in the foreground (Ctrl-C stops it; the state is saved after every change)."""
    from gradient_pipeline.localexchange.server import serve_forever

    if args.start_time or args.coins:
        raise ValueError("--start-time and --coins are for replaying --data; with --upstream the clock and the "
                         "universe are the upstream's")
    exchange = build_paper_exchange(args.upstream, args.state_file or DEFAULT_STATE_FILE, accounts=accounts,
                                    agents=agents, rate_limit_per_minute=args.rate_limit)
    try:
        status = exchange.status()
        print(f"paper exchange: http://{HOST}:{args.port}  market from {exchange.upstream_url} (reads only)  "
              f"now {status['now']}  {status['coins_listed']} coins  state {exchange.paper_store.path}",
              flush=True)
        serve_forever(exchange, args.port, log_level=args.log_level)
    finally:
        close_paper_exchange(exchange)
    return 0
