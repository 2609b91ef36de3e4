"""`gradient-pipeline simulate --schedules N --seed S`: seeded fault schedules against the real local exchange.

For each schedule (its own seed, derived from S and its index), a fresh funded account and operations book run
several consecutive 4h windows of the real rebalance path (`execution.runner.Rebalancer`) and the real drawdown
path (`monitoring.drawdown_check.check_drawdown` tick by tick, then `monitoring.emergency.emergency_stop` when it
says stop), with faults drawn from the schedule's seed and injected at the local exchange. Fault kinds (each
counted in the summary under this name):

- `429`, `500`, `502`, `timeout`, `drop`, `lost_response`, `lost_response_drop`, `lost_response_timeout`: the
  exchange fails the order batch or the account read, 1-3 times;
- `thin_book`: the book depth of one or every coin is cut to 0.2-3% for the window, so IOC orders fill partially;
- `exchange_restart`: the local exchange restarts (before or after the window's rebalance) from its saved state —
  with or without its id counters — so order and trade ids must not repeat and the ledger must still equal
  `userFills`;
- `kill_9`: the window's rebalance runs in a child process that is killed (SIGKILL) while its order batch is at
  the exchange (processed but unanswered, or not processed); the next run must resume it by client order id;
- `price_shock`: open positions are shocked past the stop level, the drawdown ticks must stop and flatten;
- `long_writer`: the same, while the window's rebalance is still running (its order request hangs, it holds the
  rebalance lock): the stop must still fire within K ticks and nothing that adds risk may go out after it;
- `dead_alert_destination`: an unreachable alert URL beside a working one.

After every window it checks the invariants (`check_invariants`):
1. no client order id was placed twice (each cloid maps to at most one exchange order id);
2. the ledger's fills equal the exchange's `userFills` (count, size, price, fee per trade id), and no trade id
   repeats;
3. every rebalance is terminal (complete/partial/refused/failed) with a reason;
4. a `complete` rebalance holds its targets within rounding; any other status carries its reason;
5. while halted, no order that increases risk is sent (every rebalance refused, no new fills);
6. a drawdown past the stop ⇒ flat within K (= `risk.drawdown_stop_ticks`) ticks (and no stop below it).

Cost: one exchange serves every schedule (in-process; 4 coins of the bundled real-data extract); each schedule
sets the replay clock to its own start (so `--schedule I` replays schedule I exactly), gets its own account and
ends flat; the one operations book (SQLite in a tmpfs directory, migrated once) is emptied between schedules. Retry/backoff delays and request timeouts are set
small through the ordinary configuration. Only `kill_9` starts a process (drawn for ~1% of schedules).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

COINS = ["BTC", "ETH", "SOL", "DOGE"]
START = "2024-11-01 00:05"
START_SLOTS = 1000  # schedule starts: START + k × 4h, k < this (the bundled extract ends 2025-04-30)
CAPITAL = 10_000.0
EXCHANGE_FAULTS = ("429", "500", "502", "timeout", "drop", "lost_response", "lost_response_drop",
                   "lost_response_timeout")
ENV_KEYS = ("GRADIENT_PRIVATE_KEY", "GRADIENT_ACCOUNT_ADDRESS", "GRADIENT_ALERT_URLS", "GRADIENT_CONFIG",
            "GRADIENT_DUCKDB_PATH", "GRADIENT_BOOK_URL")
REQUEST_TIMEOUT_S = 0.25  # a local request takes ~5 ms; a `timeout` fault hangs a little longer than this
HANG_S = 0.35
P_EXCHANGE_FAULT, P_THIN_BOOK, P_RESTART, P_KILL, P_SHOCK, P_LONG_WRITER = 0.5, 0.12, 0.04, 0.01, 0.25, 0.4
SCHEDULES_PER_EXCHANGE = 500  # every clock move visits every account (funding, liquidation): start afresh now and then


def schedule_seed(seed: int, index: int) -> int:
    return int(hashlib.sha256(f"{seed}:{index}".encode()).hexdigest()[:12], 16)


@dataclasses.dataclass
class ScheduleResult:
    index: int
    seed: int
    windows: int = 0
    faults: Counter = dataclasses.field(default_factory=Counter)
    violations: list[str] = dataclasses.field(default_factory=list)
    notes: Counter = dataclasses.field(default_factory=Counter)  # not faults: e.g. a fault that could not apply


def _config(base_url: str, db_path: str, request_timeout_s: float = REQUEST_TIMEOUT_S):
    from gradient_pipeline.config import parse_config

    return parse_config({
        "mode": "paper", "exchange_base_url": base_url, "duckdb_path": db_path,
        "execution": {"max_attempts": 3, "dead_man_s": 30},
        # the weight budget is not under test (429s are injected as faults) and each schedule is one process
        "rate_limit": {"request_timeout_s": request_timeout_s, "max_retries": 2, "backoff_base_s": 0.002,
                       "backoff_max_s": 0.01, "budget_per_minute": 1_000_000, "shared_ledger": False},
        "risk": {"flatten_backoff_initial_s": 0.005, "flatten_backoff_max_s": 0.05, "flatten_deadline_s": 30,
                 "drawdown_stop_ticks": 2},
        "alerts": {"min_interval_s": 0},
    })


def _targets(rng: random.Random) -> dict[str, float]:
    """Market-neutral weights inside the default risk limits: two longs and two shorts of equal gross."""
    coins = COINS[:]
    rng.shuffle(coins)
    a, b = rng.uniform(0.02, 0.08), rng.uniform(0.02, 0.08)
    return {coins[0]: a, coins[1]: b, coins[2]: -a, coins[3]: -b}


def check_invariants(cfg, trading, db_path: str, targets: dict[str, float], result, halted_before: bool,
                     fills_before: set) -> list[str]:
    """The invariants after one window (see the module docstring); a list of violations, empty if none."""
    from gradient_pipeline.book import connect
    from gradient_pipeline.book.ledger import table_frame

    out = []
    fills = trading.fills_since()
    with connect(db_path) as conn:
        orders = table_frame(conn, "orders")[["cloid", "status", "oid", "reduce_only", "created_at"]]
        ledger_fills = table_frame(conn, "fills")[["tid", "sz", "px", "fee_usd"]]
        rebs = table_frame(conn, "rebalances")[["rebalance_id", "status", "reason", "capital_usd"]]
    # 1. a cloid placed twice would show as two exchange order ids for one cloid
    by_cloid: dict[str, set] = {}
    for f in fills:
        if f.cloid:
            by_cloid.setdefault(f.cloid, set()).add(f.oid)
    doubled = [c for c, oids in by_cloid.items() if len(oids) > 1]
    if doubled:
        out.append(f"client order id placed twice: {doubled[:3]}")
    if orders["cloid"].duplicated().any():
        out.append("duplicate cloid rows in the ledger")
    # 2. ledger fills == exchange fills; a repeated trade id (ids restarting) would hide a fill from the ledger
    tids = [str(f.tid) for f in fills]
    if len(set(tids)) != len(tids):
        out.append(f"trade id repeated in userFills ({len(tids) - len(set(tids))} duplicate(s))")
    ex = {str(f.tid): (f.sz, f.px, f.fee_usd) for f in fills}
    led = {str(r.tid): (float(r.sz), float(r.px), float(r.fee_usd)) for r in ledger_fills.itertuples()}
    if set(ex) != set(led):
        out.append(f"ledger fills {len(led)} != exchange fills {len(ex)}")
    else:
        bad = [t for t in ex if any(abs(x - y) > 1e-9 * max(1.0, abs(x)) for x, y in zip(ex[t], led[t]))]
        if bad:
            out.append(f"fill mismatch (size/price/fee) for trade ids {bad[:3]}")
    # 3. terminal with a reason
    for r in rebs.itertuples():
        if r.status not in ("complete", "partial", "refused", "failed"):
            out.append(f"rebalance {r.rebalance_id} not terminal: {r.status}")
        elif r.status != "complete" and not (isinstance(r.reason, str) and r.reason.strip()):
            out.append(f"rebalance {r.rebalance_id} {r.status} without a reason")
    # 4. at target when complete
    if result is not None and result.status == "complete" and not halted_before:
        state, mids = trading.account_state(), trading.all_mids()
        # sized with the capital frozen when the window's rebalance started (a shock during a long run moves the
        # account value, not the targets)
        frozen = rebs.loc[rebs["rebalance_id"] == result.rebalance_id, "capital_usd"]
        cap = float(frozen.iloc[0]) if len(frozen) and frozen.notna().iloc[0] else (result.account_value or CAPITAL)
        for coin, w in targets.items():
            held = state.positions[coin].szi * mids[coin] if coin in state.positions else 0.0
            if abs(held - w * cap) > max(15.0, 0.02 * abs(w) * cap):
                out.append(f"complete but {coin} holds ${held:,.0f} vs target ${w * cap:,.0f}")
    # 5. halted: nothing that adds risk
    if halted_before:
        if result is not None and result.status != "refused":
            out.append(f"rebalance while halted ended {result.status}, not refused")
        new = [f for f in fills if f.tid not in fills_before]
        if any(not str(f.direction or "").startswith("Close") for f in new):
            out.append("a fill that opened or increased a position while halted")
    return out


class _Sim:
    """The shared parts of a run: the exchange, the alert receiver, the template book, the work directory."""

    def __init__(self, workdir: Path, receiver_url: str):
        from gradient_pipeline import book

        self.workdir = workdir
        self.receiver_url = receiver_url
        self.handle = None
        self.generation = -1
        # One book file for every schedule, emptied between them: migrated once, and one SQLAlchemy engine whose
        # statement cache stays warm (a new file per schedule costs a migration check and a cold cache each time).
        self.db = str(workdir / "simulate.duckdb")
        with book.connect(self.db):
            pass

    def exchange_for(self, index: int):
        """The exchange for schedule `index` (a fresh one every `SCHEDULES_PER_EXCHANGE` schedules)."""
        from gradient_pipeline.demo_data import FUTURES_DIR
        from gradient_pipeline.localexchange.server import run_in_background

        generation = index // SCHEDULES_PER_EXCHANGE
        if self.handle is None or generation != self.generation:
            self.stop()
            # the weight budget is not under test here (429s are injected as faults): lift it on both sides
            self.handle = run_in_background(FUTURES_DIR, START, coins=COINS, rate_limit_per_minute=1e9)
            self.generation = generation
        return self.handle

    def new_book(self) -> str:
        """The book, emptied: every operational table of `book.schema` (what a fresh, migrated book holds)."""
        from gradient_pipeline import book
        from gradient_pipeline.book.schema import metadata

        with book.connect(self.db) as conn, book.unit(conn, write=True):
            for table in reversed(metadata.sorted_tables):
                conn.execute(table.delete())
        return self.db

    def stop(self) -> None:
        from gradient_pipeline.book.engine import dispose

        dispose(self.db)
        if self.handle is not None:
            self.handle.stop()
            self.handle = None


def run_schedule(sim: _Sim, index: int, seed: int, windows: int) -> ScheduleResult:
    import eth_account
    import pandas as pd

    from gradient_pipeline.execution.runner import Rebalancer
    from gradient_pipeline.venue.registry import open_venue as trading_client
    from gradient_pipeline.monitoring.alerts import raise_alert
    from gradient_pipeline.monitoring.drawdown_check import check_drawdown
    from gradient_pipeline.monitoring.emergency import emergency_stop
    from gradient_pipeline.monitoring.halt import is_halted
    from gradient_pipeline.monitoring import messages
    from gradient_pipeline.book import connect
    from gradient_pipeline.monitoring.halt import is_halted

    handle = sim.exchange_for(index)
    rng = random.Random(seed)
    res = ScheduleResult(index, seed)
    acct = eth_account.Account.from_key(hashlib.sha256(f"sim-key:{seed}".encode()).digest())
    handle.clear_shocks()
    handle.thin_book(1.0)
    # consecutive schedules trade consecutive windows (the clock only moves forward, by 4h a window) and schedule
    # I always starts at the same time, so `--schedule I` replays it
    handle.set_time(pd.Timestamp(START) + pd.Timedelta(hours=4) * ((index * windows) % (START_SLOTS - windows)))
    handle.fund(acct.address, CAPITAL)
    db = sim.new_book()
    cfg = _config(handle.base_url, db)
    dead = rng.random() < 0.5
    urls = f"json://127.0.0.1:9/dead {sim.receiver_url}" if dead else sim.receiver_url
    if dead:
        res.faults["dead_alert_destination"] += 1
    os.environ.update({"GRADIENT_PRIVATE_KEY": acct.key.hex(), "GRADIENT_ACCOUNT_ADDRESS": acct.address,
                       "GRADIENT_ALERT_URLS": urls})
    client = trading_client(cfg)
    adv = {c: 1e9 for c in COINS}
    kill_window = rng.randrange(windows) if rng.random() < P_KILL else None
    try:
        for w in range(windows):
            handle.advance(pd.Timedelta(hours=4))
            window = client.server_time().floor("4h") - pd.Timedelta(hours=4)
            targets = _targets(rng)
            with connect(db) as conn:
                halted_before = is_halted(conn)
            fills_before = {f.tid for f in client.fills_since()}
            restart = rng.choice(["before", "after"]) if rng.random() < P_RESTART else None
            if restart == "before":
                _restart(handle, rng, res)
            if rng.random() < P_THIN_BOOK:
                coin = rng.choice([None, *COINS])
                handle.thin_book(rng.uniform(0.002, 0.03), coin)
                res.faults["thin_book"] += 1
            long_writer = (rng.random() < P_SHOCK * P_LONG_WRITER and not halted_before and kill_window != w
                           and bool(client.account_state().positions))
            stop_checked = False
            if kill_window == w:
                result = _killed_then_resumed(sim, cfg, client, db, window, targets, adv, rng, res)
            elif long_writer:
                result, viol = _long_writer_window(handle, cfg, client, db, window, targets, adv, res)
                res.violations += [f"window {w}: {v}" for v in viol]
                stop_checked = True
            else:
                if rng.random() < P_EXCHANGE_FAULT:
                    kind = rng.choice(EXCHANGE_FAULTS)
                    where = rng.choice(["order", "clearinghouseState"])
                    kw = {"action_type": "order"} if where == "order" else {"info_type": "clearinghouseState"}
                    handle.inject_fault(kind, count=rng.randint(1, 3), hang_seconds=HANG_S, **kw)
                    res.faults[kind] += 1
                result = Rebalancer(cfg, client, db).run(window, targets, adv)
            handle.clear_faults()
            if result.status == "failed" and not halted_before:  # the same window retries on the next run
                result = Rebalancer(cfg, client, db).run(window, targets, adv)
            handle.thin_book(1.0)
            if restart == "after":
                _restart(handle, rng, res)
            res.windows += 1
            res.violations += [f"window {w}: {v}" for v in
                               check_invariants(cfg, client, db, targets, result, halted_before, fills_before)]
            # the drawdown path: a shock that crosses the stop, sometimes
            if not stop_checked and not halted_before and rng.random() < P_SHOCK:
                if _shock_positions(handle, client):
                    res.faults["price_shock"] += 1
                    res.violations += [f"window {w}: {v}" for v in _drawdown_episode(cfg, client, db, handle)]
    except Exception as err:  # noqa: BLE001 - an exception is a violation of "terminal with a reason"
        res.violations.append(f"exception: {type(err).__name__}: {str(err)[:300]}")
    finally:
        handle.clear_faults()
        handle.thin_book(1.0)
        _close_positions(client if "client" in locals() else None)
        handle.clear_shocks()
    return res


def _close_positions(client) -> None:
    """Leave the account flat at the end of its schedule: every open position pays funding on every later clock
    move of the shared exchange. Reduce-only IOCs, a few tries; what is left is only a cost, not a violation."""
    from gradient_pipeline.monitoring.emergency import flatten_orders

    if client is None:
        return
    for round_no in range(3):
        try:
            state = client.account_state()
            if not state.positions:
                return
            client.bulk_orders(flatten_orders(state.positions, client.all_mids(), client.sz_decimals, 1000.0,
                                              "simulate-cleanup", round_no))
        except Exception:  # noqa: BLE001 - cleanup only
            pass


def _restart(handle, rng: random.Random, res: ScheduleResult) -> None:
    keep = rng.random() < 0.5
    handle.restart(keep_id_counters=keep)
    res.faults["exchange_restart"] += 1


def _shock_positions(handle, client) -> bool:
    """Shock every open position against its holder (longs ×0.15, shorts ×3): a drawdown of ~11-46% of capital
    for the simulation's books, mostly past the 20% stop. False if nothing is open."""
    state = client.account_state()
    for coin, p in state.positions.items():
        handle.price_shock(0.15 if p.szi > 0 else 3.0, coin)
    return bool(state.positions)


