"""Benchmark: the 4h refresh of the newest complete window against the local exchange at the real per-IP budget.

Starts the local exchange over the shared recorded data with Hyperliquid's real budget (1200 weight/min per IP,
enforced by the exchange with HTTP 429) and drives the production path the way the window run does:

- `--mode steps` (default): the `candles` and `funding` asset steps' work (`HyperliquidSource.candles` /
  `.funding` for the newest window) in **two processes at once**, both spending the one budget through the
  machine-wide ledger (`exchange_rate.sqlite`, `rate_limit.shared_ledger`) — the case that used to give
  144–206 HTTP 429s per window run when each step throttled itself to 90 % of the same budget.
  `--no-shared-ledger` shows that old behaviour (each process its own budget).
- `--mode candles`: only one process fetching the newest candle of every coin (the original bench).

Prints wall time, Σ weight spent (all processes), the floor Σ weight ÷ budget (the fastest any client could go
on one IP at the steady rate), the ratio wall ÷ floor and the 429s seen. Also measures how soon after a 4h close
the exchange serves the closed candle (`--availability`, on by default; what `schedule.offset_minutes` rests on).

    uv run python bench/bench_refresh_window.py              # quick: 30 coins (~40 s)
    uv run python bench/bench_refresh_window.py --full       # all recorded perps (~3–4 min: the budget is the floor)
    uv run python bench/bench_refresh_window.py --full --no-shared-ledger   # the old per-process budgets
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("GRADIENT_SHARED_DIR", REPO.parent / "shared"))
DATA_DIR = SHARED / "data" / "hyperliquid-freqtrade" / "user_data" / "data" / "hyperliquid" / "futures"


def recorded_coins(data_dir: Path) -> list[str]:
    return sorted(p.name.split("_USDC_USDC-")[0] for p in data_dir.glob("*_USDC_USDC-4h-futures.feather"))


def _config(base_url: str, ledger: str | None, budget: int):
    from gradient_pipeline.config import parse_config

    rate = {"budget_per_minute": budget, "shared_ledger": ledger is not None}
    if ledger:
        rate["ledger_path"] = ledger
    return parse_config({"exchange_base_url": base_url, "rate_limit": rate})


def _step(kind: str, base_url: str, ledger: str | None, budget: int, ready, go, out) -> None:
    """One asset step's exchange work in its own process, as the multiprocess executor ran it."""
    import logging

    logging.disable(logging.WARNING)  # retry lines on 429 are counted, not printed
    from gradient_pipeline.marketdata.sources import HyperliquidSource
    from gradient_pipeline.timegrid import BAR

    src = HyperliquidSource(_config(base_url, ledger, budget))
    ready.set()
    go.wait()
    t0 = time.perf_counter()
    end = src.complete_window_end()
    start = end - BAR
    if kind == "candles":
        n = len(src.candles(start, end, set()).frame)
    elif kind == "funding":
        n = len(src.funding(start, end))
    else:  # a single-process candle loop
        n = len(src.candles(start, end, set()).frame)
    s = src.market.client.limiter.stats()
    out.put({"kind": kind, "rows": n, "wall": time.perf_counter() - t0, "weight": s.weight_spent,
             "requests": s.requests, "n429": s.rate_limited, "retries": s.retries,
             "wait": s.limiter_wait_s, "backoff": s.backoff_wait_s})


def availability(data_dir: Path, coin: str) -> float:
    """Seconds (exchange clock) after a 4h close until candleSnapshot returns that candle as closed."""
    from gradient_pipeline.config import RateLimitConfig
    from gradient_pipeline.exchange.hyperliquid import HyperliquidClient
    from gradient_pipeline.localexchange.server import run_in_background
    from gradient_pipeline.timegrid import BAR, floor_bar, to_ms

    close = pd.Timestamp("2025-07-25 20:00")
    with run_in_background(data_dir, str(close - pd.Timedelta(seconds=2)), speed=1.0, coins=[coin]) as ex:
        client = HyperliquidClient(ex.base_url, RateLimitConfig(), 5.0)
        info = client.info()
        while True:
            now = client.server_time()
            rows = info.candles_snapshot(coin, "4h", to_ms(close - BAR), to_ms(now))
            closed = [r for r in rows if r["t"] == to_ms(close - BAR) and r["T"] < to_ms(now)]
            if closed and floor_bar(now) >= close:
                return (now - close).total_seconds()
            time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--coins", type=int, default=30, help="first N recorded coins (default 30; --full: all)")
    ap.add_argument("--full", action="store_true", help="the full recorded universe (186 perps)")
    ap.add_argument("--mode", choices=("steps", "candles"), default="steps")
    ap.add_argument("--no-shared-ledger", action="store_true", help="each process its own budget (the old way)")
    ap.add_argument("--replay-time", default="2025-07-26 00:00:30", help="local exchange clock (UTC) at start")
    ap.add_argument("--budget", type=int, default=1200, help="weight per minute, for both server and client")
    ap.add_argument("--no-availability", action="store_true")
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR)
    args = ap.parse_args(argv)

    from gradient_pipeline.localexchange.server import run_in_background

    coins = recorded_coins(args.data_dir)
    if not coins:
        print(f"no recorded coins under {args.data_dir}", file=sys.stderr)
        return 2
    subset = None if args.full else coins[: args.coins]
    kinds = ["candles", "funding"] if args.mode == "steps" else ["candles-only"]
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp, \
            run_in_background(args.data_dir, args.replay_time, rate_limit_per_minute=args.budget, coins=subset) as ex:
        ledger = None if args.no_shared_ledger else str(Path(tmp) / "exchange_rate.sqlite")
        go, out = ctx.Event(), ctx.Queue()
        procs, readies = [], []
        for kind in kinds:
            ready = ctx.Event()
            p = ctx.Process(target=_step, args=(kind, ex.base_url, ledger, args.budget, ready, go, out))
            p.start()
            procs.append(p)
            readies.append(ready)
        for r in readies:
            r.wait(120)
        ex.reset_rate_limits()  # start from a full bucket, like a window run after a quiet 4h
        t0 = time.perf_counter()
        go.set()
        results = [out.get(timeout=1800) for _ in procs]
        wall = time.perf_counter() - t0
        for p in procs:
            p.join(30)
        listed = len(ex.market.coins())

    weight = sum(r["weight"] for r in results)
    floor = weight / args.budget * 60.0
    n429 = sum(r["n429"] for r in results)
    print(f"universe               {listed} perps listed at the replay time ({'full' if args.full else f'first {args.coins}'})")
    print(f"budget                 {args.budget}/min per IP; client: "
          f"{'one shared ledger for all processes' if ledger else 'each process its own budget (90%)'}")
    for r in results:
        print(f"  {r['kind']:<12} {r['rows']:6d} rows  {r['requests']:5d} requests  weight {r['weight']:6d}  "
              f"wall {r['wall']:6.1f} s  waited {r['wait']:6.1f} s  back-off {r['backoff']:5.1f} s  "
              f"429s {r['n429']}  retries {r['retries']}")
    print(f"refresh wall time      {wall:8.1f} s   ({' + '.join(kinds)} in parallel processes)")
    print(f"sum of weights         {weight:8d}")
    print(f"floor                  {floor:8.1f} s   (sum / {args.budget} per min)")
    print(f"ratio wall / floor     {wall / floor:8.3f}")
    print(f"HTTP 429s              {n429:8d}")
    if not args.no_availability:
        lag = availability(args.data_dir, coins[0])
        print(f"closed candle served   {lag:8.2f} s after the 4h close (exchange clock; default schedule offset 0 min)")
    return 0 if n429 == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
