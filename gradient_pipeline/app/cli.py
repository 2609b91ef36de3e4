"""Operator views: `gradient-pipeline trades` (more to come: preflight)."""

from __future__ import annotations

import argparse


def add_commands(subparsers: argparse._SubParsersAction) -> None:
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
