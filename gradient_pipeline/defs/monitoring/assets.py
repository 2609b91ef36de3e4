"""Dashboard assets (group `monitoring`): the live book as asset metadata the UI plots over time.

`equity_snapshot` reads the account from the exchange (master address, no key) and records a mark-to-market
snapshot in the ledger (`equity`, `positions`, source `monitor`) and the high-water mark; it then evaluates the
snapshot's alert conditions (drawdown re-arm, position drift, slippage of recent rebalances). The four assets
downstream read the ledger only and publish NUMERIC metadata (plotted on each asset's page) plus tables.
They are materialised by `monitor_job`, launched by `equity_sensor` every `risk.equity_sensor_interval_s`.
`fills` is the trades view (recent fills, P&L per coin with funding). `performance_report` renders the HTML report
(tables and charts with the backtest band). Numbers are rounded and carry their unit in the key (`_usd`, `_pct`,
`_x`). Dagster plots numeric metadata one point per materialisation, so every monitor run adds a point to the
Plots tab of each asset (the demo runs `monitor_job` after every cycle, the drill after every step).
"""


import base64
from pathlib import Path

import dagster as dg
import pandas as pd

from gradient_pipeline.defs.resources import GradientResource

GROUP = "monitoring"


def _num(x) -> float:
    return float(x) if x is not None and x == x else 0.0


def usd(x) -> float:
    """USD metadata: cents (no `0.35000000000000003`, no `-3.47e-17`; −0.0 shows as 0.0)."""
    return round(_num(x), 2) + 0.0


def pct(x) -> float:
    """Percent metadata: three decimals."""
    return round(_num(x), 3) + 0.0


def ratio(x) -> float:
    """Plain ratios (leverage ×, weights): four decimals."""
    return round(_num(x), 4) + 0.0


