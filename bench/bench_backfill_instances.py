"""Bench (a): one backfill run (`market_data_job`, every 4h window as ONE Dagster run) on the default SQLite Dagster
instance vs a PostgreSQL instance (dagster-postgres, the production storage): wall time, Dagster events and
events/s, and — with `--profile` — where the time goes.

    uv run python bench/bench_backfill_instances.py [--coins 186] [--months 0] [--instance sqlite|postgres|both]
        [--profile] [--pg-url postgresql://postgres@127.0.0.1:5432/test]

`--coins N` takes the first N perps (alphabetically) of the shared freqtrade directory, `--months M` only the last
M months before its newest complete window (0 = the full history 2023-02 → 2025-07, ~29 min on SQLite when the
machine is idle). The data path (DuckDB) is the same in both runs; what differs is where Dagster writes its
per-window events (a planned and a materialisation event per window per asset). The PostgreSQL database is
created and dropped by the bench. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data" / "hyperliquid-freqtrade" / "user_data" / "data" / "hyperliquid" / "futures"


def subset_dir(coins: int, work: Path) -> Path:
    names = sorted({p.name.split("_USDC")[0] for p in SHARED.glob("*_USDC_USDC-4h-futures.feather")})[:coins]
    out = work / "futures"
    out.mkdir(parents=True)
    for p in SHARED.iterdir():
        if p.name.split("_USDC")[0] in names:
            (out / p.name).symlink_to(p)
    return out


def instance_yaml(kind: str, home: Path, pg_db: str | None, pg_url) -> None:
    home.mkdir(parents=True)
    text = (ROOT / "dagster.yaml").read_text()
    if kind == "postgres":
        text += (f"\nstorage:\n  postgres:\n    postgres_db:\n      hostname: {pg_url.host}\n"
                 f"      username: {pg_url.username}\n      password: '{pg_url.password or ''}'\n"
                 f"      db_name: {pg_db}\n      port: {pg_url.port or 5432}\n")
    (home / "dagster.yaml").write_text(text)


def run(kind: str, path: Path, months: int, work: Path, pg_db: str | None, pg_url, profile: bool) -> dict:
    import dagster as dg
    import pandas as pd

    from gradient_pipeline.config import parse_config
    from gradient_pipeline.defs.market_data.backfill import plan_backfill, run_backfill, summarize
    from gradient_pipeline.defs.resources import GradientResource
    from gradient_pipeline.definitions import defs
    from gradient_pipeline.marketdata.sources import FreqtradeSource

    cfg_path = work / f"{kind}.json"
    cfg_path.write_text(json.dumps({"data": {"source": "freqtrade", "freqtrade_dir": str(path)}}))
    end = FreqtradeSource(path).complete_window_end()
    start = "2023-01-01" if months <= 0 else str(pd.Timestamp(end) - pd.DateOffset(months=months))
    plan = plan_backfill(parse_config(json.loads(cfg_path.read_text())), start, None, "freqtrade", str(path))
    resources = {"gradient": GradientResource(config_path=str(cfg_path), duckdb_path=str(work / f"{kind}.duckdb"))}
    home = work / f"home_{kind}"
    instance_yaml(kind, home, pg_db, pg_url)
    prof = cProfile.Profile() if profile else None
    with dg.DagsterInstance.from_config(str(home)) as instance:
        t0 = time.perf_counter()
        if prof:
            prof.enable()
        result = run_backfill(defs, plan, instance, "freqtrade", str(path), resources=resources)
        if prof:
            prof.disable()
        wall = time.perf_counter() - t0
        n_events = len(instance.all_logs(result.run_id))
    out = {"kind": kind, "windows": plan.windows, "first": plan.first_key, "last": plan.last_key, "wall_s": wall,
           "events": n_events, "success": summarize(result)["success"]}
    if prof:
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(18)
        out["profile"] = s.getvalue()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--coins", type=int, default=186)
    ap.add_argument("--months", type=int, default=0)
    ap.add_argument("--instance", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    os.environ["TZ"] = "UTC"
    import logging

    logging.getLogger("dagster").setLevel(logging.WARNING)
    import sqlalchemy as sa

    pg_url = sa.engine.make_url(args.pg_url).set(drivername="postgresql+psycopg")
    kinds = ["sqlite", "postgres"] if args.instance == "both" else [args.instance]
    with tempfile.TemporaryDirectory(prefix="bench_backfill_") as d:
        work = Path(d)
        path = subset_dir(args.coins, work)
        for kind in kinds:
            pg_db = None
            admin = None
            if kind == "postgres":
                pg_db = f"gradient_bench_{uuid.uuid4().hex[:8]}"
                admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
                with admin.connect() as c:
                    c.exec_driver_sql(f'CREATE DATABASE "{pg_db}"')
            try:
                r = run(kind, path, args.months, work, pg_db, pg_url, args.profile)
            finally:
                if admin is not None:
                    with admin.connect() as c:
                        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)')
            print(f"[{kind} instance] {args.coins} coins, {r['windows']} windows {r['first']} … {r['last']}: "
                  f"success={r['success']}")
            print(f"  wall {r['wall_s']:.1f} s; {r['events']:,} Dagster events → {r['events'] / r['wall_s']:,.0f} "
                  f"events/s; {r['wall_s'] / max(r['windows'], 1) * 1000:.1f} ms per window")
            if "profile" in r:
                print(r["profile"])
            sys.stdout.flush()
            shutil.rmtree(work / f"home_{kind}", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
