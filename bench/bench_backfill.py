"""Bench (b): the whole shared freqtrade directory (186 perps, 2023-02 → 2025-07) backfilled in ONE Dagster run.

    uv run python bench/bench_backfill.py [--path DIR] [--instance direct|ephemeral|disk|both]

Runs `market_data_job` over every 4h window through `defs.market_data.backfill.run_backfill` (what
`gradient-pipeline backfill` does) into a fresh DuckDB file under bench/out/, and prints rows written, rows/s and
peak memory (ru_maxrss). `ephemeral` keeps Dagster's event log in memory (isolates the data path); `disk` uses a
SQLite DAGSTER_HOME under bench/out/ like a real install, where Dagster's per-window bookkeeping (a planned and a
materialisation event per window per asset) adds one SQLite commit each. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "backfill"
SHARED = ROOT.parent / "shared" / "data" / "hyperliquid-freqtrade" / "user_data" / "data" / "hyperliquid" / "futures"


def run(kind: str, path: Path) -> dict:
    import dagster as dg
    import duckdb

    from gradient_pipeline.config import parse_config
    from gradient_pipeline.defs.market_data.backfill import plan_backfill, run_backfill, summarize
    from gradient_pipeline.defs.resources import GradientResource
    from gradient_pipeline.definitions import defs

    work = OUT / kind
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    cfg_path = work / "config.json"
    cfg_path.write_text(json.dumps({"data": {"source": "freqtrade", "freqtrade_dir": str(path)}}))
    db = work / "bench.duckdb"
    plan = plan_backfill(parse_config(json.loads(cfg_path.read_text())), "2023-01-01", None, "freqtrade", str(path))
    resources = {"gradient": GradientResource(config_path=str(cfg_path), duckdb_path=str(db))}
    if kind == "disk":
        home = work / "dagster_home"
        home.mkdir()
        shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
        instance = dg.DagsterInstance.from_config(str(home))
    else:
        instance = dg.DagsterInstance.ephemeral()
    t0 = time.perf_counter()
    with instance:
        result = run_backfill(defs, plan, instance, "freqtrade", str(path), resources=resources)
    wall = time.perf_counter() - t0
    summary = summarize(result)
    steps = {}
    for ev in result.all_events:
        if ev.event_type_value == "STEP_SUCCESS":
            steps[ev.step_key] = ev.event_specific_data.duration_ms / 1000
    con = duckdb.connect(str(db), read_only=True)
    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("candles", "funding", "universe")}
    con.close()
    return {"kind": kind, "windows": plan.windows, "first": plan.first_key, "last": plan.last_key, "wall_s": wall,
            "success": summary["success"], "counts": counts, "steps_s": steps, "checks": summary["checks"]}


def run_direct(path: Path) -> None:
    """The data path alone (load → prepare → validate → one window-range replace per table), no Dagster events."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import duckdb
    import pandas as pd
    from bench_update import fill_history

    from gradient_pipeline.marketdata.sources import FreqtradeSource

    work = OUT / "direct"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    end = FreqtradeSource(path).complete_window_end()
    t0 = time.perf_counter()
    fill_history(work / "bench.duckdb", path, pd.Timestamp("2023-01-01"), end, None)
    wall = time.perf_counter() - t0
    con = duckdb.connect(str(work / "bench.duckdb"), read_only=True)
    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("candles", "funding", "universe")}
    con.close()
    total = sum(counts.values())
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"[data path only, no Dagster] rows {counts}: total {total:,} in {wall:.1f} s → {total / wall:,.0f} rows/s; "
          f"peak RSS {rss_mb:,.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--path", type=Path, default=SHARED)
    parser.add_argument("--instance", choices=["direct", "ephemeral", "disk", "both"], default="ephemeral",
                        help="direct: the data path without Dagster; both: ephemeral then disk")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    os.environ["TZ"] = "UTC"
    import logging

    logging.getLogger("dagster").setLevel(logging.WARNING)
    if args.instance == "direct":
        run_direct(args.path)
        return
    kinds = ["ephemeral", "disk"] if args.instance == "both" else [args.instance]
    for kind in kinds:
        r = run(kind, args.path)
        total = sum(r["counts"].values())
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
        print(f"[{kind} instance] {r['windows']} windows {r['first']} … {r['last']} in one run: success={r['success']}")
        print(f"  rows: candles {r['counts']['candles']:,}  funding {r['counts']['funding']:,}  "
              f"universe {r['counts']['universe']:,}  total {total:,}")
        print(f"  wall {r['wall_s']:.1f} s  →  {total / r['wall_s']:,.0f} rows/s "
              f"(candles alone {r['counts']['candles'] / r['wall_s']:,.0f} rows/s)")
        print("  step durations (s): " + ", ".join(f"{k} {v:.1f}" for k, v in r["steps_s"].items()))
        print(f"  checks: {r['checks']}")
        print(f"  peak RSS so far (ru_maxrss): {rss_mb:,.0f} MB")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
