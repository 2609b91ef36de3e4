"""Dashboard assets (group `monitoring`): the live book as asset metadata the UI plots over time.

`equity_snapshot` reads the account from the exchange (master address, no key) and records a mark-to-market
snapshot in the ledger (`equity`, `positions`, source `monitor`) and the high-water mark; it then evaluates the
snapshot's alert conditions (drawdown re-arm, position drift, slippage of recent rebalances). The four assets
downstream read the ledger only and publish NUMERIC metadata (plotted on each asset's page) plus tables.
They are materialised by `monitor_job`, launched by `equity_sensor` every `risk.equity_sensor_interval_s`.
`performance_report` renders charts (equity with the backtest band, drawdown, exposure) to HTML and PNG.
"""


import base64
from pathlib import Path

import dagster as dg
import pandas as pd

from gradient_pipeline.defs.resources import GradientResource

GROUP = "monitoring"


def _num(x) -> float:
    return float(x) if x is not None and x == x else 0.0


@dg.asset(group_name=GROUP, kinds={"hyperliquid", "sqlalchemy"})
def equity_snapshot(context: dg.AssetExecutionContext, gradient: GradientResource) -> dg.MaterializeResult:
    """Mark-to-market account value (unrealised PnL and funding included) from the exchange, recorded in the
    ledger with the high-water mark; evaluates drift, slippage and drawdown re-arm alerts."""
    from gradient_pipeline.monitoring.account import open_trading
    from gradient_pipeline.monitoring.equity import record_equity
    from gradient_pipeline.monitoring.review import review_snapshot
    from gradient_pipeline.timegrid import from_ms

    cfg = gradient.config
    trading = open_trading(cfg, signer=False)
    account = trading.account_state()
    ts = from_ms(account.time_ms) if account.time_ms else trading.server_time()
    with gradient.book() as conn:
        state = record_equity(conn, account, ts, "monitor")
        deliveries = review_snapshot(conn, cfg, account, state)
    for d in deliveries:
        context.log.info(f"alert {d.key}: {d.status}")
    return dg.MaterializeResult(metadata={
        "account_value_usd": float(account.account_value),
        "high_water_mark_usd": _num(state.hwm),
        "drawdown_pct": _num(state.drawdown_pct),
        "n_positions": len(account.positions),
        "exchange_time": str(ts),
        "alerts": dg.MetadataValue.json([{"key": d.key, "status": d.status} for d in deliveries]),
    })


def _latest_positions(conn) -> pd.DataFrame:
    """Positions of the newest snapshot (keyed by the newest `equity` row, so a flat snapshot shows no rows)."""
    from gradient_pipeline.monitoring.equity import latest_positions

    return latest_positions(conn)


def _table(df: pd.DataFrame, limit: int = 60) -> dg.MetadataValue:
    df = df.head(limit)
    records = [dg.TableRecord({k: (None if (isinstance(v, float) and v != v) else (v if isinstance(v, (int, float, str, bool)) or v is None else str(v)))
                               for k, v in row.items()}) for row in df.to_dict("records")]
    schema = dg.TableSchema(columns=[
        dg.TableColumn(c, "float" if pd.api.types.is_float_dtype(df[c]) else
                       "int" if pd.api.types.is_integer_dtype(df[c]) else "string") for c in df.columns
    ])
    return dg.MetadataValue.table(records, schema)


@dg.asset(group_name=GROUP, deps=[equity_snapshot], kinds={"sqlalchemy"})
def live_positions(gradient: GradientResource) -> dg.MaterializeResult:
    """Positions at the newest snapshot: size, value, unrealised PnL, weight vs target."""
    with gradient.book() as conn:
        df = _latest_positions(conn)
    return dg.MaterializeResult(metadata={
        "positions": _table(df),
        "n_positions": len(df),
        "n_long": int((df["szi"] > 0).sum()) if len(df) else 0,
        "n_short": int((df["szi"] < 0).sum()) if len(df) else 0,
        "largest_abs_weight": float(df["weight"].abs().max()) if len(df) else 0.0,
        "unrealized_pnl_usd": float(df["unrealized_pnl_usd"].sum()) if len(df) else 0.0,
        "dagster/row_count": len(df),
    })


@dg.asset(group_name=GROUP, deps=[equity_snapshot], kinds={"sqlalchemy"})
def live_exposure(gradient: GradientResource) -> dg.MaterializeResult:
    """Long, short, gross and net exposure (USD and % of account value) and leverage at the newest snapshot."""
    from gradient_pipeline.monitoring.equity import latest_equity

    with gradient.book() as conn:
        df = _latest_positions(conn)
        last = latest_equity(conn)
    av = last[1] if last else 0.0
    longs = float(df.loc[df["szi"] > 0, "position_value_usd"].sum()) if len(df) else 0.0
    shorts = float(df.loc[df["szi"] < 0, "position_value_usd"].sum()) if len(df) else 0.0
    pct = (lambda x: 100.0 * x / av) if av else (lambda x: 0.0)
    return dg.MaterializeResult(metadata={
        "long_usd": longs, "short_usd": shorts, "gross_usd": longs + shorts, "net_usd": longs - shorts,
        "long_pct": pct(longs), "short_pct": pct(shorts), "gross_pct": pct(longs + shorts),
        "net_pct": pct(longs - shorts), "leverage": (longs + shorts) / av if av else 0.0,
        "account_value_usd": float(av),
    })