def _drawdown_episode(cfg, client, db: str, handle, at_stop=None) -> list[str]:
    """Tick the drawdown check up to K times; when it says stop, call `at_stop()` (if given), run the emergency
    stop and alert. Returns violations of invariant 6 (past the stop ⇒ a stop within K ticks and flat; no stop
    below it)."""
    from gradient_pipeline.book import connect
    from gradient_pipeline.monitoring import messages
    from gradient_pipeline.monitoring.alerts import raise_alert
    from gradient_pipeline.monitoring.drawdown_check import check_drawdown
    from gradient_pipeline.monitoring.emergency import emergency_stop

    out = []
    info = client.client  # the drawdown check's one account read per tick, through the same limited client
    stopped_at, d = None, None
    for tick in range(1, cfg.risk.drawdown_stop_ticks + 1):
        d = check_drawdown(cfg, db, client=info).decision
        if d.level == "stop":
            stopped_at = tick
            if at_stop is not None:
                at_stop()
            if d.drawdown_pct is not None and d.drawdown_pct < cfg.emergency_stop_drawdown_pct:
                out.append(f"stop fired at {d.drawdown_pct:.1f}%, below the stop level")
            report = emergency_stop(cfg, db, f"simulated drawdown {d.drawdown_pct:.1f}%", source="drawdown_sensor",
                                    trading=client, say=lambda m: None, lock_wait_s=0.5, second_lock_wait_s=30,
                                    sleep=_market_time_passes(handle, cfg))
            with connect(db) as conn:
                delivery = raise_alert(conn, messages.drawdown_stop(
                    d.drawdown_pct, d.equity, d.hwm, cfg.emergency_stop_drawdown_pct, report.summary()), cfg)
            if delivery.status not in ("sent", "duplicate"):
                out.append(f"stop alert {delivery.status} with a working destination")
            if not report.halted:
                out.append(f"emergency stop ended without the halt: {report.halt_note}")
            break
    if stopped_at is None and d is not None and d.drawdown_pct is not None \
            and d.drawdown_pct >= cfg.emergency_stop_drawdown_pct and d.level != "cannot_evaluate":
        out.append(f"drawdown {d.drawdown_pct:.1f}% past the stop but no stop within "
                   f"{cfg.risk.drawdown_stop_ticks} ticks")
    elif stopped_at is not None and client.account_state().positions:
        out.append("stop fired but the account is not flat")
    return out


