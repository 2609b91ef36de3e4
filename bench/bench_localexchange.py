"""Benchmark: local exchange start-up over the full recorded data and /info latency per request type.

Starts `run_in_background` over all 186 perps in the shared freqtrade data (no coin subset), then times each
market-data request through the real SDK client over HTTP on 127.0.0.1: the first (cold: lazy 1h/funding file
reads) and the median of `--repeat` warm calls. The rate limit is raised so the benchmark measures the service,
not the budget.

    uv run python bench/bench_localexchange.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from hyperliquid.info import Info

from gradient_pipeline.localexchange.server import run_in_background

DATA = Path(os.environ.get("GRADIENT_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared")) / (
    "data/hyperliquid-freqtrade/user_data/data/hyperliquid/futures")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--start-time", default="2025-07-01 00:30")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    t0 = time.perf_counter()
    ex = run_in_background(args.data, args.start_time, rate_limit_per_minute=10**9)
    start_s = time.perf_counter() - t0
    with ex:
        info = Info(ex.base_url, skip_ws=True, spot_meta={"universe": [], "tokens": []}, timeout=30)
        now = ex.now_ms()
        n_coins = len(info.meta()["universe"])
        requests = {
            "meta": lambda: info.meta(),
            "metaAndAssetCtxs": lambda: info.meta_and_asset_ctxs(),
            "allMids": lambda: info.all_mids(),
            "l2Book BTC": lambda: info.l2_snapshot("BTC"),
            "exchangeStatus": lambda: info.post("/info", {"type": "exchangeStatus"}),
            "candleSnapshot BTC 4h x5000": lambda: info.candles_snapshot("BTC", "4h", 0, now),
            "candleSnapshot BTC 4h x2": lambda: info.candles_snapshot("BTC", "4h", now - 4 * 3_600_000, now),
            "fundingHistory ETH x500": lambda: info.funding_history("ETH", now - 40 * 86_400_000),
        }
        print(f"start-up over every file in {args.data} ({n_coins} coins listed at {ex.now()}): {start_s:.2f} s "
              "(modules already imported)")
        print(f"{'request':32s} {'cold ms':>9s} {'warm median ms':>15s}")
        for name, call in requests.items():
            t = time.perf_counter()
            call()
            cold = time.perf_counter() - t
            warm = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                call()
                warm.append(time.perf_counter() - t)
            print(f"{name:32s} {cold * 1e3:9.1f} {statistics.median(warm) * 1e3:15.1f}")


if __name__ == "__main__":
    main()