def _round_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Round a table for display: *_usd cents, *_pct 3 dp, weights 4 dp, sizes/prices 8 significant digits."""
    out = df.copy()
    for c in out.columns:
        if not pd.api.types.is_float_dtype(out[c]):
            continue
        if c.endswith("_usd"):
            out[c] = out[c].round(2) + 0.0
        elif c.endswith("_pct"):
            out[c] = out[c].round(3) + 0.0
        elif "weight" in c or c in ("leverage",):
            out[c] = out[c].round(4) + 0.0
        else:
            out[c] = out[c].map(lambda v: float(f"{v:.8g}") if v == v else v)
    return out


@dg.asset(group_name=GROUP, kinds={"hyperliquid", "sqlalchemy"})
def equity_snapshot(context: dg.AssetExecutionContext, gradient: GradientResource) -> dg.MaterializeResult:
    """Mark-to-market account value (unrealised PnL and funding included) from the exchange, recorded in the
    ledger with the high-water mark; fetches the account's new funding payments into the book; evaluates drift,
    slippage and drawdown re-arm alerts. One materialisation per snapshot: the asset page's Plots tab shows the
    account value, drawdown and exposure over time (x axis: when the snapshot ran; `exchange_time`: its
    exchange-clock time)."""
    from gradient_pipeline.book.funding import sync_account_funding
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
        try:  # funding is bookkeeping: a failed fetch must not cost the safety snapshot above, but it is shown
            funding = f"{sync_account_funding(conn, trading)} new payments"
        except Exception as err:  # noqa: BLE001
            funding = f"FAILED: {type(err).__name__}: {err}"[:300]
            context.log.warning(f"funding payments not fetched: {funding}")
    for d in deliveries:
        context.log.info(f"alert {d.key}: {d.status}")
    gross = sum(abs(p.position_value) for p in account.positions.values())
    net = sum(p.position_value if p.szi > 0 else -abs(p.position_value) for p in account.positions.values())
    return dg.MaterializeResult(metadata={
        "account_value_usd": usd(account.account_value),
        "high_water_mark_usd": usd(state.hwm),
        "drawdown_pct": pct(state.drawdown_pct),
        "gross_exposure_usd": usd(gross),
        "net_exposure_usd": usd(net),
        "n_positions": len(account.positions),
        "exchange_time": f"{pd.Timestamp(ts):%Y-%m-%d %H:%M:%S} UTC",
        "funding_sync": funding,
        "alerts": dg.MetadataValue.json([{"key": d.key, "status": d.status} for d in deliveries]),
    })


def _latest_positions(conn) -> pd.DataFrame:
    """Positions of the newest snapshot (keyed by the newest `equity` row, so a flat snapshot shows no rows)."""
    from gradient_pipeline.monitoring.equity import latest_positions

    return latest_positions(conn)


def _table(df: pd.DataFrame, limit: int = 60) -> dg.MetadataValue:
    df = _round_frame(df.head(limit))
    records = [dg.TableRecord({k: (None if (isinstance(v, float) and v != v) else (v if isinstance(v, (int, float, str, bool)) or v is None else str(v)))
                               for k, v in row.items()}) for row in df.to_dict("records")]
    schema = dg.TableSchema(columns=[
        dg.TableColumn(c, "float" if pd.api.types.is_float_dtype(df[c]) else
                       "int" if pd.api.types.is_integer_dtype(df[c]) else "string") for c in df.columns
    ])
    return dg.MetadataValue.table(records, schema)


def _snapshot_time(conn) -> str:
    from gradient_pipeline.monitoring.equity import latest_equity

    last = latest_equity(conn)
    return f"{pd.Timestamp(last[0]):%Y-%m-%d %H:%M:%S} UTC ({last[2]})" if last else "no snapshot yet"


@dg.asset(group_name=GROUP, deps=[equity_snapshot], kinds={"sqlalchemy"})
def live_positions(gradient: GradientResource) -> dg.MaterializeResult:
    """Positions at the newest snapshot of the book (a monitor run, a rebalance's end or an emergency stop — so a
    flattened account shows 0 positions): size, value (USD), unrealised PnL (USD), weight vs target."""
    with gradient.book() as conn:
        df = _latest_positions(conn)
        when = _snapshot_time(conn)
    return dg.MaterializeResult(metadata={
        "positions": _table(df),
        "snapshot": when,
        "n_positions": len(df),
        "n_long": int((df["szi"] > 0).sum()) if len(df) else 0,
        "n_short": int((df["szi"] < 0).sum()) if len(df) else 0,
        "largest_abs_weight": ratio(df["weight"].abs().max()) if len(df) else 0.0,
        "unrealized_pnl_usd": usd(df["unrealized_pnl_usd"].sum()) if len(df) else 0.0,
        "dagster/row_count": len(df),
    })


@dg.asset(group_name=GROUP, deps=[equity_snapshot], kinds={"sqlalchemy"})
def live_exposure(gradient: GradientResource) -> dg.MaterializeResult:
    """Long, short, gross and net exposure (USD and % of account value) and leverage (×) at the newest snapshot
    of the book (0 after a flatten)."""
    from gradient_pipeline.monitoring.equity import latest_equity

    with gradient.book() as conn:
        df = _latest_positions(conn)
        last = latest_equity(conn)
        when = _snapshot_time(conn)
    av = last[1] if last else 0.0
    longs = float(df.loc[df["szi"] > 0, "position_value_usd"].sum()) if len(df) else 0.0
    shorts = float(df.loc[df["szi"] < 0, "position_value_usd"].sum()) if len(df) else 0.0
    share = (lambda x: 100.0 * x / av) if av else (lambda x: 0.0)
    return dg.MaterializeResult(metadata={
        "long_usd": usd(longs), "short_usd": usd(shorts), "gross_usd": usd(longs + shorts),
        "net_usd": usd(longs - shorts), "long_pct": pct(share(longs)), "short_pct": pct(share(shorts)),
        "gross_pct": pct(share(longs + shorts)), "net_pct": pct(share(longs - shorts)),
        "leverage_x": ratio((longs + shorts) / av if av else 0.0), "n_positions": len(df),
        "account_value_usd": usd(av), "snapshot": when,
    })


def _history_table(hist: pd.DataFrame, limit: int = 60) -> dg.MetadataValue:
    """The newest `limit` snapshots as a table (exchange-clock time, account value, drawdown, exposure)."""
    from gradient_pipeline.monitoring.equity import drawdown_series

    if hist.empty:
        return _table(pd.DataFrame(columns=["time_utc", "source", "account_value_usd", "drawdown_pct",
                                            "gross_exposure_usd", "net_exposure_usd", "n_positions"]))
    h = hist.sort_values("ts", kind="stable").drop_duplicates("ts", keep="last").reset_index(drop=True)
    h["drawdown_pct"] = drawdown_series(h["account_value_usd"].astype(float)).to_numpy()
    h["time_utc"] = pd.to_datetime(h["ts"]).dt.strftime("%Y-%m-%d %H:%M")
    cols = ["time_utc", "source", "account_value_usd", "drawdown_pct", "gross_exposure_usd", "net_exposure_usd",
            "n_positions"]
    return _table(h[cols].iloc[::-1].reset_index(drop=True), limit)


@dg.asset(group_name=GROUP, deps=[equity_snapshot], kinds={"sqlalchemy"})
def pnl_and_drawdown(gradient: GradientResource) -> dg.MaterializeResult:
    """Account value, high-water mark, drawdown, P&L over the last 24h and since the first snapshot (USD), and its
    parts from the book: realised, unrealised, funding (+ received) and fees; the newest 60 snapshots as a table
    (`equity_history`, exchange-clock times) — the series the Plots tab draws one point per run of."""
    from gradient_pipeline.book.funding import funding_by_coin, funding_synced
    from gradient_pipeline.book.ledger import fees_since
    from gradient_pipeline.book.trades import pnl_by_coin
    from gradient_pipeline.monitoring.equity import equity_history, equity_state

    with gradient.book() as conn:
        st = equity_state(conn)
        hist = equity_history(conn)
        fees = fees_since(conn, pd.Timestamp(st.ts) - pd.Timedelta(hours=24)) if st.ts is not None else 0.0
        per_coin = pnl_by_coin(conn)
        synced = funding_synced(conn)
        funding_total = float(funding_by_coin(conn)["funding_usd"].sum()) if synced else None
    pnl_24h = pnl_all = 0.0
    if len(hist) and st.ts is not None:
        hist["ts"] = pd.to_datetime(hist["ts"])
        before = hist[hist["ts"] <= pd.Timestamp(st.ts) - pd.Timedelta(hours=24)]
        ref = before.iloc[-1]["account_value_usd"] if len(before) else hist.iloc[0]["account_value_usd"]
        pnl_24h = float(st.account_value - ref)
        pnl_all = float(st.account_value - hist.iloc[0]["account_value_usd"])
    md = {
        "account_value_usd": usd(st.account_value), "high_water_mark_usd": usd(st.hwm),
        "drawdown_pct": pct(st.drawdown_pct), "pnl_24h_usd": usd(pnl_24h), "pnl_since_start_usd": usd(pnl_all),
        "realised_pnl_usd": usd(per_coin["realised_usd"].sum()) if len(per_coin) else 0.0,
        "unrealised_pnl_usd": usd(per_coin["unrealised_usd"].sum()) if len(per_coin) else 0.0,
        "fees_paid_usd": usd(per_coin["fees_usd"].sum()) if len(per_coin) else 0.0,
        "fees_24h_usd": usd(fees),
        "snapshot_time": f"{pd.Timestamp(st.ts):%Y-%m-%d %H:%M:%S} UTC" if st.ts is not None else "no snapshot yet",
        "n_snapshots": int(hist["ts"].nunique()) if len(hist) else 0,
        "equity_history": _history_table(hist),
    }
    if funding_total is not None:  # never fetched: leave it out rather than plot a false 0
        md["funding_usd"] = usd(funding_total)
    else:
        md["funding"] = "not fetched yet (the next monitor run fetches it)"
    return dg.MaterializeResult(metadata=md)


@dg.asset(group_name=GROUP, deps=[equity_snapshot], kinds={"sqlalchemy"})
def fills(gradient: GradientResource) -> dg.MaterializeResult:
    """The trades view: the newest 50 fills from the book (time UTC, coin, side, size, price, notional, fee,
    maker/taker, closed P&L, rebalance) and P&L per coin in USD — realised (the exchange's closedPnl), unrealised
    (newest positions snapshot), funding (+ received, from the book's funding payments) and fees, with
    net = realised + unrealised + funding − fees. Same figures as `gradient-pipeline trades`."""
    from gradient_pipeline.book.funding import funding_synced
    from gradient_pipeline.book.trades import fills_list, pnl_by_coin

    with gradient.book() as conn:
        fl = fills_list(conn)
        per_coin = pnl_by_coin(conn)
        synced = funding_synced(conn)
        when = _snapshot_time(conn)
    recent = fl.iloc[::-1].head(50).reset_index(drop=True)
    if len(recent):
        recent["time"] = pd.to_datetime(recent["time"]).dt.strftime("%Y-%m-%d %H:%M:%S")
    recent = recent.rename(columns={"time": "time_utc", "sz": "size", "px": "price"})
    per_coin = per_coin.copy()
    per_coin["net_usd"] = (per_coin["realised_usd"] + per_coin["unrealised_usd"] + per_coin["funding_usd"]
                           - per_coin["fees_usd"])
    if not synced:
        per_coin["funding_usd"] = float("nan")  # shown empty: never fetched is not 0
    tot = per_coin[["volume_usd", "realised_usd", "unrealised_usd", "funding_usd", "fees_usd", "net_usd"]].sum()
    md = {
        "recent_fills": _table(recent, 50),
        "pnl_by_coin": _table(per_coin.rename(columns={"szi": "held_size"}), 200),
        "n_fills": len(fl),
        "volume_usd": usd(tot["volume_usd"]), "realised_usd": usd(tot["realised_usd"]),
        "unrealised_usd": usd(tot["unrealised_usd"]), "fees_usd": usd(tot["fees_usd"]),
        "net_usd": usd(tot["net_usd"]),
        "unrealised_as_of": when,
        "dagster/row_count": len(fl),
    }
    if synced:
        md["funding_usd"] = usd(tot["funding_usd"])
    else:
        md["funding"] = "not fetched yet (the next monitor run fetches it); net excludes funding"
    return dg.MaterializeResult(metadata=md)


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
    """The performance report: an HTML file beside the DuckDB file (`reports/performance_report.html`) with a
    summary, daily and weekly P&L tables (USD and %, fees, funding, drawdown, gross exposure) and the chart —
    equity with the backtest's expectation band (σ: the paper-vs-backtest tracking error of the newest
    `research track` run when one is stored, else the backtest's own σ, said in the report), drawdown (%) and
    exposure (USD), UTC dates with years. The chart is also in this asset's metadata; live vs backtest z."""
    from gradient_pipeline.book.funding import funding_list, funding_synced
    from gradient_pipeline.book.trades import fills_list
    from gradient_pipeline.monitoring.equity import equity_history
    from gradient_pipeline.monitoring.performance import (
        compare,
        expectation_band,
        live_bar_equity,
        load_backtest_net,
        render_report,
        underperformance_sigma,
    )

    cfg = gradient.config
    with gradient.book() as conn:
        hist = equity_history(conn)
        fl = fills_list(conn)
        funding = funding_list(conn) if funding_synced(conn) else None
    try:  # the backtest is analytics: DuckDB
        with gradient.db(read_only=True) as duck:
            bt = load_backtest_net(duck, since=hist["ts"].min() if len(hist) else None)
    except FileNotFoundError:
        bt = None
    sigma = underperformance_sigma(cfg, bt)  # the tracking error when `research track` stored one (loud if not)
    band, comp = None, None
    k = cfg.alerts.underperformance_sigma
    if bt is None:
        note = "none — no stored backtest reaches the live period (run `gradient-pipeline backtest` over it)"
    else:
        note = f"±{k:g}σ·√bars around the backtest's net path; {sigma.note}"
    if bt is not None and len(hist):
        bars = live_bar_equity(hist)
        band = expectation_band(bars, bt, k, sigma_per_bar=sigma.per_bar)
        comp = compare(bars, bt, sigma_per_bar=sigma.per_bar)
    out_dir = Path(gradient.db_path).resolve().parent / "reports"
    png, html = render_report(hist, band, out_dir, f"gradient-pipeline {cfg.mode} ({cfg.network}) performance",
                              fills=fl, funding=funding, band_note=note)
    b64 = base64.b64encode(png.read_bytes()).decode()
    md = {
        "report_html": dg.MetadataValue.path(str(html)),
        "chart": dg.MetadataValue.md(f"![performance](data:image/png;base64,{b64})"),
        "n_snapshots": int(hist["ts"].nunique()) if len(hist) else 0,
        "backtest_available": bt is not None,
        "expectation_band": note,
    }
    if comp is not None:
        md.update({"live_return_pct": pct(100 * comp.live_return),
                   "backtest_return_pct": pct(100 * comp.expected_return),
                   "z_vs_backtest": round(comp.z, 2) + 0.0, "compared_bars": comp.n_bars})
    context.log.info(f"performance report written to {html}")
    return dg.MaterializeResult(metadata=md)


DASHBOARD_ASSETS = [equity_snapshot, live_positions, live_exposure, pnl_and_drawdown, fills, recent_rebalances]