def _market_time_passes(handle, cfg):
    """The emergency stop's backoff sleep: a real (short) sleep, and the replay clock moves on by what the
    production backoff would have slept (the simulation's backoff cap is ~600× shorter than the default). A
    deployment's clock never stands still: the book its own reduce-only IOCs emptied (a thin book after a shock)
    refills while it waits; on a frozen replay clock it never would, and the stop would retry forever."""
    import pandas as pd

    from gradient_pipeline.config import RiskConfig

    scale = RiskConfig.model_fields["flatten_backoff_max_s"].default / cfg.risk.flatten_backoff_max_s

    def sleep(seconds: float) -> None:
        time.sleep(seconds)
        handle.advance(pd.Timedelta(seconds=seconds * scale))

    return sleep


def _long_writer_window(handle, cfg, client, db, window, targets, adv, res: ScheduleResult):
    """The window's rebalance runs in a thread and hangs in its first order request (a `timeout` fault: not
    processed), holding the rebalance lock, while prices cross the stop and the drawdown ticks go on in this
    thread. The stop must fire within K ticks; the rebalance then must send nothing that adds risk."""
    from gradient_pipeline.execution.runner import Rebalancer
    from gradient_pipeline.venue.registry import open_venue as trading_client

    hang = 0.8
    slow_cfg = _config(handle.base_url, db, request_timeout_s=0.6)
    writer_client = trading_client(slow_cfg)
    handle.inject_fault("timeout", count=1, action_type="order", hang_seconds=hang)
    out: dict = {}

    def rebalance():
        try:
            out["result"] = Rebalancer(slow_cfg, writer_client, db).run(window, targets, adv)
        except BaseException as err:  # noqa: BLE001 - reported as a violation below
            out["error"] = err

    thread = threading.Thread(target=rebalance, name="simulated-long-rebalance", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while handle.exchange.faults.pending() and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.005)
    violations = []
    if thread.is_alive() and not handle.exchange.faults.pending():  # the rebalance hangs in its order request
        res.faults["long_writer"] += 1
        if _shock_positions(handle, client):
            res.faults["price_shock"] += 1
            alive: list[bool] = []
            violations += _drawdown_episode(cfg, client, db, handle, at_stop=lambda: alive.append(thread.is_alive()))
            if alive == [False]:  # the stop came too late to test anything: a slow machine, not a safety failure
                res.notes["long_writer_ended_first"] += 1
    thread.join(timeout=60)
    if "error" in out:
        violations.append(f"long rebalance raised {type(out['error']).__name__}: {out['error']}")
    handle.clear_faults()
    return out.get("result"), violations


