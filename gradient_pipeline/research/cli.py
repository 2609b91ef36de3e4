"""`gradient-pipeline backtest` and `gradient-pipeline sweep`: research runs over stored or freqtrade history."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, help="configuration file (default $GRADIENT_CONFIG or config/gradient_live.json)")
    p.add_argument("--source", choices=["duckdb", "freqtrade"], default="duckdb",
                   help="history from the DuckDB tables (default) or a freqtrade directory")
    p.add_argument("--path", default=None, help="freqtrade data directory (…/futures) for --source freqtrade")
    p.add_argument("--out", default="reports", help="directory for the PNG/CSV outputs (default: reports/)")
    p.add_argument("--no-store", action="store_true", help="do not write the results to DuckDB")


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("backtest", help="backtest the configured strategy net of fees, slippage and funding",
                              description="Backtest over bars with open time in [START, END); writes equity.png, "
                                          "bars.csv and metrics.json to --out and the tables backtest_runs / backtest_equity.")
    p.add_argument("--start", required=True, help="first bar, UTC (weights start flat here; signals use all earlier history)")
    p.add_argument("--end", required=True, help="exclusive end, UTC")
    _common(p)
    p.set_defaults(handler=_backtest)
    s = subparsers.add_parser("sweep", help="sensitivity sweep over the strategy's parameters, in/out of sample",
                              description="Grid of configurations (concentration, rebalance interval, weighting, span "
                                          "subsets, band, smoothing) net of costs; in-sample winner and its out-of-sample result.")
    s.add_argument("--start", default=None, help="first bar (default: first stored bar)")
    s.add_argument("--end", default=None, help="exclusive end (default: all history)")
    s.add_argument("--split", required=True, help="in-sample / out-of-sample split, UTC")
    s.add_argument("--folds", type=int, default=4, help="walk-forward folds over the out-of-sample period")
    s.add_argument("--grid", choices=["full", "small"], default="full", help="full: 768 choices × every rebalance phase = 2,304 configurations; small: 16 choices = 56")
    s.add_argument("--workers", type=int, default=2, help="threads running configurations (numba releases the GIL)")
    _common(s)
    s.set_defaults(handler=_sweep)
    r = subparsers.add_parser("research", help="research reports (`research report`: every README research figure)")
    rsub = r.add_subparsers(dest="research_command", required=True)
    rep = rsub.add_parser("report", help="write every research table the README shows (report.md, report.json)",
                          description="Strategy backtests, capital scaling as live trades, IOC vs passive-first "
                                      "execution and the sweep with its overfitting diagnostics, from one command.")
    rep.add_argument("--start", default="2023-06-01", help="first bar of every run (default 2023-06-01)")
    rep.add_argument("--end", default="2025-07-27", help="exclusive end (default: past the shared data's last bar)")
    rep.add_argument("--split", default="2024-10-01", help="sweep in-sample / out-of-sample split")
    rep.add_argument("--hourly-path", default=None,
                     help="freqtrade directory with 1h candles for the passive-fill model (default: --path)")
    rep.add_argument("--quick", action="store_true", help="short periods and the small grid (minutes, not tens)")
    rep.add_argument("--workers", type=int, default=2)
    _common(rep)
    rep.set_defaults(handler=_report)
    tr = rsub.add_parser("track", help="paper (real rebalance loop on the local exchange) vs backtest over N 4h "
                                       "windows: per-window difference, tracking error and its decomposition",
                         description="Runs the real rebalance loop (execution.runner) against an in-process local "
                                     "exchange on recorded data, stepping its replay clock window by window, and the "
                                     "as-live backtest over the same windows with the same costs; writes "
                                     "tracking_windows.csv and tracking_summary.json to --out/research-track and "
                                     "stores the summary as tracking_error.json beside the DuckDB file, where the "
                                     "underperformance check reads its sigma.")
    tr.add_argument("--path", default=None, help="freqtrade data directory (…/futures); default data.freqtrade_dir")
    tr.add_argument("--start", default=None, help="open time of the first window, UTC, on the 4h grid "
                                                 "(default 2025-06-01 00:00)")
    tr.add_argument("--windows", type=int, default=60, help="consecutive 4h windows (default 60)")
    tr.add_argument("--coins", default=None, help="comma-separated coins (default: 20 liquid perps, see docs)")
    tr.add_argument("--execution", choices=["ioc", "passive"], default="ioc",
                    help="ioc: IOC orders; passive: post-only at the touch first (the wait is a 1h replay-clock step)")
    tr.add_argument("--capital", type=float, default=None, help="starting capital, USD (default capital_usd)")
    tr.add_argument("--exchange-fees", default=None, metavar="TAKER,MAKER",
                    help="fees the local exchange charges, bp (default: the configuration's costs; the backtest "
                         "always uses the configuration's) — to see a mismatch land in the fees column")
    tr.add_argument("--config", default=None, help="configuration file (default $GRADIENT_CONFIG or config/gradient_live.json)")
    tr.add_argument("--out", default="reports", help="output directory (default: reports/)")
    tr.add_argument("--no-store", action="store_true",
                    help="do not replace tracking_error.json (the underperformance check's sigma)")
    tr.set_defaults(handler=_track)


def _load(args, cfg):
    from gradient_pipeline.research import data

    if args.source == "freqtrade":
        path = args.path or cfg.data.freqtrade_dir
        if not path:
            raise ValueError("--source freqtrade needs --path DIR (or data.freqtrade_dir in the configuration)")
        return data.load_panel_freqtrade(path, end=args.end)
    if args.path:
        raise ValueError("--path is only for --source freqtrade")
    from gradient_pipeline.storage.db import connect

    with connect(cfg.resolved_duckdb_path, read_only=True) as conn:
        return data.load_panel_duckdb(conn, end=args.end)


def _store(cfg, fn) -> None:
    from gradient_pipeline.storage.db import connect

    with connect(cfg.resolved_duckdb_path, wait_s=30) as conn:
        fn(conn)


def _backtest(args) -> int:
    import json

    from gradient_pipeline.config import load_config
    from gradient_pipeline.research import runner, store

    cfg = load_config(args.config)
    panel = _load(args, cfg)
    run = runner.backtest(panel, cfg, args.start, args.end)
    out = Path(args.out) / f"backtest-{run.run_id}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "equity.png").write_bytes(run.chart_png)
    run.result.bars.to_csv(out / "bars.csv")
    (out / "metrics.json").write_text(json.dumps(run.result.metrics, indent=2))
    if not args.no_store:
        _store(cfg, lambda conn: store.write_backtest(conn, run.run_id, run.result, run.config))
    m = run.result.metrics
    print(f"backtest {run.run_id}: {m['start']} … {m['end']} ({m['n_bars']} bars)")
    labels = {"sharpe": "Sharpe, net of all costs", "sharpe_gross": "Sharpe, gross (before funding and trading)",
              "sharpe_gross_after_funding": "Sharpe, gross after funding", "annual_return": "annual return, net, geometric",
              "annual_return_arithmetic": "annual return, net, arithmetic", "annual_return_gross": "annual return, gross, geometric",
              "annual_vol": "annual vol, net", "max_drawdown": "max drawdown", "turnover_per_bar": "turnover per bar",
              "avg_gross_exposure": "average gross exposure", "fees_paid": "fees paid (× capital)",
              "funding_paid": "funding paid (× capital)", "slippage_paid": "slippage paid (× capital)"}
    for k, label in labels.items():
        print(f"  {k:27s} {m[k]: .4f}   {label}")
    print(f"  chart: {out / 'equity.png'}")
    return 0


def _sweep(args) -> int:
    from gradient_pipeline.config import load_config
    from gradient_pipeline.research import runner, store

    cfg = load_config(args.config)
    panel = _load(args, cfg)
    run = runner.sweep(panel, cfg, runner.GRIDS[args.grid], args.split, args.start, args.end, args.folds, args.workers)
    out = Path(args.out) / f"sweep-{run.sweep_id}"
    out.mkdir(parents=True, exist_ok=True)
    run.result.table.to_csv(out / "results.csv", index=False)
    for name, png in run.heatmaps.items():
        (out / f"heatmap_{name}.png").write_bytes(png)
    if not args.no_store:
        _store(cfg, lambda conn: store.write_sweep(conn, run.sweep_id, run.result, run.seconds))
    n = len(run.result.table)
    print(f"sweep {run.sweep_id}: {n} configurations in {run.seconds:.1f} s ({n / run.seconds:.1f} configs/s)")
    print(run.result.statement())
    print(f"  results: {out}")
    return 0


def _report(args) -> int:
    from gradient_pipeline.config import load_config
    from gradient_pipeline.research.report import build_report

    cfg = load_config(args.config)
    panel = _load(args, cfg)
    hourly = args.hourly_path or (args.path if args.source == "freqtrade" else None) or cfg.data.freqtrade_dir
    out = Path(args.out) / "research-report"
    track = args.path if args.source == "freqtrade" else cfg.data.freqtrade_dir
    build_report(panel, cfg, out, hourly_dir=hourly, start=args.start, end=args.end, split=args.split,
                 quick=args.quick, workers=args.workers, track_dir=track)
    print((out / "report.md").read_text())
    print(f"written: {out / 'report.md'}, {out / 'report.json'}, {out / 'sweep_results.csv'}")
    return 0


def _track(args) -> int:
    from gradient_pipeline.config import load_config
    from gradient_pipeline.research import tracking

    cfg = load_config(args.config)
    path = args.path or cfg.data.freqtrade_dir
    if not path:
        raise ValueError("research track needs --path DIR (a freqtrade …/futures directory) or data.freqtrade_dir "
                         "in the configuration")
    if args.capital is not None:
        cfg = cfg.model_copy(update={"capital_usd": float(args.capital)})
    fees = None
    if args.exchange_fees:
        try:
            taker, maker = (float(x) for x in args.exchange_fees.split(","))
        except ValueError:
            raise ValueError(f"--exchange-fees {args.exchange_fees!r}: expected TAKER,MAKER in bp, e.g. 6,2") from None
        fees = (taker, maker)
    coins = [c.strip() for c in args.coins.split(",") if c.strip()] if args.coins else None
    res = tracking.run_tracking(path, cfg, start=args.start or tracking.DEFAULT_START, windows=args.windows,
                                coins=coins, execution=args.execution, exchange_fees_bps=fees)
    out = Path(args.out) / "research-track"
    out.mkdir(parents=True, exist_ok=True)
    res.windows.to_csv(out / "tracking_windows.csv", index=False)
    (out / "tracking_summary.json").write_text(json.dumps(res.summary, indent=2, default=str))
    tracking.render(res.summary)
    print(f"written: {out / 'tracking_windows.csv'}, {out / 'tracking_summary.json'}")
    if args.no_store:
        print("not stored (--no-store): the underperformance check keeps its previous sigma")
    else:
        print(f"stored for the underperformance check: {tracking.write_latest(cfg, res.summary)}")
    return 0
