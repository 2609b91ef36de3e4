"""The offline demo: the whole 4h loop on real recorded data, through Dagster, with nothing leaving 127.0.0.1.

1. start the local exchange on the bundled extract (`gradient_pipeline/demo_data`), its replay clock at the
   first cycle; fund a paper master account and approve an API wallet — both keys are generated in this
   process, the API key goes only into this process's environment (`GRADIENT_PRIVATE_KEY`) and is never shown;
2. write a paper-mode configuration for it (`<workdir>/gradient_demo.json`, market data from the local exchange);
3. warm up: one single-run backfill of `trading_window_job` (market data → returns → scores → target_weights, with
   their checks) over the history the strategy needs;
4. each cycle: the schedule's request for the window that just closed (`window_run_request`) → run it; the
   sensor's rebalance request for that run (`rebalance_run_request`) → run `rebalance_job`; `monitor_job` (equity
   snapshot, funding payments, dashboard assets: one point per cycle on their Plots tabs); advance the clock 4h;
5. `performance_report_job` (the HTML report), then print positions, exposure, PnL, orders and fills, and where
   to look (`status --demo`, `trades --demo`, `ui --demo`).
The configuration bounds the partitions to the traded windows (`data.partitions_end`; `demo_run.json` records the
range), so `gradient-pipeline ui --demo` shows the demo's windows rather than years of "missing" partitions.
The console shows progress (rich) and the story; Dagster's DEBUG events and beta notices stay in the instance.
Runs land in DAGSTER_HOME (default `.dagster_home`), so `gradient-pipeline ui` / `dagster dev` shows them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from pathlib import Path

import pandas as pd

from gradient_pipeline import runtags
from gradient_pipeline.timegrid import BAR, parse_partition_key, partition_key

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # runs still log fully to the instance
DEFAULT_START = "2025-04-10 00:05"  # > 1024 bars after the extract's first candle, leaving weeks to trade
WARMUP_START = "2024-10-01-00:00"


_console = None  # the rich console of the running demo's progress display (None: plain print)


def _say(msg: str) -> None:
    if _console is not None:
        _console.print(msg, highlight=False, markup=False, soft_wrap=True)
    else:
        print(msg, flush=True)


def run_demo(cycles: int = 6, start: str | None = None, workdir: str = "data/demo", capital: float = 10_000.0) -> dict:
    import eth_account

    from gradient_pipeline.app.dagster_home import ensure_dagster_home
    from gradient_pipeline.timegrid import latest_complete_bar_open
    from gradient_pipeline.demo_data import FUTURES_DIR
    from gradient_pipeline.localexchange.server import run_in_background

    if cycles < 1:
        raise ValueError("--cycles must be at least 1")
    _quiet_dagster_warnings()
    home = ensure_dagster_home()
    work = Path(workdir).resolve()
    if work.exists():
        shutil.rmtree(work)  # a fresh ledger: the local exchange's trade ids start again at 1
    work.mkdir(parents=True)
    t0 = pd.Timestamp(start or DEFAULT_START)

    master, agent = eth_account.Account.create(), eth_account.Account.create()
    handle = run_in_background(FUTURES_DIR, t0, accounts={master.address: capital},
                               agents={agent.address: master.address}, rate_limit_per_minute=1_000_000)
    try:
        first_bar = latest_complete_bar_open(handle.now())  # the first cycle's window (as window_run_request)
        traded = (partition_key(first_bar), partition_key(first_bar + cycles * BAR))  # [first, end) of the cycles
        config = {
            "mode": "paper",
            "capital_usd": capital,
            "exchange_base_url": handle.base_url,
            "duckdb_path": str(work / "gradient_demo.duckdb"),
            "data": {"source": "hyperliquid", "partitions_start": WARMUP_START, "partitions_end": traded[1]},
            "rate_limit": {"budget_per_minute": 1_000_000},
        }
        cfg_path = work / "gradient_demo.json"
        cfg_path.write_text(json.dumps(config, indent=2))
        # for `status --demo` / `trades --demo` (app/demo_book.py): the account is public, the key is not written
        # and for `ui --demo`: the traded windows bound the UI's partitions
        (work / "demo_run.json").write_text(json.dumps({"account": master.address, "dagster_home": str(home),
                                                        "started_at": pd.Timestamp.now(tz="UTC").isoformat(),
                                                        "partitions_start": traded[0], "partitions_end": traded[1]}))
        os.environ.update({
            "GRADIENT_CONFIG": str(cfg_path),
            "GRADIENT_DUCKDB_PATH": config["duckdb_path"],
            "GRADIENT_PARTITIONS_START": WARMUP_START,
            "GRADIENT_ACCOUNT_ADDRESS": master.address,
            "GRADIENT_PRIVATE_KEY": agent.key.hex(),  # this process only; never printed or stored
        })
        del agent  # nothing below needs the key object

        import dagster as dg

        from gradient_pipeline.definitions import defs
        from gradient_pipeline.defs.execution.schedule import (
            rebalance_run_request,
            window_run_request,
        )

        instance = dg.DagsterInstance.get()
        window_job = defs.resolve_job_def("trading_window_job")
        rebalance_job = defs.resolve_job_def("rebalance_job")
        _say(f"local exchange {handle.base_url} replaying {FUTURES_DIR} from {t0}; paper account "
             f"{master.address} funded with ${capital:,.0f}")

        first = window_run_request(handle.now()).partition_key
        warm_end = partition_key(parse_partition_key(first) - BAR)
        monitor_job = defs.resolve_job_def("monitor_job")
        report_job = defs.resolve_job_def("performance_report_job")
        cycles_out = []
        with _progress() as progress:
            task = progress.add_task("warm-up", total=cycles + 2)
            tic = time.monotonic()
            _say(f"warm-up: market data and targets {WARMUP_START} … {warm_end} (history the strategy needs)")
            warm_up(WARMUP_START, warm_end)
            _say(f"warm-up done in {time.monotonic() - tic:.0f}s")
            progress.advance(task)
            for i in range(cycles):
                now = handle.now()
                req = window_run_request(now)
                progress.update(task, description=f"cycle {i + 1}/{cycles} {req.partition_key}")
                tags = {runtags.DEMO: f"cycle-{i + 1}"}
                data = window_job.execute_in_process(instance=instance, partition_key=req.partition_key,
                                                     run_config=QUIET, tags={**req.tags, **tags}, raise_on_error=False)
                if not data.success:
                    _say(f"cycle {i + 1} [{now}]: window {req.partition_key} data run failed; no rebalance")
                    _say_failures(data)
                    cycles_out.append({"window": req.partition_key, "status": "data run failed"})
                else:
                    rreq = rebalance_run_request(req.partition_key, data.run_id)
                    reb = rebalance_job.execute_in_process(instance=instance, run_config={**rreq.run_config, **QUIET},
                                                           tags={**rreq.tags, **tags}, raise_on_error=False)
                    out = reb.output_for_node("rebalance") if reb.success else {"status": "run failed"}
                    if not reb.success:
                        _say_failures(reb)
                    _say(f"cycle {i + 1} [{now}]: window {req.partition_key} → rebalance {out['status']} "
                         f"({out.get('orders', 0)} orders)")
                    cycles_out.append({"window": req.partition_key, **out})
                mon = monitor_job.execute_in_process(instance=instance, run_config=QUIET, tags=tags,
                                                     raise_on_error=False)
                if not mon.success:
                    _say(f"cycle {i + 1}: monitor_job FAILED (dashboard not updated)")
                    _say_failures(mon)
                progress.advance(task)
                handle.advance(4)
            progress.update(task, description="performance report")
            rep = report_job.execute_in_process(instance=instance, run_config=QUIET, tags={runtags.DEMO: "report"},
                                                raise_on_error=False)
            if not rep.success:
                _say("performance_report_job FAILED")
                _say_failures(rep)
            progress.advance(task)
            progress.update(task, description="done")
        summary = _summary(config["duckdb_path"], capital, home, master.address, workdir)
        if rep.success:
            html = rep.asset_materializations_for_node("performance_report")[0].metadata["report_html"].value
            _say(f"performance report (HTML: tables and charts): {html}")
        summary["cycles"] = cycles_out
        return summary
    finally:
        handle.stop()


def warm_up(first_key: str, last_key: str) -> None:
    """Seed the history with one single-run range materialisation of the real assets in an in-memory instance.

    Why not the project's instance: a range run records ~7,000 per-partition events for the ~1,150 history
    windows (minutes of sqlite writes on a small machine) for windows nobody trades. The data lands in the same
    DuckDB file; the traded windows after this go through the project's instance and show in the UI.
    """
    import dagster as dg

    from gradient_pipeline.definitions import defs

    assets = [defs.get_assets_def(k) for k in ("candles", "funding", "universe", "returns", "momentum_scores",
                                               "target_weights")]
    result = dg.materialize(
        assets, instance=dg.DagsterInstance.ephemeral(), resources=defs.resources, raise_on_error=False,
        run_config=QUIET,
        tags={"dagster/asset_partition_range_start": first_key, "dagster/asset_partition_range_end": last_key},
    )
    if not result.success:
        failed = [e.message for e in result.all_events if e.is_step_failure]
        raise RuntimeError(f"warm-up of {first_key} … {last_key} failed: {failed[:1]}")


def _say_failures(result) -> None:
    """Which step or check failed and why (the first line of each error), from a run's events."""
    for ev in result.all_events:
        if ev.is_step_failure:
            _say(f"  step {ev.step_key} failed: {ev.step_failure_data.error.message.strip().splitlines()[0]}")
    for ev in result.get_asset_check_evaluations():
        if not ev.passed:
            why = ev.metadata.get("reason") or ev.metadata.get("detail") or ev.description
            _say(f"  check {ev.check_name} on {ev.asset_key.to_user_string()} FAILED: "
                 f"{getattr(why, 'value', why) or 'no reason given'}")


