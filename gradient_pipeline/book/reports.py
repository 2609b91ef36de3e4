"""Read-only figures over the ledger for alerts and reports (daily summary)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gradient_pipeline.book.engine import unit
from gradient_pipeline.book.schema import equity, fills, positions, rebalances


@dataclass(frozen=True)
class DailyFigures:
    day: dt.date
    pnl_usd: float
    equity_usd: float
    long_usd: float
    short_usd: float
    n_fills: int
    fees_usd: float
    n_rebalances: int


def daily_figures(conn: Connection, day: dt.date) -> DailyFigures | None:
    """PnL (equity change over the UTC day), exposure at the day's last snapshot, fills and fees of the day, and
    the rebalances that traded windows ending in the day. Times are the exchange clock (equity, fills, windows)."""
    start = dt.datetime.combine(day, dt.time())
    end = start + dt.timedelta(days=1)
    av = equity.c.account_value_usd
    with unit(conn):
        last = conn.execute(sa.select(equity.c.ts, av).where(equity.c.ts < end).order_by(equity.c.ts.desc()).limit(1)).first()
        if last is None:
            return None
        before = conn.execute(sa.select(av).where(equity.c.ts < start).order_by(equity.c.ts.desc()).limit(1)).first()
        first_of_day = conn.execute(sa.select(av).where(equity.c.ts >= start, equity.c.ts < end)
                                    .order_by(equity.c.ts).limit(1)).first()
        base = before[0] if before else (first_of_day[0] if first_of_day else last[1])
        newest = sa.select(sa.func.max(positions.c.ts)).where(positions.c.ts < end).scalar_subquery()
        pos = conn.execute(sa.select(positions.c.szi, positions.c.position_value_usd)
                           .where(positions.c.ts == newest)).fetchall()
        longs = sum(v for s, v in pos if s > 0)
        shorts = sum(v for s, v in pos if s < 0)
        n_fills, fees = conn.execute(sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(fills.c.fee_usd), 0.0))
                                     .where(fills.c.time >= start, fills.c.time < end)).first()
        n_reb = conn.execute(  # by the window's time (exchange clock), like equity and fills; not wall-clock start
            sa.select(sa.func.count()).select_from(rebalances).where(
                rebalances.c.rebalance_time > start, rebalances.c.rebalance_time <= end,
                rebalances.c.status.in_(("complete", "partial")),
                rebalances.c.rebalance_id.not_like("emergency-%"))).scalar_one()
    return DailyFigures(day, float(last[1] - base), float(last[1]), float(longs), float(shorts), int(n_fills),
                        float(fees or 0.0), int(n_reb))
