"""Bench: one rebalance of ~100 orders against the local exchange, vs an empty Dagster job on the same machine.

    uv run python bench/bench_rebalance.py [--coins 100] [--repeat 3]

Prints the wall time of `Rebalancer.run` (reconcile, plan, risk, leverage, one batched IOC round, fills, ledger)
for ~100 orders through the real SDK (signing included) on 127.0.0.1, the wall time of an empty one-op Dagster
job (`execute_in_process`, ephemeral instance), and their ratio. Each repeat uses a fresh account and ledger.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FREQTRADE = ROOT.parent / "shared/data/hyperliquid-freqtrade/user_data/data/hyperliquid/futures"
START = "2025-03-01 00:05"
WINDOW = "2025-02-28 20:00"


def empty_job_seconds(repeat: int) -> list[float]:
    import dagster as dg

    @dg.op
    def noop():
        return None

    @dg.job
    def empty_job():
        noop()

    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    empty_job.execute_in_process(run_config=quiet)  # warm imports
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        empty_job.execute_in_process(run_config=quiet)
        out.append(time.perf_counter() - t)
    return out


def rebalance_seconds(n_coins: int, repeat: int) -> tuple[list[float], int]:
    import eth_account

    from gradient_pipeline.config import parse_config
    from gradient_pipeline.execution.runner import Rebalancer
    from gradient_pipeline.exchange.hyperliquid.factory import trading_client
    from gradient_pipeline.localexchange.server import run_in_background

    coins = sorted({p.name.split("_")[0] for p in FREQTRADE.glob("*_USDC_USDC-4h-futures.feather")})
    times, n_orders = [], 0
    for _ in range(repeat):
        master, agent = eth_account.Account.create(), eth_account.Account.create()
        handle = run_in_background(FREQTRADE, START, accounts={master.address: 100_000.0},
                                   agents={agent.address: master.address}, rate_limit_per_minute=1_000_000)
        try:
            os.environ["GRADIENT_PRIVATE_KEY"] = agent.key.hex()
            os.environ["GRADIENT_ACCOUNT_ADDRESS"] = master.address
            with tempfile.TemporaryDirectory() as tmp:
                cfg = parse_config({"mode": "paper", "exchange_base_url": handle.base_url,
                                    "duckdb_path": f"{tmp}/bench.duckdb",
                                    "rate_limit": {"budget_per_minute": 1_000_000}})
                client = trading_client(cfg)
                mids = client.all_mids()
                instruments = client.instruments()
                tradable = [c for c in coins if c in mids and c in instruments
                            and not instruments[c].delisted][:n_coins]
                half = len(tradable) // 2
                w = 0.30 / half  # 30% gross per side, market neutral, under every risk cap
                targets = {c: (w if i < half else -w) for i, c in enumerate(tradable[: 2 * half])}
                adv = {c: 1e10 for c in targets}
                t = time.perf_counter()
                result = Rebalancer(cfg, client, cfg.duckdb_path).run(WINDOW, targets, adv)
                times.append(time.perf_counter() - t)
                n_orders = result.orders_sent
                if result.status != "complete":
                    print(f"warning: rebalance {result.status}: {result.reason}", file=sys.stderr)
        finally:
            handle.stop()
    return times, n_orders


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--coins", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    empty = empty_job_seconds(args.repeat)
    reb, n = rebalance_seconds(args.coins, args.repeat)
    e, r = statistics.median(empty), statistics.median(reb)
    print(f"empty Dagster job (execute_in_process): median {e:.3f}s over {args.repeat} ({', '.join(f'{x:.3f}' for x in empty)})")
    print(f"rebalance of {n} orders on the local exchange: median {r:.3f}s over {args.repeat} "
          f"({', '.join(f'{x:.3f}' for x in reb)})")
    print(f"ratio rebalance / empty job: {r / e:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
