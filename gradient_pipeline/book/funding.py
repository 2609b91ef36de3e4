"""Funding payments in the book: the account's hourly funding from the venue's `userFunding` info request.

Rows are keyed by (account, coin, time): re-ingesting the same payment is a no-op, so a monitor run can simply ask
for everything since the newest stored payment. Sign: `usdc` is positive when the
account **received** funding, negative when it paid (a long pays when the rate is positive).

`ingest_funding` takes the venue's typed `FundingPayment`s (the adapter parses its own payloads); the read side (`funding_by_coin`, `funding_list`) feeds `trades` and the `fills`
dashboard asset.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gradient_pipeline.book._values import ts
from gradient_pipeline.book.engine import insert, unit
from gradient_pipeline.book.schema import funding_payments, heartbeats
from gradient_pipeline.timegrid import from_ms, now_utc, to_ms
from gradient_pipeline.venue.model import FundingPayment

FUNDING_COLUMNS = ["time", "coin", "usdc", "szi", "funding_rate"]


def _rows(account: str, payments: list[FundingPayment]) -> list[dict]:
    now = now_utc()
    return [{"account": account.lower(), "coin": p.coin, "time": ts(from_ms(p.time_ms)), "usdc": float(p.usdc),
             "szi": p.szi, "funding_rate": p.rate, "hash": p.hash, "ingested_at": now} for p in payments]


def ingest_funding(conn: Connection, account: str, payments: list[FundingPayment]) -> int:
    """Store the account's funding payments; returns how many were new."""
    rows = _rows(account, payments)
    if not rows:
        return 0
    with unit(conn, write=True):
        before = conn.execute(sa.select(sa.func.count()).select_from(funding_payments)
                              .where(funding_payments.c.account == account.lower())).scalar()
        conn.execute(insert(conn, funding_payments).on_conflict_do_nothing(
            index_elements=["account", "coin", "time"]), rows)
        after = conn.execute(sa.select(sa.func.count()).select_from(funding_payments)
                             .where(funding_payments.c.account == account.lower())).scalar()
    return int(after - before)


def next_funding_start_ms(conn: Connection, account: str) -> int:
    """Where the next `userFunding` request starts: the newest stored payment's time, inclusive (every coin is paid
    at the same hour, so a page may end between two coins of one hour; re-reading them is a no-op). 0: none yet."""
    with unit(conn):
        last = conn.execute(sa.select(sa.func.max(funding_payments.c.time))
                            .where(funding_payments.c.account == account.lower())).scalar()
    return 0 if last is None else to_ms(pd.Timestamp(last))


def sync_funding(conn: Connection, account: str, fetch) -> int:
    """Fetch and store every payment since the newest stored one (`fetch(start_ms)` returns every payment from
    then on: the venue adapter follows its own pages). Returns new rows; leaves a heartbeat either way."""
    new = ingest_funding(conn, account, list(fetch(next_funding_start_ms(conn, account)) or []))
    from gradient_pipeline.book.heartbeats import beat

    beat(conn, sync_heartbeat(account), f"{new} new payments")
    return new


def sync_heartbeat(account: str) -> str:
    """The heartbeat a funding sync leaves (so views can tell 'no payments' from 'never fetched')."""
    return f"funding_sync:{account.lower()}"[:64]


def _where(stmt, since, coin, account):
    if since is not None:
        stmt = stmt.where(funding_payments.c.time >= ts(since))
    if coin:
        stmt = stmt.where(funding_payments.c.coin == coin)
    if account:
        stmt = stmt.where(funding_payments.c.account == account.lower())
    return stmt


def funding_list(conn: Connection, since: dt.datetime | str | None = None, coin: str | None = None,
                 account: str | None = None) -> pd.DataFrame:
    """Every stored payment (oldest first): time (UTC), coin, usdc (+ received), position size, rate."""
    stmt = _where(sa.select(*[funding_payments.c[c] for c in FUNDING_COLUMNS]), since, coin, account)
    with unit(conn):
        rows = conn.execute(stmt.order_by(funding_payments.c.time, funding_payments.c.coin)).fetchall()
    return pd.DataFrame(rows, columns=FUNDING_COLUMNS)


def funding_by_coin(conn: Connection, since: dt.datetime | str | None = None, coin: str | None = None,
                    account: str | None = None) -> pd.DataFrame:
    """Per coin: number of payments and their sum in USD (+ received, − paid)."""
    stmt = _where(sa.select(funding_payments.c.coin, sa.func.count(), sa.func.sum(funding_payments.c.usdc))
                  .group_by(funding_payments.c.coin), since, coin, account)
    with unit(conn):
        rows = conn.execute(stmt).fetchall()
    df = pd.DataFrame(rows, columns=["coin", "n_payments", "funding_usd"])
    df["funding_usd"] = df["funding_usd"].astype(float)
    return df


def funding_synced(conn: Connection, account: str | None = None) -> bool:
    """Whether funding was fetched into the book (for this account, or for any): lets views tell 'no payments'
    (0.00) from 'never fetched' (n/a)."""
    with unit(conn):
        if conn.execute(_where(sa.select(sa.func.count()).select_from(funding_payments), None, None,
                               account)).scalar():
            return True
        stmt = sa.select(sa.func.count()).select_from(heartbeats)
        stmt = stmt.where(heartbeats.c.name == sync_heartbeat(account)) if account else \
            stmt.where(heartbeats.c.name.like("funding_sync:%"))
        return bool(conn.execute(stmt).scalar())


def sync_account_funding(conn: Connection, venue) -> int:
    """`sync_funding` for an `ExecutionVenue` (its account and `funding_payments`)."""
    return sync_funding(conn, venue.account_address, venue.funding_payments)
