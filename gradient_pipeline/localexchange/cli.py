"""`gradient-pipeline exchange serve`: run the local Hyperliquid-compatible exchange in the foreground."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gradient_pipeline.config import LOCAL_API_URL

DEFAULT_PORT = int(LOCAL_API_URL.rsplit(":", 1)[1])  # one default: the URL paper mode connects to


def add_commands(subparsers) -> None:
    exchange = subparsers.add_parser(
        "exchange", help="local Hyperliquid-compatible exchange (replays recorded data, or paper-trades the live market)")
    sub = exchange.add_subparsers(dest="exchange_command", required=True, metavar="SUBCOMMAND")
    serve = sub.add_parser(
        "serve",
        help="serve /info and /exchange on 127.0.0.1 from recorded data (--data) or a live upstream (--upstream)",
        description="Serve the Hyperliquid API on 127.0.0.1 from recorded data on a replay clock (--data), or paper-"
        "trade the live market (--upstream: market data and books from Hyperliquid, orders matched locally, accounts "
        "kept in --state-file). Operator endpoints (clock, faults, price shock, funding accounts) live under /_local/ "
        "(see localexchange/app.py).",
    )
    source = serve.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="directory of <COIN>_USDC_USDC-*.feather files (replay)")
    source.add_argument("--upstream", metavar="URL",
                        help="paper trading on the live market: 'mainnet', 'testnet' or a Hyperliquid info URL to "
                        "take market data and books from (reads only; orders never leave the local exchange)")
    serve.add_argument("--state-file", type=Path,
                       help="with --upstream: where the paper accounts persist (default data/paper_exchange_state.json)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT,
                       help=f"port on 127.0.0.1 (default {DEFAULT_PORT}, where mode 'paper' looks: config.LOCAL_API_URL)")
    serve.add_argument("--start-time", help="with --data (required): replay start, UTC, e.g. '2025-05-01 00:05' or epoch ms")
    serve.add_argument("--speed", type=float, default=1.0,
                       help="replay seconds per wall second (default 1; 0 freezes the clock until moved via /_local/clock)")
    serve.add_argument("--accounts", type=Path,
                       help='JSON file {"accounts": {"0xMASTER": usdc | {"usdc": n, "mode": "standard|unified-account|'
                       'portfolio-margin"}}, "agents": {"0xAGENT": "0xMASTER"}}')
    serve.add_argument("--rate-limit", type=float, default=1200, help="weight budget per IP per minute (default 1200)")
    serve.add_argument("--spread-bps", type=float, default=2.0, help="synthetic book spread in bps (default 2)")
    serve.add_argument("--coins", help="comma-separated subset of coins (default: all in --data)")
    serve.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
    serve.set_defaults(handler=_serve)


def read_accounts_file(path: Path) -> tuple[dict[str, float | dict], dict[str, str]]:
    """Parse the accounts JSON; errors name the file and the offending entry."""
    try:
        raw = json.loads(Path(path).read_text())
    except OSError as err:
        raise ValueError(f"accounts file {path}: {err.strerror}") from err
    except ValueError as err:
        raise ValueError(f"accounts file {path}: not valid JSON ({err})") from err
    if not isinstance(raw, dict) or set(raw) - {"accounts", "agents"}:
        raise ValueError(f"accounts file {path}: expected an object with keys 'accounts' and/or 'agents'")
    accounts, agents = raw.get("accounts", {}), raw.get("agents", {})
    if not isinstance(accounts, dict) or not isinstance(agents, dict):
        raise ValueError(f"accounts file {path}: 'accounts' and 'agents' must be objects")
    out_accounts = {}
    from gradient_pipeline.localexchange.app import account_spec
    from gradient_pipeline.localexchange.engine import ACCOUNT_MODES

    for address, spec in accounts.items():
        try:
            usdc, mode = account_spec(spec, address)
        except ValueError as err:
            raise ValueError(f"accounts file {path}: {err}") from err
        if mode is not None and mode not in ACCOUNT_MODES:
            raise ValueError(f"accounts file {path}: accounts[{address!r}].mode {mode!r} is not one of standard, "
                             "unified-account, portfolio-margin")
        out_accounts[address] = usdc if mode is None else {"usdc": usdc, "mode": mode}
    for agent, master in agents.items():
        if not isinstance(master, str):
            raise ValueError(f"accounts file {path}: agents[{agent!r}] must be the master address (a string)")
    return out_accounts, dict(agents)


def _serve(args: argparse.Namespace) -> int:
    from gradient_pipeline.localexchange.server import build_exchange, serve_forever

    accounts, agents = read_accounts_file(args.accounts) if args.accounts else ({}, {})
    if args.upstream:
        from gradient_pipeline.localexchange.paper import serve_paper

        return serve_paper(args, accounts, agents)
    if not args.start_time or args.state_file:
        raise ValueError("--data needs --start-time; --state-file goes with --upstream")
    coins = [c.strip() for c in args.coins.split(",") if c.strip()] if args.coins else None
    start = int(args.start_time) if args.start_time.isdigit() else args.start_time
    exchange = build_exchange(args.data, start, speed=args.speed, accounts=accounts, agents=agents,
                              rate_limit_per_minute=args.rate_limit, spread_bps=args.spread_bps, coins=coins)
    exchange.set_time(start)  # loading took wall time; a running clock starts at --start-time when serving starts
    status = exchange.status()
    print(f"local exchange: http://127.0.0.1:{args.port}  replay now {status['now']} x{status['speed']}  "
          f"{status['coins_listed']} coins listed  trading {'on' if status['trading_available'] else 'off'}",
          flush=True)
    serve_forever(exchange, args.port, log_level=args.log_level)
    return 0
