"""Read-only views of the trades in the book: the fills list, per-coin P&L, dry-run orders, the latest positions.

Used by `gradient-pipeline trades` (formatting in `gradient_pipeline/app/trades.py`). Nothing here writes.

P&L per coin, in USD:
- realised: the sum of the exchange's `closedPnl` over the fills (what closing or reducing a position booked);
- fees: the sum of the fills' fees (USDC; positive = paid);
- unrealised: the position's unrealised P&L in the newest positions snapshot of the book (a rebalance's end, a
  monitor run or an emergency stop) — as of that snapshot, not of now;
- funding: the sum of the account's funding payments in `funding_payments` (+ received, − paid; `book/funding.py`,
  fetched from the venue's `userFunding` by every monitor run). `funding_synced` tells whether funding was ever
  fetched into this book: when not, callers must say so (n/a) rather than show 0.

Filters: `since` (naive UTC or ISO text; fills strictly at or after it), `coin` (exact, case as the exchange spells
it) and `account` (only rebalances of that master address: a PostgreSQL book can hold several accounts' runs;
fills not attributed to a rebalance of the account are then left out).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gradient_pipeline.book._values import ts
from gradient_pipeline.book.engine import unit
from gradient_pipeline.book.schema import equity, fills, orders, positions, rebalance_targets, rebalances

FILL_COLUMNS = ["time", "coin", "side", "sz", "px", "notional_usd", "fee_usd", "liquidity", "closed_pnl_usd",
                "rebalance_id", "tid"]
PNL_COLUMNS = ["coin", "n_fills", "volume_usd", "realised_usd", "fees_usd", "unrealised_usd", "funding_usd", "szi"]


def _frame(conn: Connection, stmt, columns: list[str]) -> pd.DataFrame:
    with unit(conn):
        rows = conn.execute(stmt).fetchall()
    return pd.DataFrame(rows, columns=columns)


def _account_ids(account: str | None):
    """A subquery of the rebalance ids of `account` (None: no account filter)."""
    if not account:
        return None
    return sa.select(rebalances.c.rebalance_id).where(sa.func.lower(rebalances.c.account) == account.lower())


def _fill_filter(stmt, since, coin, account):
    if since is not None:
        stmt = stmt.where(fills.c.time >= ts(since))
    if coin:
        stmt = stmt.where(fills.c.coin == coin)
    ids = _account_ids(account)
    if ids is not None:
        stmt = stmt.where(fills.c.rebalance_id.in_(ids))
    return stmt


def fills_list(conn: Connection, since: dt.datetime | str | None = None, coin: str | None = None,
               account: str | None = None) -> pd.DataFrame:
    """Every fill (oldest first): time (UTC, exchange clock), coin, side, size, price, notional, fee, maker/taker,
    closed P&L and the rebalance (or emergency stop) it belongs to (None: a fill of an order the book never sent)."""
    stmt = sa.select(*[fills.c[c] for c in FILL_COLUMNS]).order_by(fills.c.time, fills.c.tid)
    return _frame(conn, _fill_filter(stmt, since, coin, account), FILL_COLUMNS)


def latest_positions_snapshot(conn: Connection, account: str | None = None) -> tuple[dt.datetime | None, str | None,
                                                                                      pd.DataFrame]:
    """(ts, source, positions) of the newest equity snapshot (a flat account has an equity row and no positions).
    With `account`, only snapshots taken by that account's rebalances or stops."""
    cols = ["coin", "szi", "entry_px", "position_value_usd", "unrealized_pnl_usd"]
    from gradient_pipeline.book.equity import newest_first

    stmt = sa.select(equity.c.ts, equity.c.source).order_by(*newest_first()).limit(1)
    ids = _account_ids(account)
    if ids is not None:
        stmt = stmt.where(equity.c.rebalance_id.in_(ids))
    with unit(conn):
        last = conn.execute(stmt).first()
        if last is None:
            return None, None, pd.DataFrame(columns=cols)
        rows = conn.execute(sa.select(*[positions.c[c] for c in cols])
                            .where(positions.c.ts == last[0], positions.c.source == last[1])
                            .order_by(positions.c.coin)).fetchall()
    return last[0], last[1], pd.DataFrame(rows, columns=cols)


def pnl_by_coin(conn: Connection, since: dt.datetime | str | None = None, coin: str | None = None,
                account: str | None = None) -> pd.DataFrame:
    """Per coin: fills, traded volume, realised P&L and fees over the filtered fills, funding payments over the same
    period (+ received), plus the unrealised P&L and size of the newest positions snapshot (coins held or funded but
    not traded in the period appear with 0 fills)."""
    from gradient_pipeline.book.funding import funding_by_coin

    stmt = (sa.select(fills.c.coin, sa.func.count(), sa.func.sum(fills.c.notional_usd),
                      sa.func.sum(fills.c.closed_pnl_usd), sa.func.sum(fills.c.fee_usd))
            .group_by(fills.c.coin))
    traded = _frame(conn, _fill_filter(stmt, since, coin, account),
                    ["coin", "n_fills", "volume_usd", "realised_usd", "fees_usd"])
    _t, _s, held = latest_positions_snapshot(conn, account)
    if coin:
        held = held[held["coin"] == coin]
    held = held.rename(columns={"unrealized_pnl_usd": "unrealised_usd"})[["coin", "unrealised_usd", "szi"]]
    out = traded.merge(held, on="coin", how="outer")
    funded = funding_by_coin(conn, since, coin, account)[["coin", "funding_usd"]]
    out = out.merge(funded, on="coin", how="outer")
    for c in ("n_fills",):
        out[c] = out[c].astype(float).fillna(0).astype(int)
    for c in ("volume_usd", "realised_usd", "fees_usd", "unrealised_usd", "funding_usd", "szi"):
        out[c] = out[c].astype(float).fillna(0.0)
    return out[PNL_COLUMNS].sort_values("coin", key=lambda s: s.str.lower()).reset_index(drop=True)


def dry_run_orders(conn: Connection, since: dt.datetime | str | None = None, coin: str | None = None,
                   account: str | None = None) -> pd.DataFrame:
    """Orders a dry run planned, checked and recorded without sending (status `dry_run`), oldest first."""
    cols = ["created_at", "coin", "side", "sz", "limit_px", "mid_px", "notional_usd", "leg", "reduce_only",
            "rebalance_id"]
    stmt = sa.select(*[orders.c[c] for c in cols]).where(orders.c.status == "dry_run")
    if since is not None:
        stmt = stmt.where(orders.c.created_at >= ts(since))
    if coin:
        stmt = stmt.where(orders.c.coin == coin)
    ids = _account_ids(account)
    if ids is not None:
        stmt = stmt.where(orders.c.rebalance_id.in_(ids))
    return _frame(conn, stmt.order_by(orders.c.created_at, orders.c.coin), cols)


def targets_of(conn: Connection, rebalance_id: str) -> tuple[float | None, dict[str, float]]:
    """(capital the rebalance was sized from, coin → signed target weight) of one rebalance."""
    with unit(conn):
        cap = conn.execute(sa.select(rebalances.c.capital_usd)
                           .where(rebalances.c.rebalance_id == rebalance_id)).scalar()
        rows = conn.execute(sa.select(rebalance_targets.c.coin, rebalance_targets.c.weight)
                            .where(rebalance_targets.c.rebalance_id == rebalance_id)).fetchall()
    return (None if cap is None else float(cap)), {c: float(w) for c, w in rows}
