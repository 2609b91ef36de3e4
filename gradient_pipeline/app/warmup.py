"""`gradient-pipeline warm-up`: the first step of a deployment — market data and signal assets for the history the
strategy needs, from the configured source, recorded in the project's Dagster instance, with a progress bar.

What it runs: `warm_up_job` (the window run's assets plus funding: candles, funding, universe → returns →
momentum_scores → target_weights, with their checks) as consecutive **range runs** of `--chunk-days` each (single-run backfill policy: one run per chunk,
each visible in the UI's Runs list). Chunks go oldest first because every signal window continues the EWMA state
stored by the window before it. The range ends at the source's newest complete window (by the exchange clock for
`hyperliquid`), so the schedule's first tick afterwards finds exactly one new window.

How much history: the longest momentum span plus the volatility warm-up plus the ADV bars
(`max(lookback_spans) + vol_span + adv_bars` 4h bars ≈ 191 days with the defaults) unless `--start` says otherwise.

Recording every window's events in the instance costs time on SQLite storage (≈ 1 s per window on a busy 2-core
box; the 191 days of the default history ≈ 20 min); `--no-record` runs the same jobs in a throw-away instance
(minutes), after which the schedule's first tick runs and trades the newest window as usual.

Console: Dagster's own DEBUG lines and beta notices stay off the console (they are all in the instance's event
log, visible in the UI); `-v` shows Dagster INFO, `-vv` DEBUG. Exit status 1 if a chunk's run fails (its failing
step is printed) — nothing after a failed chunk is run, because later windows would continue from missing state.
"""

from __future__ import annotations

import argparse
import contextlib
import warnings
from dataclasses import dataclass

import pandas as pd

from gradient_pipeline import runtags
from gradient_pipeline.timegrid import BAR, BAR_HOURS, parse_partition_key, partition_key, utc_naive

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
MARKET_DATA_OPS = ("candles", "funding", "universe")
LOG_LEVELS = {0: "CRITICAL", 1: "INFO", 2: "DEBUG"}


def quiet_dagster(verbosity: int = 0) -> dict:
    """Silence Dagster's developer notices and return run config for a console logger at the chosen level.

    Events still go to the instance's storage in full (loggers only decide what reaches the console)."""
    from dagster._utils.warnings import BetaWarning, PreviewWarning, SupersessionWarning

    if verbosity < 2:
        for category in (BetaWarning, PreviewWarning, SupersessionWarning):
            warnings.filterwarnings("ignore", category=category)
    level = LOG_LEVELS[min(max(verbosity, 0), 2)]
    return {"loggers": {"console": {"config": {"log_level": level}}}}


def history_bars(cfg) -> int:
    """4h bars of history the strategy needs before its first traded window."""
    return int(max(cfg.lookback_spans) + cfg.vol_span + cfg.adv_bars)


@dataclass(frozen=True)
class Chunk:
    first_key: str
    last_key: str
    windows: int