@dg.asset(group_name=GROUP, deps=[equity_snapshot], kinds={"sqlalchemy"})
def pnl_and_drawdown(gradient: GradientResource) -> dg.MaterializeResult:
    """Account value, high-water mark, drawdown, PnL over the last 24h and since the first snapshot, fees."""
    from gradient_pipeline.book.ledger import fees_since
    from gradient_pipeline.monitoring.equity import equity_history, equity_state

    with gradient.book() as conn:
        st = equity_state(conn)
        hist = equity_history(conn)
        fees = fees_since(conn, pd.Timestamp(st.ts) - pd.Timedelta(hours=24)) if st.ts is not None else 0.0
    pnl_24h = pnl_all = 0.0
    if len(hist) and st.ts is not None:
        hist["ts"] = pd.to_datetime(hist["ts"])
        before = hist[hist["ts"] <= pd.Timestamp(st.ts) - pd.Timedelta(hours=24)]
        ref = before.iloc[-1]["account_value_usd"] if len(before) else hist.iloc[0]["account_value_usd"]
        pnl_24h = float(st.account_value - ref)
        pnl_all = float(st.account_value - hist.iloc[0]["account_value_usd"])
    return dg.MaterializeResult(metadata={
        "account_value_usd": _num(st.account_value), "high_water_mark_usd": _num(st.hwm),
        "drawdown_pct": _num(st.drawdown_pct), "pnl_24h_usd": pnl_24h, "pnl_since_start_usd": pnl_all,
        "fees_24h_usd": float(fees), "snapshot_time": str(st.ts),
    })


STATUSES = ("complete", "partial", "refused", "failed", "running")


@dg.asset(group_name=GROUP, deps=[equity_snapshot], kinds={"sqlalchemy"})
def recent_rebalances(gradient: GradientResource) -> dg.MaterializeResult:
    """The last 20 rebalances with status and reason; counts per status (numeric) for the UI's plots."""
    from gradient_pipeline.book.ledger import recent_rebalances as read_recent

    with gradient.book() as conn:
        df = read_recent(conn, 20)
    md: dict = {"rebalances": _table(df.astype({c: str for c in df.columns if "_ts" in c or c.endswith("_at")}))}
    for s in STATUSES:
        md[f"n_{s}_last20"] = int((df["status"] == s).sum()) if len(df) else 0
    if len(df):
        last = df.iloc[0]
        md.update({"last_status": str(last["status"]), "last_rebalance_id": str(last["rebalance_id"]),
                   "last_orders": int(_num(last["n_orders"])), "last_fills": int(_num(last["n_fills"])),
                   "last_ok": int(last["status"] in ("complete", "partial"))})
    return dg.MaterializeResult(metadata=md)


@dg.asset(group_name=GROUP, deps=[equity_snapshot], kinds={"sqlalchemy", "duckdb", "matplotlib"})
def performance_report(context: dg.AssetExecutionContext, gradient: GradientResource) -> dg.MaterializeResult:
    """Charts of equity (with the backtest's expectation band), drawdown and exposure: an HTML file beside the
    DuckDB file (`reports/performance_report.html`) and the PNG in this asset's metadata; live vs backtest z."""
    from gradient_pipeline.monitoring.equity import equity_history
    from gradient_pipeline.monitoring.performance import (
        compare,
        expectation_band,
        live_bar_equity,
        load_backtest_net,
        render_report,
    )

    cfg = gradient.config
    with gradient.book() as conn:
        hist = equity_history(conn)
    try:  # the backtest is analytics: DuckDB
        with gradient.db(read_only=True) as duck:
            bt = load_backtest_net(duck, since=hist["ts"].min() if len(hist) else None)
    except FileNotFoundError:
        bt = None
    band, comp = None, None
    if bt is not None and len(hist):
        bars = live_bar_equity(hist)
        band = expectation_band(bars, bt, cfg.alerts.underperformance_sigma)
        comp = compare(bars, bt)
    out_dir = Path(gradient.db_path).resolve().parent / "reports"
    png, html = render_report(hist, band, out_dir, f"gradient-pipeline {cfg.mode} ({cfg.network})")
    b64 = base64.b64encode(png.read_bytes()).decode()
    md = {
        "report_html": dg.MetadataValue.path(str(html)),
        "chart": dg.MetadataValue.md(f"![performance](data:image/png;base64,{b64})"),
        "n_snapshots": len(hist),
        "backtest_available": bt is not None,
    }
    if comp is not None:
        md.update({"live_return_pct": 100 * comp.live_return, "backtest_return_pct": 100 * comp.expected_return,
                   "z_vs_backtest": comp.z, "compared_bars": comp.n_bars})
    context.log.info(f"performance report written to {html}")
    return dg.MaterializeResult(metadata=md)


DASHBOARD_ASSETS = [equity_snapshot, live_positions, live_exposure, pnl_and_drawdown, recent_rebalances]
