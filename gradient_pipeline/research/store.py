"""Research result tables in DuckDB: `backtest_runs`, `backtest_equity`, `sweep_runs`, `sweep_results`."""

from __future__ import annotations

import json

import pandas as pd

from gradient_pipeline.storage.db import ensure_tables, replace_rows

DDL = """
CREATE TABLE IF NOT EXISTS backtest_runs (
    run_id VARCHAR PRIMARY KEY, created_at TIMESTAMP NOT NULL, start_ts TIMESTAMP, end_ts TIMESTAMP,
    n_bars INTEGER, sharpe DOUBLE, sharpe_gross DOUBLE, annual_return DOUBLE, annual_return_gross DOUBLE,
    annual_vol DOUBLE, max_drawdown DOUBLE, total_return DOUBLE, total_return_gross DOUBLE,
    turnover_per_bar DOUBLE, fees_paid DOUBLE, funding_paid DOUBLE, slippage_paid DOUBLE,
    avg_gross_exposure DOUBLE, config_json VARCHAR
);
CREATE TABLE IF NOT EXISTS backtest_equity (
    run_id VARCHAR NOT NULL, ts TIMESTAMP NOT NULL, gross DOUBLE, funding DOUBLE, fees DOUBLE, slippage DOUBLE,
    net DOUBLE, turnover DOUBLE, equity DOUBLE, gross_exposure DOUBLE, net_exposure DOUBLE,
    PRIMARY KEY (run_id, ts)
);
CREATE TABLE IF NOT EXISTS sweep_runs (
    sweep_id VARCHAR PRIMARY KEY, created_at TIMESTAMP NOT NULL, start_ts TIMESTAMP, split_ts TIMESTAMP,
    end_ts TIMESTAMP, n_configs INTEGER, seconds DOUBLE, winner_config_id INTEGER, statement VARCHAR,
    walk_forward_json VARCHAR
);
CREATE TABLE IF NOT EXISTS sweep_results (
    sweep_id VARCHAR NOT NULL, config_id INTEGER NOT NULL, span_set VARCHAR, concentration_pct DOUBLE,
    rebalance_hours INTEGER, weight_scheme VARCHAR, band_pct DOUBLE, smoothing DOUBLE,
    is_sharpe DOUBLE, is_annual_return DOUBLE, is_annual_vol DOUBLE, is_sharpe_gross DOUBLE, is_max_drawdown DOUBLE,
    is_turnover DOUBLE, is_fees DOUBLE, is_funding DOUBLE, is_slippage DOUBLE,
    oos_sharpe DOUBLE, oos_annual_return DOUBLE, oos_annual_vol DOUBLE, oos_sharpe_gross DOUBLE,
    oos_max_drawdown DOUBLE, oos_turnover DOUBLE, oos_fees DOUBLE, oos_funding DOUBLE, oos_slippage DOUBLE,
    PRIMARY KEY (sweep_id, config_id)
);
"""

RUN_METRICS = ["n_bars", "sharpe", "sharpe_gross", "annual_return", "annual_return_gross", "annual_vol",
               "max_drawdown", "total_return", "total_return_gross", "turnover_per_bar", "fees_paid",
               "funding_paid", "slippage_paid", "avg_gross_exposure"]


def ensure(conn) -> None:
    ensure_tables(conn, DDL)


def write_backtest(conn, run_id: str, result, config: dict) -> None:
    ensure(conn)
    m = result.metrics
    row = {"run_id": run_id, "created_at": pd.Timestamp.now("UTC").tz_localize(None),
           "start_ts": pd.Timestamp(m["start"]), "end_ts": pd.Timestamp(m["end"]),
           **{k: m.get(k) for k in RUN_METRICS}, "config_json": json.dumps(config, sort_keys=True, default=str)}
    replace_rows(conn, "backtest_runs", pd.DataFrame([row]), "run_id = ?", [run_id])
    eq = result.bars.reset_index().assign(run_id=run_id)
    eq["ts"] = eq["ts"].astype("datetime64[ns]")
    cols = ["run_id", "ts", "gross", "funding", "fees", "slippage", "net", "turnover", "equity", "gross_exposure",
            "net_exposure"]
    replace_rows(conn, "backtest_equity", eq[cols], "run_id = ?", [run_id])


def write_sweep(conn, sweep_id: str, result, seconds: float) -> None:
    ensure(conn)
    t = result.table.assign(sweep_id=sweep_id)
    # the stored columns are the table's schema (existing databases have it); the per-phase, per-period and
    # exposure columns are in the sweep's results.csv and report, not here
    metrics = [f"{tag}_{m}" for tag in ("is", "oos") for m in ("sharpe", "annual_return", "annual_vol", "sharpe_gross",
                                                                 "max_drawdown", "turnover", "fees", "funding", "slippage")]
    cols = ["sweep_id", "config_id", "span_set", "concentration_pct", "rebalance_hours", "weight_scheme", "band_pct",
            "smoothing"] + metrics
    replace_rows(conn, "sweep_results", t[cols], "sweep_id = ?", [sweep_id])
    wf = result.walk_forward.assign(start=lambda d: d["start"].astype(str), end=lambda d: d["end"].astype(str)) \
        if len(result.walk_forward) else result.walk_forward
    row = {"sweep_id": sweep_id, "created_at": pd.Timestamp.now("UTC").tz_localize(None),
           "start_ts": result.times[0], "split_ts": result.split, "end_ts": result.times[-1],
           "n_configs": len(t), "seconds": seconds, "winner_config_id": int(result.winner().config_id),
           "statement": result.statement(), "walk_forward_json": wf.to_json(orient="records")}
    replace_rows(conn, "sweep_runs", pd.DataFrame([row]), "sweep_id = ?", [sweep_id])
