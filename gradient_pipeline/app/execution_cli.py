"""`gradient-pipeline rebalance` (one rebalance through Dagster, e.g. from cron) and `gradient-pipeline demo`."""

from __future__ import annotations

import argparse


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    r = subparsers.add_parser(
        "rebalance",
        help="run rebalance_job once through Dagster (latest complete window; recorded in DAGSTER_HOME)",
        description=(
            "Run `rebalance_job` in the project's Dagster instance: refuse stale or unchecked targets, reconcile "
            "with the exchange, trade to the window's targets (mode from the configuration: paper, dry_run, "
            "testnet, mainnet) and record everything in the operations book. Re-running the same window resumes "
            "it; a completed window trades nothing."
        ),
    )
    r.add_argument("--window", default="", help="partition key %%Y-%%m-%%d-%%H:%%M (default: latest complete window)")
    r.set_defaults(handler=_rebalance)

    d = subparsers.add_parser(
        "demo",
        help="offline end-to-end demo: local exchange on the bundled data, several 4h cycles through Dagster",
        description=(
            "Start the local exchange on the bundled real-data extract, fund a paper account (ephemeral key, never "
            "shown), materialise market data and targets window by window and run the rebalance job after each "
            "window — the schedule's code path — then print positions, exposure, PnL, orders and fills."
        ),
    )
    d.add_argument("--cycles", type=int, default=6, help="consecutive 4h cycles to trade (default 6)")
    d.add_argument("--start", default=None, help="exchange time of the first cycle (default: demo default)")
    d.add_argument("--workdir", default="data/demo",
                   help="where the demo's DuckDB file and config go; replaced on each run (default data/demo)")
    d.add_argument("--capital", type=float, default=10_000.0, help="paper account funding, USDC")
    d.set_defaults(handler=_demo)


def _rebalance(args: argparse.Namespace) -> int:
    from gradient_pipeline.app.dagster_home import ensure_dagster_home

    home = ensure_dagster_home()
    import dagster as dg

    from gradient_pipeline.definitions import defs
    from gradient_pipeline.defs.execution.jobs import rebalance_run_config

    job = defs.resolve_job_def("rebalance_job")
    result = job.execute_in_process(
        instance=dg.DagsterInstance.get(),
        run_config=rebalance_run_config(args.window) if args.window else None,
        raise_on_error=False,
    )
    out = result.output_for_node("rebalance") if result.success else None
    if out and out.get("status") == "skipped":
        print(f"rebalance skipped: {out.get('reason', '')} — run {result.run_id} in DAGSTER_HOME={home}")
        return 0
    if out:
        print(f"rebalance {out.get('rebalance_id', '')}: {out['status']} ({out.get('orders', 0)} orders) "
              f"— run {result.run_id} in DAGSTER_HOME={home}")
        return 0
    failure = result.failure_data_for_node("check_targets") or result.failure_data_for_node("rebalance")
    reason = failure.error.message.strip().splitlines()[0] if failure and failure.error else "see the run's logs"
    print(f"rebalance did not trade: {reason} — run {result.run_id} in DAGSTER_HOME={home}")
    return 1


def _demo(args: argparse.Namespace) -> int:
    from gradient_pipeline.app.demo import run_demo

    run_demo(cycles=args.cycles, start=args.start, workdir=args.workdir, capital=args.capital)
    return 0