CHILD = ("import sys; from gradient_pipeline.app.simulate import child_rebalance; "
         "child_rebalance(sys.argv[1])")


def child_rebalance(spec_path: str) -> None:
    """The rebalance process of a `kill_9` fault: one real `Rebalancer.run` (key and account from the
    environment, like any paper run), started by `_killed_then_resumed` and killed by it."""
    from gradient_pipeline.config import parse_config
    from gradient_pipeline.execution.runner import Rebalancer
    from gradient_pipeline.venue.registry import open_venue as trading_client

    spec = json.loads(Path(spec_path).read_text())
    cfg = parse_config(spec["config"])
    result = Rebalancer(cfg, trading_client(cfg), spec["db"]).run(spec["window"], spec["targets"], spec["adv"])
    print(result.summary(), flush=True)


def _killed_then_resumed(sim: _Sim, cfg, client, db, window, targets, adv, rng: random.Random,
                         res: ScheduleResult):
    """Run the window's rebalance in a child process, SIGKILL it while its order batch is at the exchange
    (`lost_response_timeout`: processed, unanswered; `timeout`: not processed), then resume the window here."""
    from gradient_pipeline.execution.runner import Rebalancer

    handle = sim.handle
    kind = rng.choice(["lost_response_timeout", "timeout"])
    slow = _config(handle.base_url, db, request_timeout_s=60.0)  # the child must still be waiting when killed
    spec = sim.workdir / f"kill-{res.index}.json"
    spec.write_text(json.dumps({"config": slow.model_dump(mode="json"), "db": db, "window": str(window),
                                "targets": targets, "adv": adv}))
    handle.inject_fault(kind, count=1, action_type="order", hang_seconds=120.0)
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(spec)], env=dict(os.environ),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while handle.exchange.faults.pending() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if child.poll() is None and not handle.exchange.faults.pending():
            time.sleep(0.05)  # the batch is inside the exchange (its handler runs under the exchange's lock)
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
            res.faults["kill_9"] += 1
        elif child.poll() is None:
            res.violations.append("kill_9: the child rebalance never reached its order batch within 90 s")
        else:
            res.notes["kill_9_child_finished_first"] += 1  # nothing to send: the window was already at target
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
        handle.clear_faults()
    return Rebalancer(cfg, client, db).run(window, targets, adv)


