"""Benchmark: paper trading on the live market (`exchange serve --upstream`), offline.

A replaying local exchange plays the live upstream; a paper exchange takes its market from it. Prints:
1. the latency a client sees for market /info requests through the paper exchange (cold = fetched from the
   upstream, warm = served from the ~1 s cache) next to the upstream's own;
2. one rebalance of the project's runner on the paper exchange: wall time, and the requests and weight the paper
   exchange spent at the upstream for it (its own reads, client requests excluded);
3. the cost of persisting the account after a change (export + JSON + atomic write) as its fill history grows.

    uv run python bench/bench_paper_exchange.py [--quick]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time
from pathlib import Path

import eth_account
from hyperliquid.api import API

from gradient_pipeline.config import parse_config
from gradient_pipeline.execution.runner import Rebalancer
from gradient_pipeline.exchange.hyperliquid.factory import trading_client
from gradient_pipeline.localexchange.paper import run_paper_in_background
from gradient_pipeline.localexchange.server import run_in_background

DATA = Path(os.environ.get("GRADIENT_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared")) / (
    "data/hyperliquid-freqtrade/user_data/data/hyperliquid/futures")
START = "2025-03-01 00:05"
WINDOW = "2025-02-28 20:00"
COINS = ["BTC", "ETH", "SOL", "kPEPE", "DOGE", "AVAX", "LINK", "XRP", "SUI", "ADA", "LTC", "BNB"]


def timed(fn, repeat: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    fn()
    cold = time.perf_counter() - t0
    warm = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        warm.append(time.perf_counter() - t0)
    return cold * 1e3, statistics.median(warm) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and a smaller fill history")
    args = parser.parse_args()
    repeat = 5 if args.quick else 20
    histories = (100, 1000) if args.quick else (100, 1000, 5000)

    master, agent = eth_account.Account.create(), eth_account.Account.create()
    os.environ["GRADIENT_PRIVATE_KEY"] = agent.key.hex()
    os.environ["GRADIENT_ACCOUNT_ADDRESS"] = master.address
    tmp = Path(tempfile.mkdtemp(prefix="bench_paper_"))
    with run_in_background(DATA, START, coins=COINS, rate_limit_per_minute=10**9) as upstream, \
            run_paper_in_background(upstream.base_url, tmp / "state.json", accounts={master.address: 100_000.0},
                                    agents={agent.address: master.address}, rate_limit_per_minute=10**9) as paper:
        print(f"upstream: replaying {len(COINS)} perps at {START}; paper exchange on it; state {tmp / 'state.json'}")
        print("\n1. market /info latency, ms (cold = fetched from the upstream; warm = median of "
              f"{repeat}, mostly from the paper exchange's cache)")
        print(f"   {'request':<22}{'upstream warm':>14}{'paper cold':>12}{'paper warm':>12}")
        up, pp = API(upstream.base_url, timeout=30), API(paper.base_url, timeout=30)
        for name, body in [("meta", {"type": "meta"}), ("metaAndAssetCtxs", {"type": "metaAndAssetCtxs"}),
                           ("allMids", {"type": "allMids"}), ("l2Book BTC", {"type": "l2Book", "coin": "BTC"}),
                           ("candleSnapshot ETH 1h", {"type": "candleSnapshot", "req": {
                               "coin": "ETH", "interval": "1h", "startTime": 1740441600000}})]:
            _, up_warm = timed(lambda b=body: up.post("/info", b), repeat)
            cold, warm = timed(lambda b=body: pp.post("/info", b), repeat)
            print(f"   {name:<22}{up_warm:>14.1f}{cold:>12.1f}{warm:>12.1f}")

        n = len(COINS)
        targets = {c: (0.025 if i % 2 == 0 else -0.025) for i, c in enumerate(COINS)}
        cfg = parse_config({"mode": "paper", "exchange_base_url": paper.base_url,
                            "duckdb_path": str(tmp / "ledger.duckdb")})
        stats0 = paper.market.client.limiter.stats()
        t0 = time.perf_counter()
        result = Rebalancer(cfg, trading_client(cfg), cfg.duckdb_path).run(WINDOW, targets, {c: 5e8 for c in COINS})
        wall = time.perf_counter() - t0
        stats1 = paper.market.client.limiter.stats()
        print(f"\n2. one rebalance ({n} coins) on the paper exchange: {result.status} ({result.reason}), "
              f"{wall:.2f} s wall; the paper exchange's upstream reads (client requests included): "
              f"{stats1.requests - stats0.requests} requests, {stats1.weight_spent - stats0.weight_spent} weight")

        engine, store = paper.engine, paper.exchange.paper_store
        base = engine.export_state()
        acct = next(a for a in base["accounts"] if a["fills"])
        print("\n3. persisting the account after a change (median of "
              f"{repeat}): export_state + JSON + fsync'd atomic write")
        print(f"   {'fills held':>10}{'orders held':>12}{'file KiB':>10}{'export ms':>11}{'save ms':>9}")
        for size in histories:
            state = copy.deepcopy(base)
            a = next(x for x in state["accounts"] if x["address"] == acct["address"])
            a["fills"] = [dict(acct["fills"][i % len(acct["fills"])], tid=10**6 + i) for i in range(size)]
            order0 = acct["orders"][0]
            a["orders"] = [dict(order0, oid=10**6 + i, status="filled") for i in range(size)] + acct["orders"]
            with paper.exchange.lock:
                engine._engine.import_state(state)
                exports, saves = [], []
                for i in range(repeat):
                    t0 = time.perf_counter()
                    dumped = engine._engine.export_state()
                    t1 = time.perf_counter()
                    dumped["last_ms"] += i + 1  # a change, so it is written
                    store.save(dumped)
                    t2 = time.perf_counter()
                    exports.append(t1 - t0)
                    saves.append(t2 - t1)
            kib = store.path.stat().st_size / 1024
            print(f"   {size:>10}{size + len(acct['orders']):>12}{kib:>10.0f}"
                  f"{statistics.median(exports) * 1e3:>11.1f}{statistics.median(saves) * 1e3:>9.1f}")


if __name__ == "__main__":
    main()
