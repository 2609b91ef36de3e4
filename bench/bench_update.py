"""Bench (c): cost of the 4h update (newest window only) with 1 month vs ~2.5 years of stored history.

    uv run python bench/bench_update.py [--source freqtrade|hyperliquid|both] [--repeat 5] [--coins 20]

Two DuckDB files under bench/out/update/ are filled with history up to (not including) the newest window of the
shared freqtrade data (2025-07-26 00:00): one month, and everything since 2023-01-01. History is written through
the same prepare → validate → replace_window path the assets use, but directly (no Dagster event per window) so
setting up takes seconds. Then the update — `candles`, `funding`, `universe` for the newest window, in-process
Dagster with an ephemeral instance — is run `--repeat` times on each file (it is idempotent) and the median wall
time, the asset-step time and the DuckDB-only time are printed with the ratio full/month. `hyperliquid` runs the
same against the local exchange (replay clock just after the newest window; `--coins` perps, limits raised so the
rate limiter doesn't dominate). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import statistics
import time
import warnings
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "update"
SHARED = ROOT.parent / "shared" / "data" / "hyperliquid-freqtrade" / "user_data" / "data" / "hyperliquid" / "futures"
NEWEST = pd.Timestamp("2025-07-26 00:00")
HISTORIES = {"1 month": NEWEST - pd.Timedelta(days=30), "2.5 years": pd.Timestamp("2023-01-01")}


def fill_history(db: Path, directory: Path, start: pd.Timestamp, end: pd.Timestamp, coins: list[str] | None) -> int:
    from gradient_pipeline.marketdata import schemas, tables
    from gradient_pipeline.marketdata.sources import FreqtradeSource
    from gradient_pipeline.marketdata.transform import build_universe, prepare_candles, prepare_funding
    from gradient_pipeline.storage.db import connect
    from gradient_pipeline.timegrid import BAR

    src = FreqtradeSource(directory)
    batch = src.candles(start, end)
    raw = batch.frame if coins is None else batch.frame[batch.frame["coin"].isin(coins)]
    rows, _ = prepare_candles(raw, "freqtrade", pd.Timestamp.now())
    rows = schemas.validate(rows, schemas.CANDLES)
    fund = prepare_funding(src.funding(start, end).frame)
    fund = schemas.validate(fund if coins is None else fund[fund["coin"].isin(coins)], schemas.FUNDING)
    windows = pd.date_range(start, end, freq=BAR, inclusive="left")
    uni = build_universe(windows, rows[["coin", "ts", "notional_usd"]], fund[["coin", "ts", "rate"]],
                         src.coin_info(), src.delisted(start, end))
    uni = schemas.validate(uni, schemas.UNIVERSE)
    with connect(db) as conn:
        tables.ensure(conn)
        tables.replace_window(conn, "candles", rows, start, end)
        tables.replace_window(conn, "funding", fund, start, end)
        tables.replace_window(conn, "universe", uni, start, end)
        conn.execute("CHECKPOINT")
    return len(rows)


def time_db_only(db: Path, frame: pd.DataFrame) -> float:
    """The DuckDB part of one candles update: previous-window lookups, lost-row and ingested_at comparison,
    per-coin window replace, 24h lookback read, and the gap check's query."""
    from gradient_pipeline.marketdata import tables
    from gradient_pipeline.storage.db import connect
    from gradient_pipeline.timegrid import BAR

    with connect(db) as conn:
        t0 = time.perf_counter()
        coins = set(frame["coin"])
        tables.coins_with_candle_in(conn, NEWEST - BAR, NEWEST)
        tables.closes_at(conn, NEWEST - BAR)
        tables.lost_rows(conn, "candles", frame, NEWEST, NEWEST + BAR, coins)
        rows = tables.keep_ingested_at(conn, frame, NEWEST, NEWEST + BAR)
        tables.replace_coins(conn, "candles", rows, NEWEST, NEWEST + BAR, coins)
        tables.read_candles(conn, NEWEST - pd.Timedelta(hours=20), NEWEST + BAR)
        tables.candle_gaps(conn, start=NEWEST, end=NEWEST + BAR)
        return time.perf_counter() - t0


