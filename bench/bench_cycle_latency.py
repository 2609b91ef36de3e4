"""Benchmark: one real trading cycle at the full universe — window close → first order acknowledged, by phase.

What runs is what a deployment runs (docs/GRADIENT_LIVE_OPERATIONS.md, paper phase), nothing in-process-faked:

1. a local exchange over the shared recording, **every recorded perp listed** (176 at the replay time), Hyperliquid's
   real per-IP budget (1,200 weight/min, HTTP 429 beyond it), a funded paper account and its agent;
2. `gradient-pipeline warm-up` of the history (from the recording's freqtrade directory, `--days` of it: latency
   does not depend on how long the history is), recorded in the Dagster instance as the recipe does;
3. `dagster-daemon run` with `trading_cycle_schedule` (cron every minute here, so the tick lands at the close),
   and `rebalance_after_window` started with the `dagster` CLI;
4. the exchange clock **aligned with the wall clock** (speed 1) so a 4h window closes one second before a
   scheduler tick; the daemon's schedule launches the window run (in-process executor: candles, universe → returns
   → scores → targets with their checks), the sensor launches the rebalance, the rebalance sends the orders;
   the funding refresh follows in its own run at low priority.

Printed: the latency breakdown the rebalance recorded (`executed_orders` metadata, the book's `cycle_latency`), the
refresh's weight and its ratio to the floor (Σ weight ÷ budget), the HTTP 429s the exchange answered (counted on
the exchange side, every process), and when the funding refresh ran relative to the rebalance.

    uv run python bench/bench_cycle_latency.py                 # full universe (~10–15 min on a 2-core box)
    uv run python bench/bench_cycle_latency.py --coins 20      # a quick look (first 20 recorded coins)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("GRADIENT_SHARED_DIR", REPO.parent / "shared"))
DATA_DIR = SHARED / "data" / "hyperliquid-freqtrade" / "user_data" / "data" / "hyperliquid" / "futures"
WINDOW = "2025-07-25-16:00"  # the traded window: closes 2025-07-25 20:00 on the exchange clock
BUDGET = 1200


def recorded_coins(data_dir: Path) -> list[str]:
    return sorted(p.name.split("_USDC_USDC-")[0] for p in data_dir.glob("*_USDC_USDC-4h-futures.feather"))


def _counting_limiter(budget: float):
    """The local exchange's own limiter, also noting every request's weight and every 429 (all clients, all
    processes: the exchange is where the per-IP budget is enforced)."""
    from gradient_pipeline.localexchange.ratelimit import WeightLimiter

    class Counting(WeightLimiter):
        def __init__(self, budget_per_minute):
            super().__init__(budget_per_minute)
            self.events: list[tuple[float, int, bool]] = []  # (wall time, weight, admitted)
            self._events_lock = threading.Lock()

        def try_acquire(self, ip, weight):
            ok = super().try_acquire(ip, weight)
            with self._events_lock:
                self.events.append((time.time(), int(weight), ok))
            return ok

        def charge(self, ip, weight):
            super().charge(ip, weight)
            if weight > 0:
                with self._events_lock:
                    self.events.append((time.time(), int(weight), True))

    return Counting(budget)


def _run(cmd: list[str], env: dict, timeout: float = 1800) -> str:
    out = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out.stdout


def _wait(what: str, cond, timeout: float, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(every)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--coins", type=int, default=0, help="first N recorded coins (default: all)")
    ap.add_argument("--days", type=float, default=10.0, help="days of history to warm up (default 10)")
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR)
    ap.add_argument("--keep", action="store_true", help="keep the working directory (Dagster home, logs)")
    args = ap.parse_args(argv)

    import dagster as dg
    import eth_account
    from dagster._core.instance.ref import InstanceRef

    from gradient_pipeline.defs.execution.latency import PHASES
    from gradient_pipeline.localexchange.server import run_in_background
    from gradient_pipeline.timegrid import BAR, parse_partition_key

    coins = recorded_coins(args.data_dir)
    if not coins:
        print(f"no recorded coins under {args.data_dir}", file=sys.stderr)
        return 2
    subset = coins[: args.coins] if args.coins else None
    window = parse_partition_key(WINDOW)
    close = window + BAR
    work = Path(tempfile.mkdtemp(prefix="bench_cycle_"))
    master, agent = eth_account.Account.create(), eth_account.Account.create()
    ex = run_in_background(args.data_dir, str(close - pd.Timedelta(minutes=10)), speed=0.0,
                           accounts={master.address: 10_000.0}, agents={agent.address: master.address},
                           rate_limit_per_minute=BUDGET, coins=subset)
    limiter = _counting_limiter(BUDGET)
    ex.exchange.limiter = limiter
    daemon = log = None
    try:
        listed = len(ex.market.coins())
        db = str(work / "gradient.duckdb")
        cfg_path = work / "gradient_paper.json"
        cfg_path.write_text(json.dumps({
            "mode": "paper", "exchange_base_url": ex.base_url, "duckdb_path": db, "capital_usd": 10_000.0,
            "data": {"source": "hyperliquid"},
            "schedule": {"cron": "* * * * *"},  # a tick every minute: the one after the aligned close trades
        }))
        home = work / "dh"
        home.mkdir()
        shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADIENT_", "DAGSTER_"))}
        env.update({"DAGSTER_HOME": str(home), "GRADIENT_CONFIG": str(cfg_path), "TZ": "UTC",
                    "GRADIENT_ACCOUNT_ADDRESS": master.address, "GRADIENT_PRIVATE_KEY": agent.key.hex(),
                    # a loaded host can take over Dagster's default 60 s to answer a code-server call (the run
                    # coordinator then fails the dequeued run): allow more, as the operations manual says
                    "DAGSTER_GRPC_TIMEOUT_SECONDS": os.environ.get("DAGSTER_GRPC_TIMEOUT_SECONDS", "300")})
        cli = [sys.executable, "-m", "gradient_pipeline.cli"]
        bindir = Path(sys.executable).parent
        start = window - pd.Timedelta(days=args.days)
        t = time.monotonic()
        _run([*cli, "warm-up", "--source", "freqtrade", "--path", str(args.data_dir), "--start", str(start),
              "--end", str(window)], env)
        print(f"universe               {listed} recorded perps served "
              f"({'all recorded' if subset is None else f'first {len(subset)}'}); warm-up {args.days:g} days "
              f"in {time.monotonic() - t:.0f} s")

        log = open(work / "daemon.log", "w")
        daemon = subprocess.Popen([str(bindir / "dagster-daemon"), "run", "-w", "workspace.yaml"], env=env, cwd=REPO,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        for kind, name in (("schedule", "trading_cycle_schedule"), ("sensor", "rebalance_after_window")):
            _run([str(bindir / "dagster"), kind, "start", name, "-w", "workspace.yaml"], env)
        # Align: the window closes (exchange clock) one second before the next wall-clock minute, speed 1.
        now = time.time()
        tick = (int(now // 60) + 1) * 60
        if tick - now < 25:  # leave the daemon time to settle
            tick += 60
        ex.set_time(close - pd.Timedelta(seconds=tick - 1 - time.time()), speed=1.0)
        ex.reset_rate_limits()  # a quiet 4h before the close: a full bucket
        close_wall = tick - 1
        print(f"window                 {WINDOW} closes at wall {pd.Timestamp(close_wall, unit='s'):%H:%M:%S} UTC "
              "(exchange clock aligned, speed 1)")

        instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))

        def runs(job, **tags):
            return [r for r in instance.get_runs(filters=dg.RunsFilter(job_name=job, tags=tags))]

        done = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
        reb = _wait("the rebalance run to end", lambda: [r for r in runs("rebalance_job", **{"gradient/window": WINDOW})
                                                         if r.status in done], 1500)[0]
        win = runs("trading_window_job", **{"dagster/partition": WINDOW})[0]
        fund = _wait("the funding refresh to end", lambda: [r for r in runs("funding_refresh_job", **{
            "gradient/window": WINDOW}) if r.status in done], 900)[0]
        cmat = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=dg.AssetKey("candles"),
                                                                     asset_partitions=[WINDOW]), limit=1).records
        if cmat:
            cmd = cmat[0].asset_materialization.metadata
            print(f"window run             candles of {cmd['coins_covered'].value} listed perps "
                  f"({cmd['coins'].value} with a bar in the window)")
        print(f"runs                   window {win.status.value.lower()}, rebalance {reb.status.value.lower()}, "
              f"funding {fund.status.value.lower()}")
        rec = instance.fetch_materializations(dg.AssetKey("executed_orders"), limit=1).records
        md = {k: v.value for k, v in rec[0].asset_materialization.metadata.items()} if rec else {}
        print(f"rebalance              {md.get('status')}: {md.get('orders')} orders, {md.get('fills')} fills")
        print("latency (s)            " + "  ".join(f"{p}={md[f'latency/{p}_s']:.1f}" for p in PHASES
                                                     if f"latency/{p}_s" in md))
        total = md.get("latency/total_s")
        print(f"close → first ack      {total:8.1f} s   (budget 300 s; missing phases: {md.get('latency/missing')})")

        from gradient_pipeline.defs.execution.latency import run_timeline

        tl = run_timeline(instance, win.run_id)
        md_steps = [tl.steps[k] for k in ("candles", "universe") if k in tl.steps]
        r0, r1 = min(s for s, _ in md_steps), max(e for _, e in md_steps)
        ev = list(limiter.events)
        weight = sum(w for t, w, ok in ev if ok and r0 <= t <= r1)
        floor = weight / BUDGET * 60.0
        n429 = sum(1 for t, _, ok in ev if not ok and t >= close_wall - 5)
        ftl, rtl = run_timeline(instance, fund.run_id), run_timeline(instance, reb.run_id)
        f0 = min(s for s, _ in ftl.steps.values()) if ftl.steps else float("nan")
        f1 = max(e for _, e in ftl.steps.values() if e) if ftl.steps else float("nan")
        fweight = sum(w for t, w, ok in ev if ok and f0 <= t <= f1)
        print(f"refresh                {r1 - r0:8.1f} s   weight {weight} (every client on the IP), floor "
              f"{floor:.1f} s = weight / {BUDGET} per min, ratio {(r1 - r0) / floor:.3f}")
        print(f"funding refresh        started {f0 - rtl.created:+.1f} s after the rebalance run was created, "
              f"{f1 - f0:.1f} s, weight {fweight} (low priority, own run)")
        print(f"HTTP 429s              {n429:8d}   (answered by the exchange, all processes, close → end)")
        failed = [(r.job_name, r.run_id[:8]) for r in instance.get_runs() if r.status == dg.DagsterRunStatus.FAILURE]
        print(f"failed runs            {len(failed):8d}   {failed if failed else ''}")
        return 0 if (n429 == 0 and not failed and total is not None and total <= 300) else 1
    finally:
        if daemon is not None:
            os.killpg(daemon.pid, signal.SIGTERM)
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.pid, signal.SIGKILL)
        if log is not None:
            log.close()
        ex.stop()
        if args.keep:
            print(f"working directory      {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
