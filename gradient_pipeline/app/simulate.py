"""`gradient-pipeline simulate --schedules N --seed S`: seeded fault schedules against the real local exchange.

For each schedule (its own seed, derived from S and its index), a fresh funded account and ledger run several
consecutive 4h windows of the real rebalance path (`execution.runner.Rebalancer`) and the real drawdown path
(`monitoring.drawdown_check.check_drawdown` tick by tick, then `monitoring.emergency.emergency_stop` when it says
stop), with faults drawn from the schedule's seed and injected at the local exchange:

- exchange faults on the order batch or on account reads: 429, 500, 502, timeout, drop, lost_response,
  lost_response_drop, lost_response_timeout;
- price shocks that cross the stop level;
- a dead alert destination beside a working one.

After every window it checks the invariants (`check_invariants`):
1. no client order id was placed twice (each cloid maps to at most one exchange order id);
2. the ledger's fills equal the exchange's `userFills` (count, size, price, fee per trade id);
3. every rebalance is terminal (complete/partial/refused/failed) with a reason;
4. a `complete` rebalance holds its targets within rounding; any other status carries its reason;
5. while halted, no order that increases risk is sent (every rebalance refused, no new fills);
6. a drawdown past the stop ⇒ flat within K (= `risk.drawdown_stop_ticks`) ticks.

One exchange serves every schedule (in-process, 4 coins, the bundled real-data extract): schedules differ by
account, ledger and seed, so nothing restarts between them. Not covered yet: kill -9 of the rebalance process,
local-exchange restarts, thin books, a long writer (see the report in the branch's history).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

COINS = ["BTC", "ETH", "SOL", "DOGE"]
START = "2024-11-01 00:05"
CAPITAL = 10_000.0
EXCHANGE_FAULTS = ("429", "500", "502", "timeout", "drop", "lost_response", "lost_response_drop",
                   "lost_response_timeout")
ENV_KEYS = ("GRADIENT_PRIVATE_KEY", "GRADIENT_ACCOUNT_ADDRESS", "GRADIENT_ALERT_URLS", "GRADIENT_CONFIG",
            "GRADIENT_DUCKDB_PATH")


def schedule_seed(seed: int, index: int) -> int:
    return int(hashlib.sha256(f"{seed}:{index}".encode()).hexdigest()[:12], 16)


@dataclasses.dataclass
class ScheduleResult:
    index: int
    seed: int
    windows: int = 0
    faults: Counter = dataclasses.field(default_factory=Counter)
    violations: list[str] = dataclasses.field(default_factory=list)


def _config(base_url: str, db_path: str):
    from gradient_pipeline.config import parse_config

    return parse_config({
        "mode": "paper", "exchange_base_url": base_url, "duckdb_path": db_path,
        "execution": {"max_attempts": 3},
        "rate_limit": {"request_timeout_s": 1.0, "max_retries": 2, "backoff_base_s": 0.01, "backoff_max_s": 0.05,
                       "budget_per_minute": 1_000_000},
        "risk": {"flatten_backoff_initial_s": 0.02, "flatten_backoff_max_s": 0.2, "flatten_deadline_s": 30,
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
        rebs = table_frame(conn, "rebalances")[["rebalance_id", "status", "reason"]]
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
    # 2. ledger fills == exchange fills
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
        cap = result.account_value or CAPITAL
        for coin, w in targets.items():
            held = state.positions[coin].szi * mids[coin] if coin in state.positions else 0.0
            if abs(held - w * (cap or CAPITAL)) > max(15.0, 0.02 * abs(w) * cap):
                out.append(f"complete but {coin} holds ${held:,.0f} vs target ${w * cap:,.0f}")
    # 5. halted: nothing that adds risk
    if halted_before:
        if result is not None and result.status != "refused":
            out.append(f"rebalance while halted ended {result.status}, not refused")
        new = [f for f in fills if f.tid not in fills_before]
        if any(not str(f.direction or "").startswith("Close") for f in new):
            out.append("a fill that opened or increased a position while halted")
    return out


def run_schedule(handle, index: int, seed: int, windows: int, workdir: Path, receiver_url: str) -> ScheduleResult:
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

    rng = random.Random(seed)
    res = ScheduleResult(index, seed)
    acct = eth_account.Account.from_key(hashlib.sha256(f"sim-key:{seed}".encode()).digest())
    handle.fund(acct.address, CAPITAL)
    db = str(workdir / f"schedule-{index}.duckdb")
    cfg = _config(handle.base_url, db)
    dead = rng.random() < 0.5
    urls = f"json://127.0.0.1:9/dead {receiver_url}" if dead else receiver_url
    if dead:
        res.faults["dead_alert_destination"] += 1
    os.environ.update({"GRADIENT_PRIVATE_KEY": acct.key.hex(), "GRADIENT_ACCOUNT_ADDRESS": acct.address,
                       "GRADIENT_ALERT_URLS": urls})
    client = trading_client(cfg)
    shocks: list[tuple[str, float]] = []
    try:
        for w in range(windows):
            handle.advance(pd.Timedelta(hours=4))
            window = client.server_time().floor("4h") - pd.Timedelta(hours=4)
            targets = _targets(rng)
            kind = rng.choice(EXCHANGE_FAULTS) if rng.random() < 0.6 else None
            if kind:
                where = rng.choice(["order", "clearinghouseState"])
                kw = {"action_type": "order"} if where == "order" else {"info_type": "clearinghouseState"}
                handle.inject_fault(kind, count=rng.randint(1, 3), hang_seconds=1.5, **kw)
                res.faults[kind] += 1
            with connect(db) as conn:
                halted_before = is_halted(conn)
            fills_before = {f.tid for f in client.fills_since()}
            result = Rebalancer(cfg, client, db).run(window, targets, {c: 1e9 for c in COINS})
            handle.clear_faults()
            if result.status in ("failed",) and not halted_before:  # the same window retries on the next run
                result = Rebalancer(cfg, client, db).run(window, targets, {c: 1e9 for c in COINS})
            res.windows += 1
            res.violations += [f"window {w}: {v}" for v in
                               check_invariants(cfg, client, db, targets, result, halted_before, fills_before)]
            # the drawdown path: a shock that crosses the stop, sometimes
            if not halted_before and rng.random() < 0.25:
                state = client.account_state()
                for coin, p in state.positions.items():
                    f = 0.3 if p.szi > 0 else 2.0
                    handle.price_shock(f, coin)
                    shocks.append((coin, f))
                res.faults["price_shock"] += 1
                stopped_at = None
                for tick in range(1, cfg.risk.drawdown_stop_ticks + 1):
                    d = check_drawdown(cfg, db).decision
                    if d.level == "stop":
                        stopped_at = tick
                        report = emergency_stop(cfg, db, f"simulated drawdown {d.drawdown_pct:.1f}%",
                                                source="drawdown_sensor", say=lambda m: None)
                        with connect(db) as conn:
                            delivery = raise_alert(conn, messages.drawdown_stop(
                                d.drawdown_pct, d.equity, d.hwm, cfg.emergency_stop_drawdown_pct, report.summary()),
                                cfg)
                        if delivery.status not in ("sent", "duplicate"):
                            res.violations.append(f"window {w}: stop alert {delivery.status} with a working "
                                                  "destination")
                        break
                flat = not client.account_state().positions
                if stopped_at is None and d.drawdown_pct is not None and d.drawdown_pct >= cfg.emergency_stop_drawdown_pct:
                    res.violations.append(f"window {w}: drawdown {d.drawdown_pct:.1f}% past the stop but no stop "
                                          f"within {cfg.risk.drawdown_stop_ticks} ticks")
                elif stopped_at is not None and not flat:
                    res.violations.append(f"window {w}: stop fired but the account is not flat")
    except Exception as err:  # noqa: BLE001 - an exception is a violation of "terminal with a reason"
        res.violations.append(f"exception: {type(err).__name__}: {str(err)[:300]}")
    finally:
        handle.clear_faults()
        for coin, f in reversed(shocks):
            handle.price_shock(1.0 / f, coin)
    return res


def simulate(schedules: int, seed: int, windows: int = 3, only: int | None = None, say=print) -> int:
    """Run the schedules; print the summary line and, per failing schedule, the replay command. Returns the
    number of violations."""
    from gradient_pipeline.demo_data import FUTURES_DIR
    from gradient_pipeline.localexchange.server import run_in_background
    from types import SimpleNamespace

    saved = {k: os.environ.get(k) for k in ENV_KEYS}
    workdir = Path(tempfile.mkdtemp(prefix="gradient-simulate-"))
    # the weight budget is not under test here (429s are injected as faults): lift it on both sides
    handle = run_in_background(FUTURES_DIR, START, coins=COINS, rate_limit_per_minute=1e9)
    receiver = SimpleNamespace()
    _quiet_receiver(receiver)
    t0 = time.monotonic()
    total_w = total_v = 0
    faults: Counter = Counter()
    failing: list[ScheduleResult] = []
    try:
        indices = [only] if only is not None else range(schedules)
        for i in indices:
            r = run_schedule(handle, i, schedule_seed(seed, i), windows, workdir, receiver.url)
            total_w += r.windows
            total_v += len(r.violations)
            faults.update(r.faults)
            if r.violations:
                failing.append(r)
    finally:
        receiver.stop()
        handle.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    minutes = (time.monotonic() - t0) / 60
    n = 1 if only is not None else schedules
    say(f"{n} schedules, {total_w} windows, {sum(faults.values())} faults injected, {total_v} violations")
    say(f"fault kinds: {json.dumps(dict(sorted(faults.items())))}; {n / minutes if minutes else 0:.1f} schedules/min")
    for r in failing:
        say(f"schedule {r.index} (seed {r.seed}): " + "; ".join(r.violations[:3]))
        say(f"  replay: gradient-pipeline simulate --seed {seed} --schedule {r.index} --windows {windows}")
    return total_v


def _quiet_receiver(receiver) -> None:
    """A local JSON webhook that keeps alerts without printing them (the drill's receiver prints each)."""
    import threading
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