def run_updates(res: dict, repeat: int) -> tuple[list[float], list[float]]:
    import dagster as dg

    from gradient_pipeline.defs.market_data.assets import candles, funding, universe
    from gradient_pipeline.timegrid import partition_key

    walls, steps = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = dg.materialize([candles, funding, universe], resources=res, partition_key=partition_key(NEWEST))
        walls.append(time.perf_counter() - t0)
        assert result.success
        steps.append(sum(e.event_specific_data.duration_ms for e in result.all_events
                         if e.event_type_value == "STEP_SUCCESS") / 1000)
    return walls, steps


def bench(source: str, repeat: int, n_coins: int) -> None:
    from gradient_pipeline.defs.resources import GradientResource
    from gradient_pipeline.marketdata import freqtrade as ft

    coins = None
    handle = None
    config: dict = {"data": {"source": "freqtrade", "freqtrade_dir": str(SHARED)}}
    if source == "hyperliquid":
        from gradient_pipeline.localexchange.server import run_in_background

        coins = [c for c in ft.list_coins(SHARED) if c in ("BTC", "ETH", "SOL")] + [
            c for c in ft.list_coins(SHARED) if c not in ("BTC", "ETH", "SOL")][: n_coins - 3]
        handle = run_in_background(SHARED, NEWEST + pd.Timedelta(hours=4, minutes=5), coins=coins,
                                   rate_limit_per_minute=10_000_000)
        config = {"mode": "paper", "exchange_base_url": handle.base_url, "data": {"source": "hyperliquid"},
                  "rate_limit": {"budget_per_minute": 10_000_000}}
    try:
        setups = {}
        for label, start in HISTORIES.items():
            work = OUT / source / label.replace(" ", "_")
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            (work / "config.json").write_text(json.dumps(config))
            db = work / "bench.duckdb"
            t0 = time.perf_counter()
            n = fill_history(db, SHARED, start, NEWEST, coins)
            res = {"gradient": GradientResource(config_path=str(work / "config.json"), duckdb_path=str(db))}
            setups[label] = (db, res, n, time.perf_counter() - t0)
        # Interleave the two histories so background load on a shared machine hits both alike.
        walls = {label: [] for label in HISTORIES}
        steps = {label: [] for label in HISTORIES}
        dbs = {label: [] for label in HISTORIES}
        for _ in range(repeat):
            for label, (db, res, _, _) in setups.items():
                w, st = run_updates(res, 1)
                walls[label] += w
                steps[label] += st
                import duckdb

                con = duckdb.connect(str(db), read_only=True)
                frame = con.execute("SELECT * FROM candles WHERE ts = ?", [NEWEST]).df()
                con.close()
                dbs[label].append(time_db_only(db, frame))
        results = {}
        for label, (_, _, n, setup) in setups.items():
            results[label] = (statistics.median(walls[label]), statistics.median(steps[label]),
                              statistics.median(dbs[label]))
            print(f"[{source}] history {label}: {n:,} candle rows stored (setup {setup:.1f} s); update of "
                  f"{NEWEST:%Y-%m-%d %H:%M}: wall median {results[label][0]:.2f} s, asset steps "
                  f"{results[label][1]:.2f} s, DuckDB part {results[label][2] * 1000:.1f} ms  "
                  f"(runs: {', '.join(f'{w:.2f}' for w in walls[label])})")
        (m_wall, m_step, m_db), (f_wall, f_step, f_db) = results.values()
        print(f"[{source}] ratio 2.5 years / 1 month: wall {f_wall / m_wall:.2f}×, asset steps {f_step / m_step:.2f}×, "
              f"DuckDB part {f_db / m_db:.2f}×")
    finally:
        if handle is not None:
            handle.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", choices=["freqtrade", "hyperliquid", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--coins", type=int, default=20, help="perps served by the local exchange (hyperliquid)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("dagster").setLevel(logging.WARNING)
    for source in (["freqtrade", "hyperliquid"] if args.source == "both" else [args.source]):
        bench(source, args.repeat, args.coins)


if __name__ == "__main__":
    main()
