"""`gradient-pipeline backfill`: load a range of 4h windows (candles, funding, universe) in one Dagster run."""

from __future__ import annotations

import argparse


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "backfill",
        help="materialise market data for a range of 4h windows as one Dagster run (visible in the UI)",
        description=(
            "Materialise candles, funding and universe for every 4h window t with START <= t < END as ONE run of "
            "market_data_job in the project's Dagster instance (DAGSTER_HOME), so it shows in `gradient-pipeline ui`. "
            "END defaults to, and is clipped at, the source's newest complete window."
        ),
    )
    p.add_argument("--start", help="first window, UTC (e.g. 2025-01-01 or 2025-01-01T04:00); required unless --demo")
    p.add_argument("--end", default=None, help="exclusive end, UTC (default: newest complete window)")
    p.add_argument("--source", choices=["hyperliquid", "freqtrade"], default=None,
                   help="override the configuration's data.source")
    p.add_argument("--path", default=None, help="freqtrade data directory (…/futures) for --source freqtrade")
    p.add_argument("--demo", action="store_true",
                   help="the bundled demo extract: --source freqtrade --path <package>/demo_data/futures, "
                        "--start at its first candle (2024-10-01) unless given")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="-v: Dagster INFO on the console, -vv: DEBUG (all of it is in the run's event log anyway)")
    p.add_argument("--prune", action="store_true",
                   help="allow deleting stored rows the source no longer has (without it, a source with fewer rows "
                        "than stored is an error; coins without any input always keep their rows)")
    p.set_defaults(handler=_backfill)


def _backfill(args: argparse.Namespace) -> int:
    if args.demo:
        from gradient_pipeline.demo_data import FUTURES_DIR, START

        if args.path or args.source == "hyperliquid":
            raise ValueError("--demo already chooses the source (freqtrade) and the directory")
        args.source, args.path, args.start = "freqtrade", str(FUTURES_DIR), args.start or START
    if not args.start:
        raise ValueError("--start is required (or use --demo)")
    if args.path and (args.source or "freqtrade") != "freqtrade":
        raise ValueError("--path is only for --source freqtrade")
    from gradient_pipeline.app.dagster_home import ensure_dagster_home

    home = ensure_dagster_home()
    import warnings

    import dagster as dg

    warnings.filterwarnings("ignore", category=dg.BetaWarning)  # BackfillPolicy is beta; the operator can't act on it

    from gradient_pipeline.config import load_config
    from gradient_pipeline.defs.market_data.backfill import plan_backfill, run_backfill, summarize
    from gradient_pipeline.definitions import defs

    source = args.source or ("freqtrade" if args.path else None)
    cfg = load_config()
    plan = plan_backfill(cfg, args.start, args.end, source, args.path)
    note = " (end clipped to the source's newest complete window)" if plan.clipped_end else ""
    print(f"backfill {plan.first_key} … {plan.last_key}: {plan.windows} windows from {plan.source}{note}")
    print(f"DAGSTER_HOME={home}")
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from gradient_pipeline.app.warmup import quiet_dagster

    # one Dagster run (single-run backfill): a spinner with the elapsed time while it works (on a terminal)
    with dg.DagsterInstance.get() as instance, Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                                        TimeElapsedColumn(), transient=True) as progress:
        progress.add_task(f"candles, funding, universe for {plan.windows} windows (one run)", total=None)
        result = run_backfill(defs, plan, instance, source, args.path, prune=args.prune,
                              loggers_config=quiet_dagster(args.verbose))
    return report(summarize(result))


def report(summary: dict) -> int:
    """Print the run's outcome; 0 only if every step succeeded and every check passed."""
    ok = summary["success"]
    print(f"run {summary['run_id']}: {'success' if ok else 'FAILED'}")
    for asset, n in summary["rows"].items():
        print(f"  {asset}: {n} rows")
    for asset, coins in summary.get("missing", {}).items():
        listed = ", ".join(f"{c} ({n} rows)" for c, n in coins.items())
        print(f"  {asset}: MISSING input, stored rows kept: {listed}")
    for check, passed in summary["checks"].items():
        reason = summary.get("check_reasons", {}).get(check) or ""
        print(f"  check {check}: {'passed' if passed else 'FAILED'}" + ("" if passed or not reason else f": {reason}"))
    for step, reason in summary.get("failures", []):
        print(f"  step {step} failed: {reason}")
    if summary.get("skipped"):
        print(f"  not run (an upstream step or blocking check failed): {', '.join(summary['skipped'])}")
    return 0 if ok else 1