@contextlib.contextmanager
def _progress():
    """A rich progress bar for the demo's steps; `_say` prints above it while it runs."""
    global _console
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(highlight=False)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as progress:
        _console = console
        try:
            yield progress
        finally:
            _console = None


def _quiet_dagster_warnings() -> None:
    """Dagster's beta/preview notices are for developers, not for the demo's reader."""
    import warnings

    from dagster._utils.warnings import BetaWarning, PreviewWarning, SupersessionWarning

    for category in (BetaWarning, PreviewWarning, SupersessionWarning):
        warnings.filterwarnings("ignore", category=category)


def _summary(db_path: str, capital: float, home: Path, account: str, workdir: str = "data/demo") -> dict:
    from gradient_pipeline import book
    from gradient_pipeline.book.ledger import table_frame

    with book.connect(db_path) as conn:
        reb = table_frame(conn, "rebalances", ["window_ts"])
        eq = table_frame(conn, "equity", ["ts"])
        all_pos = table_frame(conn, "positions")
        all_fills = table_frame(conn, "fills")
        all_orders = table_frame(conn, "orders")
        where = book.redact_url(book.book_url(db_path))
    # A PostgreSQL book (GRADIENT_BOOK_URL) also holds earlier runs: summarise this demo's account only.
    reb = reb[reb["account"].str.lower() == account.lower()] if len(reb) else reb
    ids = set(reb["rebalance_id"])
    all_fills = all_fills[all_fills["rebalance_id"].isin(ids)] if len(all_fills) else all_fills
    all_orders = all_orders[all_orders["rebalance_id"].isin(ids)] if len(all_orders) else all_orders
    last_eq = eq[(eq["source"] == "rebalance_end") & eq["rebalance_id"].isin(ids)].tail(1) if len(eq) else eq
    pos = all_pos[(all_pos["source"] == "rebalance_end") & all_pos["rebalance_id"].isin(ids)] if len(all_pos) else all_pos
    pos = pos[pos["ts"] == pos["ts"].max()].sort_values("weight", ascending=False) if len(pos) else pos
    fills = {"n": len(all_fills), "volume": all_fills["notional_usd"].sum() if len(all_fills) else 0.0,
             "fees": all_fills["fee_usd"].sum() if len(all_fills) else 0.0,
             "maker": int((all_fills["liquidity"] == "maker").sum()) if len(all_fills) else 0}
    orders = (all_orders.groupby("status").size().rename("n").reset_index().sort_values("n", ascending=False)
              if len(all_orders) else pd.DataFrame({"status": [], "n": []}))
    av = float(last_eq["account_value_usd"].iloc[0]) if len(last_eq) else capital
    pnl = av - capital
    lines = ["", "=== demo summary ===",
             f"rebalances: {len(reb)} ({', '.join(f'{s} {n}' for s, n in reb['status'].value_counts().items())})",
             f"orders: {int(orders['n'].sum())} ({', '.join(f'{s} {n}' for s, n in zip(orders['status'], orders['n']))})",
             (f"fills: {int(fills['n'])}, traded ${float(fills['volume'] or 0):,.0f}, "
              f"fees ${float(fills['fees'] or 0):,.2f}, maker {int(fills['maker'] or 0)}"),
             f"account value ${av:,.2f} (PnL {pnl:+,.2f} USD, {pnl / capital:+.2%})"]
    if len(last_eq):
        e = last_eq.iloc[0]
        lines.append(f"exposure: gross ${e['gross_exposure_usd']:,.0f} ({e['gross_exposure_usd'] / av:.0%}), "
                     f"net ${e['net_exposure_usd']:+,.0f}, {int(e['n_positions'])} positions")
    if len(pos):
        lines.append("positions (last rebalance):")
        for p in pos.itertuples():
            lines.append(f"  {p.coin:>7} {p.szi:>+14,.4f}  ${p.position_value_usd:>9,.0f}  weight {p.weight:+.3f} "
                         f"(target {p.target_weight:+.3f})  uPnL {p.unrealized_pnl_usd:+.2f}")
    demo_dir = "" if Path(workdir).resolve() == Path("data/demo").resolve() else f" --demo-dir {workdir}"
    lines += [f"ledger: operations book {where} (tables rebalances, orders, fills, positions, equity)",
              "look again later (offline, from the book; the local exchange is gone once the demo ends):",
              f"  uv run gradient-pipeline status --demo{demo_dir}   account, positions vs targets, last rebalance",
              f"  uv run gradient-pipeline trades --demo{demo_dir}   every fill, P&L per coin",
              (f"  uv run gradient-pipeline ui --demo{demo_dir}   Dagster UI on the demo (DAGSTER_HOME={home}, its "
               "windows only): group monitoring — fills, live_positions, live_exposure, pnl_and_drawdown (Plots "
               "tab: one point per cycle), performance_report; Runs tagged gradient/demo")]
    print("\n".join(lines), flush=True)
    return {"account_value": av, "pnl": pnl, "rebalances": reb.to_dict("records")}