interrupted = threading.Event()  # set by SIGINT/SIGTERM in the main thread: stop after the running schedule


def _stop_after_this_schedule(signum, frame) -> None:
    interrupted.set()


def _run_block(seed: int, windows: int, indices, on_result=None) -> list[ScheduleResult]:
    """Run the schedules `indices` in this process: one exchange, one alert receiver, one book (see `_Sim`). Stops
    after the running schedule once `interrupted` is set. The process environment is restored afterwards."""
    from types import SimpleNamespace

    saved = {k: os.environ.get(k) for k in ENV_KEYS}
    for k in ("GRADIENT_BOOK_URL", "GRADIENT_CONFIG", "GRADIENT_DUCKDB_PATH"):
        os.environ.pop(k, None)  # each schedule's book is the SQLite file beside its own DuckDB path
    shm = Path("/dev/shm")
    workdir = Path(tempfile.mkdtemp(prefix="gradient-simulate-", dir=shm if shm.is_dir() else None))
    receiver = SimpleNamespace()
    _quiet_receiver(receiver)
    results: list[ScheduleResult] = []
    sim = None
    try:
        sim = _Sim(workdir, receiver.url)
        for i in indices:
            if interrupted.is_set():
                break
            results.append(run_schedule(sim, i, schedule_seed(seed, i), windows))
            if on_result is not None:
                on_result(results[-1])
    finally:
        if sim is not None:
            sim.stop()
        receiver.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return results


