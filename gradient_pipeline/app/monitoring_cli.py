"""Operator commands that work with the Dagster daemon down: `status`, `emergency-stop`, `resume`.

    gradient-pipeline status [--offline] [--demo] [--json]
    gradient-pipeline emergency-stop --flatten-all [--yes] [--reason TEXT]
    gradient-pipeline resume [--yes] [--reason TEXT]
    gradient-pipeline drawdown-drill [--workdir DIR]
    gradient-pipeline watchdog [--max-age S] [--ping-url URL]   (cron)

The configuration is `$GRADIENT_CONFIG` (or `--config`); the DuckDB file is the configuration's `duckdb_path`
unless `GRADIENT_DUCKDB_PATH` overrides it (as for Dagster runs). Exit codes: 0 done, 1 the emergency stop left
positions open (Ctrl-C) or was not confirmed, 2 error. `status` exits 0 ok, 1 drawdown warning, 2 halted or at the
stop level, 3 the drawdown cannot be evaluated (alert on any non-zero code).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys


def add_commands(subparsers) -> None:
    status = subparsers.add_parser("status", help="mode, network, halt state, account value, drawdown, positions, "
                                   "exposure, last rebalance")
    status.add_argument("--offline", action="store_true", help="do not contact the exchange; use the ledger only")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--demo", action="store_true",
                        help="the last `gradient-pipeline demo` (its config and book; offline: its exchange is gone)")
    status.add_argument("--demo-dir", default="data/demo", help="the demo's --workdir (default data/demo)")
    _common(status)
    status.set_defaults(handler=_status)

    stop = subparsers.add_parser(
        "emergency-stop",
        help="halt trading, cancel open orders and (with --flatten-all) close every position",
        description="Set the persistent halt, cancel every open order and, with --flatten-all, close every position "
        "with reduce-only IOC orders until flat (or report what is left). Needs no Dagster daemon.",
    )
    stop.add_argument("--flatten-all", action="store_true", help="also close every position (the usual emergency)")
    stop.add_argument("--yes", action="store_true", help="do not ask for confirmation (scripts)")
    stop.add_argument("--reason", default="emergency stop by operator", help="recorded with the halt")
    _common(stop)
    stop.set_defaults(handler=_emergency_stop)

    resume = subparsers.add_parser(
        "resume",
        help="clear the halt after an emergency stop (asks for confirmation)",
        description="Clear the persistent halt so scheduled rebalances trade again, and re-base the drawdown "
        "high-water mark to the current account value (otherwise the stop would fire again at once).",
    )
    resume.add_argument("--yes", action="store_true", help="do not ask for confirmation (scripts)")
    resume.add_argument("--reason", default="resumed by operator", help="recorded with the resume")
    resume.add_argument("--rebase-only", action="store_true",
                        help="only re-base the high-water mark to the current account value (after a deposit or "
                        "withdrawal); the halt state is not touched")
    _common(resume)
    resume.set_defaults(handler=_resume)

    watchdog = subparsers.add_parser(
        "watchdog",
        help="from cron, outside Dagster: alert if the drawdown check has not evaluated recently; ping a dead-man URL",
        description="Reads the drawdown check's heartbeat. If the last successful evaluation is older than "
        "--max-age (default risk.watchdog_max_age_s) it alerts and exits 1; otherwise it pings the dead-man URL "
        "(--ping-url or $GRADIENT_DEADMAN_URL, a plain GET, healthchecks.io-style) and exits 0.",
    )
    watchdog.add_argument("--max-age", type=float, help="seconds (default: risk.watchdog_max_age_s)")
    watchdog.add_argument("--ping-url", help="dead-man URL to GET on success (default: $GRADIENT_DEADMAN_URL)")
    _common(watchdog)
    watchdog.set_defaults(handler=_watchdog)

    sim = subparsers.add_parser(
        "simulate",
        help="seeded fault-schedule simulation: consecutive 4h windows of the real rebalance and drawdown paths "
        "against the local exchange, invariants checked after every window",
        description="Runs N schedules (each several 4h windows) with faults drawn from the seed; prints "
        "'N schedules, W windows, F faults injected, V violations' and, per failing schedule, the command that "
        "replays it. Exit code 1 if any invariant was violated.",
    )
    sim.add_argument("--schedules", type=int, default=20)
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--windows", type=int, default=3, help="consecutive 4h windows per schedule")
    sim.add_argument("--schedule", type=int, help="replay only this schedule index")
    sim.add_argument("--jobs", type=int, default=1,
                     help="worker processes, each with its own local exchange and book (default 1; a schedule's "
                     "outcome does not depend on it)")
    sim.set_defaults(handler=_simulate)

    drill = subparsers.add_parser(
        "drawdown-drill",
        help="rehearse the drawdown stop offline: crash injected at the local exchange → warning, stop, flatten, "
        "alert, halt",
        description="Offline rehearsal on the bundled real data: opens a paper book on the local exchange, injects a "
        "crash and runs the real monitoring jobs and sensor logic (warning, emergency stop, flatten, halt), printing "
        "every alert a local webhook receives. Uses its own ledger in --workdir, never the live DuckDB file.",
    )
    drill.add_argument("--workdir", default=".drill", help="where the drill's DuckDB file and config go (default .drill)")
    drill.set_defaults(handler=_drill)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="configuration file (default: $GRADIENT_CONFIG or config/gradient_live.json)")


def _load(args):
    from gradient_pipeline.config import load_config

    if getattr(args, "demo", False):  # `status --demo`: the last demo's config and book; its exchange is gone
        from gradient_pipeline.app.demo_book import find_demo

        demo = find_demo(args.demo_dir)
        args.offline = True
        if demo.account:  # the demo's paper account (public address): its drawdown is judged from the book
            os.environ["GRADIENT_ACCOUNT_ADDRESS"] = demo.account
        print(f"the last demo's book ({demo.workdir}); its local exchange is gone, figures are the book's last "
              "snapshot", file=sys.stderr)
        return load_config(demo.config_path), demo.db_path
    cfg = load_config(args.config)
    db_path = os.environ.get("GRADIENT_DUCKDB_PATH") or str(cfg.resolved_duckdb_path)
    return cfg, db_path


def _watchdog(args) -> int:
    from gradient_pipeline.monitoring.watchdog import run_watchdog

    cfg, db_path = _load(args)
    result = run_watchdog(cfg, db_path, args.max_age, args.ping_url)
    stamp = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"
    extra = "" if result.pinged is None else ("; dead-man pinged" if result.pinged else "")
    alert = f"; alert {result.alert_status}" if result.alert_status else ""
    print(f"{stamp} watchdog {result.message}{extra}{alert}", file=sys.stdout if result.ok else sys.stderr)
    return result.exit_code


def _simulate(args) -> int:
    import logging

    from gradient_pipeline.app.simulate import simulate

    logging.disable(logging.CRITICAL)  # faults are the point here: the summary says what happened
    violations = simulate(args.schedules, args.seed, args.windows, args.schedule, jobs=max(1, args.jobs))
    return 1 if violations else 0


def _drill(args) -> int:
    from gradient_pipeline.app.drill import run_drill

    return run_drill(args.workdir)


def _confirm(prompt: str, yes: bool) -> bool:
    if yes:
        return True
    if not sys.stdin.isatty():
        print(f"{prompt} — refusing without a terminal; pass --yes to confirm from a script", file=sys.stderr)
        return False
    answer = input(f"{prompt} Type 'yes' to continue: ").strip().lower()
    return answer == "yes"


def _status(args) -> int:
    from gradient_pipeline.monitoring.status import gather_status, render

    try:
        cfg, db_path = _load(args)
        report = gather_status(cfg, db_path, live=not args.offline)
    except Exception as err:  # noqa: BLE001 - status that cannot run cannot evaluate: exit 3, never 2 (halted)
        print(f"gradient-pipeline status: cannot evaluate: {type(err).__name__}: {err}", file=sys.stderr)
        return 3
    if args.json:
        print(json.dumps({**report.as_dict(), "exit_code": report.exit_code}, default=str, indent=2))
    else:
        print(render(report))
    return report.exit_code  # 0 ok, 1 warning, 2 halted or at the stop level, 3 cannot evaluate


def _emergency_stop(args) -> int:
    from gradient_pipeline.monitoring import messages
    from gradient_pipeline.monitoring.alerts import raise_alert
    from gradient_pipeline.monitoring.emergency import FlattenReport, cancel_all, emergency_stop
    from gradient_pipeline.monitoring.halt import set_halt
    from gradient_pipeline.book import connect

    cfg, db_path = _load(args)
    what = "close EVERY position and cancel every open order" if args.flatten_all else "cancel every open order"
    if not _confirm(f"EMERGENCY STOP on {cfg.network} ({cfg.mode}): halt trading and {what}.", args.yes):
        print("emergency stop NOT performed (not confirmed)")
        return 1
    if args.flatten_all:
        print("flattening until flat; progress below. Ctrl-C stops it and prints what is still open.", flush=True)
        report = emergency_stop(cfg, db_path, args.reason, source="operator",
                                say=lambda msg: print(msg, flush=True))
    else:
        from gradient_pipeline.monitoring.account import open_trading

        report = FlattenReport(stop_id="cancel-only", mode=cfg.mode)
        with connect(db_path) as conn:
            set_halt(conn, args.reason, "operator")
        report.halted = True
        if cfg.sends_orders:
            cancel_all(open_trading(cfg, signer=True), report)
        report.remaining = {}
    print(f"emergency stop {report.stop_id}: {report.summary()}")
    try:
        with connect(db_path) as conn:
            raise_alert(conn, messages.emergency_stop_manual(args.reason, report.summary()), cfg)
    except Exception as err:  # noqa: BLE001 - the stop is done; an alert problem must not change the exit code
        print(f"note: alert not sent ({type(err).__name__}: {err})", file=sys.stderr)
    if args.flatten_all and not report.flat and cfg.sends_orders:
        print("WARNING: positions are still open — close them in the exchange UI now"
              + (" (stopped by Ctrl-C)" if report.interrupted else ""), file=sys.stderr)
        print("halt is SET" if report.halted else "HALT IS NOT SET", file=sys.stderr)
        return 1
    return 0


def _resume(args) -> int:
    from gradient_pipeline.monitoring.alerts import clear_alert
    from gradient_pipeline.monitoring.equity import rebase_high_water_mark
    from gradient_pipeline.monitoring.halt import clear_halt, halt_status
    from gradient_pipeline.monitoring.heartbeat import rebase_heartbeat_hwm
    from gradient_pipeline.monitoring.status import gather_status, render
    from gradient_pipeline.book import connect

    cfg, db_path = _load(args)
    report = gather_status(cfg, db_path, live=True)
    print(render(report))
    if report.halt is None:
        raise RuntimeError(f"cannot read the halt state from the operations book beside {db_path} (see the notes above)")
    if report.account_value is None:
        raise RuntimeError("account value unknown (exchange unreachable and no ledger snapshot): not resuming")
    if args.rebase_only:
        if not _confirm(f"Re-base the drawdown high-water mark to ${report.account_value:,.2f}.", args.yes):
            print("high-water mark NOT re-based (not confirmed)")
            return 1
        with connect(db_path) as conn:
            rebase_high_water_mark(conn, report.account_value, args.reason)
        rebase_heartbeat_hwm(db_path, report.account_value)
        print(f"high-water mark re-based to ${report.account_value:,.2f}; halt state unchanged")
        return 0
    if not report.halt.halted:
        print("trading is not halted; nothing to resume")
        return 0
    prompt = (f"RESUME trading on {cfg.network} ({cfg.mode}); the drawdown high-water mark is re-based to "
              f"${report.account_value:,.2f}.")
    if not _confirm(prompt, args.yes):
        print("NOT resumed (not confirmed); trading stays halted")
        return 1
    with connect(db_path) as conn:
        if halt_status(conn).halted:
            clear_halt(conn, args.reason, "operator")
        rebase_high_water_mark(conn, report.account_value, args.reason)
        for key in ("emergency_stop", "drawdown_warn"):
            clear_alert(conn, key)
    rebase_heartbeat_hwm(db_path, report.account_value)  # the drawdown check's own copy of the mark follows
    print(f"resumed: trading is no longer halted; high-water mark re-based to ${report.account_value:,.2f}")
    return 0
