"""Bench: the seeded fault-schedule simulation's throughput (schedules per minute) and its summary line.

    uv run python bench/bench_simulate.py [--schedules 20] [--seed 7] [--windows 3] [--quick]

Runs `gradient-pipeline simulate` in-process (one local exchange, 4 coins, a fresh account and ledger per
schedule) and prints the summary line, the fault kinds injected and schedules per minute. `--quick`: 3 schedules.
"""

from __future__ import annotations

import argparse
import logging
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--schedules", type=int, default=20)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--windows", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 3 if args.quick else args.schedules
    logging.disable(logging.CRITICAL)
    from gradient_pipeline.app.simulate import simulate

    t0 = time.monotonic()
    violations = simulate(n, args.seed, args.windows)
    wall = time.monotonic() - t0
    print(f"bench_simulate: {n} schedules × {args.windows} windows in {wall:.1f} s wall "
          f"= {n / wall * 60:.1f} schedules/min, {violations} violations")


if __name__ == "__main__":
    main()
