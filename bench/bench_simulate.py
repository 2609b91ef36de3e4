"""Bench: the seeded fault-schedule simulation's throughput and its summary line.

    uv run python bench/bench_simulate.py [SCHEDULES=2000] [--seed 7] [--windows 3] [--progress 100] [--jobs N]

Runs `gradient-pipeline simulate` in-process (one local exchange, 4 coins, one account per schedule, every fault
kind of app/simulate.py drawn from each schedule's seed) and prints the summary line
`N schedules, W windows, F faults injected, V violations`, the count per fault kind, schedules per minute, and a
replay command per failing schedule. `--progress K` prints a running tally every K schedules. `--jobs N` (default:
the CPU count) runs N worker processes, each with its own exchange and book.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("schedules", type=int, nargs="?", default=2000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--windows", type=int, default=3)
    ap.add_argument("--progress", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    logging.disable(logging.CRITICAL)
    from gradient_pipeline.app.simulate import simulate

    done = [args.schedules]

    def say(line: str) -> None:
        m = re.match(r"(\d+) schedules, ", line)
        if m:  # the summary line: how many schedules finished (fewer after Ctrl-C)
            done[0] = int(m[1])
        print(line, flush=True)

    t0 = time.monotonic()
    violations = simulate(args.schedules, args.seed, args.windows, progress_every=args.progress, say=say,
                          jobs=args.jobs)
    wall = time.monotonic() - t0
    print(f"bench_simulate: {done[0]} schedules × {args.windows} windows in {wall:.1f} s wall = "
          f"{done[0] / wall * 60:.1f} schedules/min with {args.jobs} worker process(es) on {os.cpu_count()} CPUs, "
          f"{violations} violations (seed {args.seed})")


if __name__ == "__main__":
    main()
