"""`gradient-pipeline` command line (entry point: `gradient_pipeline/cli.py`, which calls `main` here). Each module
in `COMMAND_MODULES` adds its subcommands via `add_commands(subparsers)`: the Dagster-free domains keep theirs in
`<domain>/cli.py`; commands that launch Dagster runs or wire several domains live here in `app/`. Handlers import
their heavy modules lazily so `--help` stays fast."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Domains that contribute subcommands. A module that is not there yet is skipped.
COMMAND_MODULES = (
    "gradient_pipeline.localexchange.cli",
    "gradient_pipeline.app.marketdata_cli",
    "gradient_pipeline.research.cli",
    "gradient_pipeline.app.execution_cli",
    "gradient_pipeline.app.monitoring_cli",
    "gradient_pipeline.book.cli",
    "gradient_pipeline.app.cli",
    "gradient_pipeline.app.warmup",  # warm-up: deployment step 1
)


def _ui(args: argparse.Namespace) -> int:
    """Start the Dagster UI and daemon (`dagster dev`) with the project's DAGSTER_HOME."""
    from gradient_pipeline.app.dagster_home import PROJECT_ROOT, ensure_dagster_home

    if args.demo:  # the last demo's home, configuration, book and traded windows (app/demo_book.py)
        from gradient_pipeline.app.demo_book import demo_ui_env

        env = demo_ui_env(args.demo_dir)
        os.environ.update(env)
        print("the last demo: " + ", ".join(f"{k}={v}" for k, v in sorted(env.items())))
    home = ensure_dagster_home()
    print(f"DAGSTER_HOME={home}")
    cmd = ["dagster", "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"), "-p", str(args.port)]
    os.execvp(cmd[0], cmd)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradient-pipeline",
        description="gradient: market-neutral cross-sectional momentum on Hyperliquid perps "
        "(market data, strategy, execution, operations).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    ui = sub.add_parser("ui", help="start the Dagster UI + daemon (dagster dev) with the project's DAGSTER_HOME")
    ui.add_argument("--port", type=int, default=3000)
    ui.add_argument("--demo", action="store_true",
                    help="open the last demo: its Dagster home, configuration, book and traded windows only")
    ui.add_argument("--demo-dir", default="data/demo", help="the demo's --workdir (default data/demo)")
    ui.set_defaults(handler=_ui)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if name.startswith(err.name or "\0"):  # the domain (or its cli) is not there yet
                continue
            raise
        module.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TZ", "UTC")
    args = build_parser().parse_args(argv)
    try:
        result = args.handler(args)
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # one clear line for operators; tracebacks with GRADIENT_DEBUG=1
        if os.environ.get("GRADIENT_DEBUG"):
            raise
        from gradient_pipeline.config import ConfigError

        prefix = "configuration error" if isinstance(err, ConfigError) else type(err).__name__
        print(f"gradient-pipeline {args.command}: {prefix}: {err}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
