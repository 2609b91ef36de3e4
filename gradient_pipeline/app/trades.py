"""`gradient-pipeline trades`: every fill in the operations book and the P&L per coin.

    gradient-pipeline trades [--since ISO] [--coin C] [--demo [--demo-dir DIR]] [--json] [--config FILE]

Reads only the book (`gradient_pipeline.book.trades`): no exchange, no Dagster, works while both are down and after
the demo's local exchange is gone (`--demo`). Times are UTC (the exchange clock). Funding comes from the book's
`funding_payments` (fetched by each monitor run); when it was never fetched into this book the output says n/a
instead of showing 0.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from dataclasses import dataclass, field

import pandas as pd

FUNDING_NOTE = ("funding: never fetched into this operations book (a monitor run fetches it: `monitor_job` or "
                "`equity_sensor`); n/a, and net excludes funding")


@dataclass
class TradesView:
    book: str                      # where the book is (password hidden)
    since: dt.datetime | None
    coin: str | None
    fills: pd.DataFrame
    pnl: pd.DataFrame
    dry_run: pd.DataFrame
    snapshot_ts: dt.datetime | None
    snapshot_source: str | None
    funding_recorded: bool
    notes: list[str] = field(default_factory=list)

    def totals(self) -> dict[str, float]:
        p = self.pnl
        t = {k: float(p[k].sum()) if len(p) else 0.0 for k in ("volume_usd", "realised_usd", "fees_usd",
                                                                 "unrealised_usd", "funding_usd")}
        t["net_usd"] = t["realised_usd"] + t["unrealised_usd"] + t["funding_usd"] - t["fees_usd"]
        return t

    def as_dict(self) -> dict:
        def records(df):
            return json.loads(df.to_json(orient="records", date_format="iso"))

        return {"book": self.book, "since": self.since.isoformat() if self.since else None, "coin": self.coin,
                "fills": records(self.fills), "pnl_by_coin": records(self.pnl), "totals": self.totals(),
                "funding_recorded": self.funding_recorded,
                "funding_usd": self.totals()["funding_usd"] if self.funding_recorded else None,  # never fetched: unknown
                "unrealised_as_of": self.snapshot_ts.isoformat() if self.snapshot_ts else None,
                "unrealised_source": self.snapshot_source, "dry_run_orders": records(self.dry_run),
                "notes": self.notes}


def parse_since(text: str | None) -> dt.datetime | None:
    """ISO date or time → naive UTC (an offset is converted; no offset means UTC)."""
    if not text:
        return None
    try:
        t = pd.Timestamp(text)
    except ValueError:
        raise ValueError(f"--since {text!r} is not an ISO date/time (e.g. 2025-04-10 or 2025-04-10T08:00)") from None
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return t.to_pydatetime()


def gather_trades(db_path: str, since: dt.datetime | None = None, coin: str | None = None,
                  account: str | None = None) -> TradesView:
    from gradient_pipeline import book
    from gradient_pipeline.book import trades
    from gradient_pipeline.book.funding import funding_synced

    with book.connect(db_path) as conn:
        synced = funding_synced(conn, account)
        fl = trades.fills_list(conn, since, coin, account)
        pnl = trades.pnl_by_coin(conn, since, coin, account)
        dry = trades.dry_run_orders(conn, since, coin, account)
        snap_ts, snap_src, _ = trades.latest_positions_snapshot(conn, account)
    view = TradesView(book.redact_url(book.book_url(db_path)), since, coin, fl, pnl, dry, snap_ts, snap_src,
                      synced)
    if not synced:
        view.notes.append(FUNDING_NOTE)
    if snap_ts is None:
        view.notes.append("unrealised: no positions snapshot in the book yet (shown as 0)")
    return view


def _usd(x) -> str:
    if x is None or (isinstance(x, float) and pd.isna(x)):
        return "—"
    x = round(float(x), 2) + 0.0  # no "-0.00"
    return f"-{abs(x):,.2f}" if x < 0 else f"{x:,.2f}"


def _num(x) -> str:
    """Exchange sizes and prices as the exchange quotes them (up to 8 significant digits, no exponent)."""
    return f"{float(x):.8g}" if abs(float(x)) < 1e8 else f"{float(x):,.0f}"


def render(view: TradesView, console=None) -> None:
    """Print the fills table, the per-coin P&L table and the notes (rich tables)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=None if sys.stdout.isatty() else 160, highlight=False)
    scope = []
    if view.since:
        scope.append(f"since {view.since:%Y-%m-%d %H:%M} UTC")
    if view.coin:
        scope.append(f"coin {view.coin}")
    console.print(f"operations book: {view.book}" + (f" ({', '.join(scope)})" if scope else ""))

    t = Table(title=f"fills ({len(view.fills)})", title_justify="left")
    for name, just in [("time (UTC)", "left"), ("coin", "left"), ("side", "left"), ("size", "right"),
                       ("price", "right"), ("notional $", "right"), ("fee $", "right"), ("liq.", "left"),
                       ("closed P&L $", "right"), ("rebalance", "left")]:
        t.add_column(name, justify=just, no_wrap=name != "rebalance")
    for f in view.fills.itertuples():
        t.add_row(f"{pd.Timestamp(f.time):%Y-%m-%d %H:%M:%S}", f.coin, f.side, _num(f.sz), _num(f.px),
                  _usd(f.notional_usd), _usd(f.fee_usd), f.liquidity or "", _usd(f.closed_pnl_usd),
                  f.rebalance_id or "(not sent by this book)")
    if len(view.fills):
        console.print(t)
    else:
        console.print("fills: none" + (" in this selection" if scope else " recorded"))

    if len(view.dry_run):
        d = Table(title=f"dry-run orders ({len(view.dry_run)}; planned, checked and recorded — NOT sent)",
                  title_justify="left")
        for name in ("recorded (UTC)", "coin", "side", "size", "limit", "mid", "notional $", "leg", "rebalance"):
            d.add_column(name, justify="right" if name in ("size", "limit", "mid", "notional $") else "left")
        for o in view.dry_run.itertuples():
            d.add_row(f"{pd.Timestamp(o.created_at):%Y-%m-%d %H:%M:%S}", o.coin, o.side, _num(o.sz),
                      _num(o.limit_px), _num(o.mid_px) if o.mid_px is not None else "—", _usd(o.notional_usd),
                      o.leg + (" (reduce-only)" if o.reduce_only else ""), o.rebalance_id)
        console.print(d)

    asof = (f"unrealised as of the {view.snapshot_source} snapshot at {view.snapshot_ts:%Y-%m-%d %H:%M:%S} UTC"
            if view.snapshot_ts else "no positions snapshot")
    console.print(f"P&L per coin, USD — {asof}")
    p = Table()
    cols = ["coin", "fills", "volume", "realised", "unrealised", "funding", "fees", "net", "held size"]
    for name in cols:
        p.add_column(name, justify="left" if name == "coin" else "right")
    known = view.funding_recorded
    for r in view.pnl.itertuples():
        net = r.realised_usd + r.unrealised_usd + (r.funding_usd if known else 0.0) - r.fees_usd
        p.add_row(r.coin, str(r.n_fills), _usd(r.volume_usd), _usd(r.realised_usd), _usd(r.unrealised_usd),
                  _usd(r.funding_usd) if known else "n/a", _usd(r.fees_usd), _usd(net), _num(r.szi) if r.szi else "flat")
    tot = view.totals()
    p.add_row("TOTAL", str(int(view.pnl["n_fills"].sum()) if len(view.pnl) else 0), _usd(tot["volume_usd"]),
              _usd(tot["realised_usd"]), _usd(tot["unrealised_usd"]), _usd(tot["funding_usd"]) if known else "n/a",
              _usd(tot["fees_usd"]), _usd(tot["net_usd"]), "", style="bold")
    console.print(p)
    console.print("net = realised + unrealised + funding (+ received, − paid) − fees")
    for note in view.notes:
        console.print(f"note: {note}")


def run(args) -> int:
    """Handler of `gradient-pipeline trades`."""
    account = None
    if args.demo:
        from gradient_pipeline.app.demo_book import find_demo

        demo = find_demo(args.demo_dir)
        db_path, account = demo.db_path, demo.account
    else:
        from gradient_pipeline.config import load_config

        db_path = os.environ.get("GRADIENT_DUCKDB_PATH") or str(load_config(args.config).resolved_duckdb_path)
    view = gather_trades(db_path, parse_since(args.since), args.coin, account)
    if args.demo:
        view.notes.append(f"the last demo's book ({args.demo_dir}); its local exchange is gone, figures are the book's")
    if args.json:
        print(json.dumps(view.as_dict(), default=str, indent=2))
    else:
        render(view)
    return 0