def plan_chunks(first: pd.Timestamp, last: pd.Timestamp, chunk_days: float) -> list[Chunk]:
    """Consecutive ranges of window opens covering [first, last] (inclusive), oldest first."""
    if last < first:
        return []
    per = max(1, int(pd.Timedelta(days=chunk_days) / BAR))
    opens = pd.date_range(first, last, freq=BAR)
    return [Chunk(partition_key(opens[i]), partition_key(opens[min(i + per, len(opens)) - 1]),
                  min(per, len(opens) - i)) for i in range(0, len(opens), per)]


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "warm-up",
        help="deployment step 1: market data + signals for the history the strategy needs (progress bar)",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--start", default=None,
                   help="first window, UTC (default: the history the strategy needs before the newest window)")
    p.add_argument("--end", default=None, help="exclusive end, UTC (default and maximum: the newest complete window)")
    p.add_argument("--source", choices=["hyperliquid", "freqtrade"], default=None,
                   help="override the configuration's data.source")
    p.add_argument("--path", default=None, help="freqtrade data directory (…/futures) for --source freqtrade")
    p.add_argument("--chunk-days", type=float, default=60.0, help="days of windows per run (default 60)")
    p.add_argument("--no-record", action="store_true",
                   help="run in a throw-away Dagster instance: the data and signals land in DuckDB as usual, but "
                        "the UI does not list these runs (several times faster: no per-window events stored)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="-v: Dagster INFO on the console; -vv: DEBUG")
    p.set_defaults(handler=_warm_up)


def _warm_up(args: argparse.Namespace) -> int:
    if args.path and (args.source or "freqtrade") != "freqtrade":
        raise ValueError("--path is only for --source freqtrade")
    if args.chunk_days <= 0:
        raise ValueError(f"--chunk-days must be positive, got {args.chunk_days}")
    quiet = quiet_dagster(args.verbose)
    from gradient_pipeline.app.dagster_home import ensure_dagster_home

    home = ensure_dagster_home()
    import dagster as dg
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from gradient_pipeline.config import load_config
    from gradient_pipeline.definitions import defs
    from gradient_pipeline.defs.partitions import four_hourly
    from gradient_pipeline.marketdata.sources import open_source

    console = Console(stderr=False, highlight=False)
    cfg = load_config()
    source = args.source or ("freqtrade" if args.path else None)
    src = open_source(cfg, source, args.path)
    complete_end = src.complete_window_end()  # exclusive: the newest complete window opens at complete_end - 4h
    stop = complete_end if args.end is None else min(utc_naive(args.end), complete_end)
    last = (stop - BAR).floor(f"{BAR_HOURS}h")
    first = (utc_naive(args.start).ceil(f"{BAR_HOURS}h") if args.start
             else last - (history_bars(cfg) - 1) * BAR)
    part_start = utc_naive(four_hourly.start)
    if first < part_start:
        if args.start:
            raise ValueError(f"--start {first} is before the first partition {partition_key(part_start)} "
                             "(set GRADIENT_PARTITIONS_START to cover earlier history)")
        first = part_start
    chunks = plan_chunks(first, last, args.chunk_days)
    if not chunks:
        raise ValueError(f"no complete 4h window in [{first}, {stop}) at source {src.name}")
    total = sum(c.windows for c in chunks)
    console.print(f"warm-up {chunks[0].first_key} … {chunks[-1].last_key}: {total} windows from {src.name} "
                  f"in {len(chunks)} run(s); DAGSTER_HOME={home}")
    job = defs.resolve_job_def("warm_up_job")
    op_config = {"source": source or "", "freqtrade_dir": args.path or ""}
    run_config = {**quiet, "ops": {name: {"config": op_config} for name in MARKET_DATA_OPS}}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("windows"),
               TimeElapsedColumn())
    instance_cm = contextlib.nullcontext(dg.DagsterInstance.ephemeral()) if args.no_record else dg.DagsterInstance.get()
    with instance_cm as instance, Progress(*columns, console=console) as progress:
        task = progress.add_task("market data + signals", total=total)
        for chunk in chunks:
            progress.update(task, description=f"{chunk.first_key} … {chunk.last_key}")
            with _quiet_root_logging(args.verbose):
                result = job.execute_in_process(
                    instance=instance, run_config=run_config, raise_on_error=False,
                    tags={RANGE_START_TAG: chunk.first_key, RANGE_END_TAG: chunk.last_key,
                          runtags.COMMAND: "warm-up"})
            if not result.success:
                progress.stop()
                console.print(f"[red]run {result.run_id} for {chunk.first_key} … {chunk.last_key} FAILED[/red]")
                for ev in result.all_events:
                    if ev.is_step_failure:
                        console.print(f"  step {ev.step_key}: {ev.step_failure_data.error.message.strip()}")
                console.print("nothing after this chunk was run (later windows continue from its state)")
                return 1
            failed = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
            progress.advance(task, chunk.windows)
            progress.console.print(f"  {chunk.first_key} … {chunk.last_key}: run {result.run_id[:8]} ok"
                                   + (f"; non-blocking check(s) failed: {', '.join(failed)}" if failed else ""))
    newest = parse_partition_key(chunks[-1].last_key)
    console.print(f"warm-up done: targets up to window {chunks[-1].last_key} (closes {newest + BAR}). Next: start "
                  "trading_cycle_schedule and rebalance_after_window (docs/GRADIENT_LIVE_OPERATIONS.md).")
    return 0


@contextlib.contextmanager
def _quiet_root_logging(verbosity: int):
    """Library INFO chatter (e.g. the exchange client) stays off the console unless -v."""
    import logging

    if verbosity:
        yield
        return
    root = logging.getLogger("gradient_pipeline")
    old = root.level
    root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.setLevel(old)