def _worker_block(seed: int, windows: int, indices: list[int]) -> list[ScheduleResult]:
    """A `--jobs` worker process's share: a block of schedules (SIGINT/SIGTERM end it after the running one)."""
    import logging

    logging.disable(logging.CRITICAL)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stop_after_this_schedule)
    return _run_block(seed, windows, indices)


class _Tally:
    """The running totals, the progress lines and the failing schedules (in the order they finish)."""

    def __init__(self, say, progress_every: int):
        self.say, self.progress_every = say, progress_every
        self.t0 = time.monotonic()
        self.done = self.windows = self.violations = 0
        self.faults: Counter = Counter()
        self.notes: Counter = Counter()
        self.failing: list[ScheduleResult] = []

    def add(self, r: ScheduleResult) -> None:
        self.done += 1
        self.windows += r.windows
        self.violations += len(r.violations)
        self.faults.update(r.faults)
        self.notes.update(r.notes)
        if r.violations:
            self.failing.append(r)
            self.say(f"schedule {r.index} (seed {r.seed}): " + "; ".join(r.violations[:3]))
        if self.progress_every and self.done % self.progress_every == 0:
            rate = self.done / ((time.monotonic() - self.t0) / 60)
            self.say(f"... {self.done} schedules, {self.windows} windows, {sum(self.faults.values())} faults "
                     f"injected, {self.violations} violations ({rate:.1f} schedules/min)")


