"""Application commands: `preflight`.

    gradient-pipeline preflight [--config FILE] [--no-test-alerts]

Exit codes: 0 every check passed, 1 warnings, 2 any failure.
"""

from __future__ import annotations

import argparse


def add_commands(subparsers) -> None:
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
