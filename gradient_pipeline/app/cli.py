"""Application commands: `preflight` and `trades`.

    gradient-pipeline preflight [--config FILE] [--no-test-alerts]      exit 0 all pass, 1 warnings, 2 any failure
    gradient-pipeline trades [--since ISO] [--coin C] [--demo] [--json]
"""

from __future__ import annotations

import argparse


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    _add_preflight(subparsers)
    t = subparsers.add_parser(
        "trades",
        help="every fill in the operations book and P&L per coin (realised, unrealised, fees; funding not recorded)",
        description="List the fills recorded in the operations book (time UTC, coin, side, size, price, notional, "
        "fee, maker/taker, closed P&L, rebalance) and the P&L per coin: realised (the exchange's closedPnl), "
        "unrealised (newest positions snapshot in the book), fees. Funding payments are not recorded in the book "
        "yet; the output says so. Dry-run orders (recorded, never sent) are listed too. Reads only the book.",
    )
    t.add_argument("--since", default=None, help="only fills at or after this UTC date/time (ISO, e.g. 2025-04-10)")
    t.add_argument("--coin", default=None, help="only this coin (as the exchange spells it, e.g. BTC, kPEPE)")
    t.add_argument("--demo", action="store_true", help="the last `gradient-pipeline demo`'s book (works offline)")
    t.add_argument("--demo-dir", default="data/demo", help="the demo's --workdir (default data/demo)")
    t.add_argument("--json", action="store_true", help="machine-readable output")
    t.add_argument("--config", help="configuration file (default: $GRADIENT_CONFIG or config/gradient_live.json)")
    t.set_defaults(handler=_trades)


def _trades(args) -> int:
    from gradient_pipeline.app.trades import run

    return run(args)


def _add_preflight(subparsers) -> None:
    pre = subparsers.add_parser(
        "preflight",
        help="the go-live checklist: config, mode, approved agent, account mode, builder, clocks, rate budget, "
        "alerts, drill, recent backtest (exit 0 pass, 1 warn, 2 fail)",
        description="Run the go-live checklist for the configured mode and print one PASS / WARN / FAIL line per "
        "item with what to do. Sends one test message to each alert destination (unless --no-test-alerts); never "
        "sends an order.",
    )
    pre.add_argument("--config", help="configuration file (default: $GRADIENT_CONFIG or the embedded defaults)")
    pre.add_argument("--no-test-alerts", action="store_true", help="do not send the test message to alert URLs")
    pre.set_defaults(handler=_preflight)


def _preflight(args: argparse.Namespace) -> int:
    from gradient_pipeline.app.preflight import PreflightContext, run_preflight

    return run_preflight(PreflightContext(config_path=args.config, send_test_alerts=not args.no_test_alerts))