def simulate(schedules: int, seed: int, windows: int = 3, only: int | None = None, say=print,
             progress_every: int = 0, jobs: int = 1) -> int:
    """Run the schedules; print the summary line, the fault kinds and the rate, and per failing schedule the
    replay command. Returns the number of violations. `progress_every` > 0: a running tally every that many
    schedules (long bench runs). `jobs` > 1: that many worker processes, each with its own exchange and book,
    take blocks of schedules (a schedule's outcome depends only on its seed and index, not on who runs it)."""
    interrupted.clear()
    handlers = {}
    if threading.current_thread() is threading.main_thread():  # Ctrl-C ends with the tally of finished schedules
        handlers = {sig: signal.signal(sig, _stop_after_this_schedule) for sig in (signal.SIGINT, signal.SIGTERM)}
    tally = _Tally(say, progress_every)
    try:
        if only is not None or jobs <= 1:
            _run_block(seed, windows, [only] if only is not None else range(schedules), on_result=tally.add)
        else:
            _run_in_workers(schedules, seed, windows, jobs, tally)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    minutes = (time.monotonic() - tally.t0) / 60
    n = tally.done
    if n < (1 if only is not None else schedules):
        say(f"INTERRUPTED after {n} of {schedules} schedules (SIGINT/SIGTERM): the figures below cover those")
    say(f"{n} schedules, {tally.windows} windows, {sum(tally.faults.values())} faults injected, "
        f"{tally.violations} violations")
    say(f"fault kinds: {json.dumps(dict(sorted(tally.faults.items())))}; "
        f"{n / minutes if minutes else 0:.1f} schedules/min")
    if tally.notes:
        say(f"notes: {json.dumps(dict(sorted(tally.notes.items())))}")
    for r in sorted(tally.failing, key=lambda r: r.index):
        say(f"schedule {r.index} (seed {r.seed}): " + "; ".join(r.violations[:3]))
        say(f"  replay: gradient-pipeline simulate --seed {seed} --schedule {r.index} --windows {windows}")
    return tally.violations


WORKER_BLOCK = 50  # at most, schedules per task: the exchange start and book migration a block pays (~1 s) stay a
                   # few per cent; small runs get smaller blocks (about four per worker) to keep every worker busy


def _run_in_workers(schedules: int, seed: int, windows: int, jobs: int, tally: _Tally) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    size = max(1, min(WORKER_BLOCK, -(-schedules // (4 * jobs))))
    blocks = [list(range(a, min(a + size, schedules))) for a in range(0, schedules, size)]
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending = [pool.submit(_worker_block, seed, windows, b) for b in blocks]
        for done in as_completed(pending):
            for r in done.result():
                tally.add(r)
            if interrupted.is_set():  # the workers stop after their running schedule (they got the signal too)
                for f in pending:
                    f.cancel()


def _quiet_receiver(receiver) -> None:
    """A local JSON webhook that keeps alerts without printing them (the drill's receiver prints each)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    receiver.received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            receiver.received.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    receiver.server = server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.stop = lambda: (server.shutdown(), server.server_close())
    threading.Thread(target=receiver.server.serve_forever, daemon=True).start()
    receiver.url = f"json://127.0.0.1:{receiver.server.server_address[1]}/simulate"
