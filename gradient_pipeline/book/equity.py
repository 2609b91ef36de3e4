"""Equity snapshots, the high-water mark and the drawdown between them (storage side of monitoring/equity.py).

Snapshots are the ledger's `equity` / `positions` rows (source ``monitor`` from the equity sensor's run,
``rebalance_*`` from the rebalance job, ``emergency_stop``). The high-water mark lives in `high_water_mark` (one
row): it only rises, except that `rebase_high_water_mark` (called by `resume`) resets it to the current account
value. Same function names and arguments as before the book; `conn` is a book connection.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gradient_pipeline.book._values import ts as _ts
from gradient_pipeline.book.engine import insert, unit
from gradient_pipeline.book.halt import utcnow
from gradient_pipeline.book.schema import equity, high_water_mark as hwm_table, positions


@dataclass(frozen=True)
class EquityState:
    """The latest equity, the high-water mark and the drawdown between them (percent, ≥ 0)."""

    ts: dt.datetime | None
    account_value: float | None
    hwm: float | None
    drawdown_pct: float | None
    source: str | None = None


def drawdown_pct(equity_usd: float, hwm: float) -> float:
    """Percent below the high-water mark (0 at or above it)."""
    if hwm is None or hwm <= 0 or equity_usd is None:
        return 0.0
    return max(0.0, (hwm - equity_usd) / hwm * 100.0)


def high_water_mark(conn: Connection) -> tuple[float, dt.datetime] | None:
    with unit(conn):
        r = conn.execute(sa.select(hwm_table.c.hwm_usd, hwm_table.c.hwm_ts).where(hwm_table.c.name == "account")).first()
    return (float(r[0]), r[1]) if r else None


def _put_mark(conn: Connection, value: float, ts, reason: str) -> None:
    vals = {"name": "account", "hwm_usd": float(value), "hwm_ts": _ts(ts), "updated_at": utcnow(), "reason": reason}
    stmt = insert(conn, hwm_table).values(**vals)
    conn.execute(stmt.on_conflict_do_update(index_elements=["name"],
                                            set_={k: stmt.excluded[k] for k in vals if k != "name"}))


def update_high_water_mark(conn: Connection, account_value: float, ts: dt.datetime) -> float:
    """Raise the mark if `account_value` is a new high (or the first seen); return the current mark."""
    with unit(conn, write=True):
        current = high_water_mark(conn)
        if current is None or account_value > current[0]:
            _put_mark(conn, account_value, ts, "new_high")
            return float(account_value)
        return current[0]


def rebase_high_water_mark(conn: Connection, account_value: float, why: str) -> None:
    """Reset the mark to `account_value` (resume, deposits). Its time is the newest equity snapshot's (exchange
    clock), so only snapshots after the rebase can raise it again."""
    with unit(conn, write=True):
        last = latest_equity(conn)
        _put_mark(conn, account_value, last[0] if last else utcnow(), f"rebase: {why}")


def catch_up_high_water_mark(conn: Connection) -> float | None:
    """Raise the mark to the highest `equity` snapshot (any source: rebalances too) newer than the mark."""
    with unit(conn, write=True):
        current = high_water_mark(conn)
        stmt = sa.select(equity.c.account_value_usd, equity.c.ts).order_by(equity.c.account_value_usd.desc(),
                                                                            equity.c.ts).limit(1)
        if current:
            stmt = stmt.where(equity.c.ts >= current[1])
        r = conn.execute(stmt).first()
        if r is None or r[0] is None:
            return current[0] if current else None
        return update_high_water_mark(conn, float(r[0]), r[1])


_EPOCH = dt.datetime(1970, 1, 1)


def newest_first():
    """Snapshot order, newest first: exchange time, then when it was written (several snapshots can share one
    exchange time — a replay clock, an emergency stop right after a monitor run — and the last written wins)."""
    return (equity.c.ts.desc(), sa.func.coalesce(equity.c.recorded_at, _EPOCH).desc(), equity.c.source)


def oldest_first():
    return (equity.c.ts, sa.func.coalesce(equity.c.recorded_at, _EPOCH), equity.c.source)


def latest_equity(conn: Connection) -> tuple[dt.datetime, float, str] | None:
    """The newest `equity` row (ts, account value, source), any source."""
    with unit(conn):
        r = conn.execute(sa.select(equity.c.ts, equity.c.account_value_usd, equity.c.source)
                         .order_by(*newest_first()).limit(1)).first()
    return (r[0], float(r[1]), r[2]) if r else None


def equity_state(conn: Connection) -> EquityState:
    """Latest equity vs the high-water mark (nothing written)."""
    with unit(conn):
        last = latest_equity(conn)
        hwm = high_water_mark(conn)
        if last is None:
            return EquityState(None, None, hwm[0] if hwm else None, None)
        stmt = sa.select(sa.func.max(equity.c.account_value_usd))
        if hwm:
            stmt = stmt.where(equity.c.ts >= hwm[1])
        peak = conn.execute(stmt).scalar()
    t, value, source = last
    mark = max(x for x in (hwm[0] if hwm else None, peak, value) if x is not None)
    return EquityState(t, value, mark, drawdown_pct(value, mark), source)


def record_equity(conn: Connection, account, ts, source: str = "monitor") -> EquityState:
    """Snapshot an `AccountState` (venue.model) into the ledger, raise the high-water mark, return the state."""
    from gradient_pipeline.book import ledger

    t = _ts(ts)
    ledger.snapshot(conn, t, source, None, account.account_value, account.total_ntl_pos, account.positions)
    mark = catch_up_high_water_mark(conn)
    return EquityState(t, account.account_value, mark, drawdown_pct(account.account_value, mark), source)


EQUITY_COLUMNS = ["ts", "source", "account_value_usd", "gross_exposure_usd", "net_exposure_usd", "n_positions"]


def equity_history(conn: Connection, since: dt.datetime | None = None) -> pd.DataFrame:
    """Equity rows (ts, source, account value, exposure) in time order (ties in exchange time: in the order written,
    so `drop_duplicates("ts", keep="last")` keeps the newest); empty frame if none yet."""
    stmt = sa.select(*[equity.c[c] for c in EQUITY_COLUMNS]).order_by(*oldest_first())
    if since is not None:
        stmt = stmt.where(equity.c.ts >= _ts(since))
    with unit(conn):
        rows = conn.execute(stmt).fetchall()
    df = pd.DataFrame(rows, columns=EQUITY_COLUMNS)
    if len(df):
        df["ts"] = pd.to_datetime(df["ts"])
    return df


POSITION_COLUMNS = ["coin", "szi", "entry_px", "position_value_usd", "unrealized_pnl_usd", "weight", "target_weight"]


def latest_positions(conn: Connection) -> pd.DataFrame:
    """Positions of the newest snapshot. The snapshot is the newest `equity` row (a flat account has an equity
    row and no position rows, so it correctly shows nothing), largest first."""
    with unit(conn):
        last = conn.execute(sa.select(equity.c.ts, equity.c.source).order_by(*newest_first()).limit(1)).first()
        if last is None:
            return pd.DataFrame(columns=POSITION_COLUMNS)
        rows = conn.execute(sa.select(*[positions.c[c] for c in POSITION_COLUMNS])
                            .where(positions.c.ts == last[0], positions.c.source == last[1])
                            .order_by(sa.func.abs(positions.c.position_value_usd).desc())).fetchall()
    return pd.DataFrame(rows, columns=POSITION_COLUMNS).astype(
        {c: float for c in POSITION_COLUMNS if c != "coin"}) if rows else pd.DataFrame(columns=POSITION_COLUMNS)
