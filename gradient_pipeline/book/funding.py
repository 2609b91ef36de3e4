"""Funding payments in the book: the account's hourly funding from the venue's `userFunding` info request.

Rows are keyed by (account, coin, time): re-ingesting the same page is a no-op, so a monitor run can simply ask
for everything since the newest stored payment. Sign: `usdc` is the venue's `delta.usdc` — positive when the
account **received** funding, negative when it paid (a long pays when the rate is positive).

`ingest_funding` takes the wire rows (`[{"time": ms, "hash": …, "delta": {"type": "funding", "coin", "usdc",
"szi", "fundingRate"}}]`); the read side (`funding_by_coin`, `funding_list`) feeds `trades` and the `fills`
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

FUNDING_COLUMNS = ["time", "coin", "usdc", "szi", "funding_rate"]


def _num(value, what: str, row: dict) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"userFunding row {row!r}: {what} is not a number ({value!r})") from None


def parse_funding_rows(account: str, rows: list[dict]) -> list[dict]:
    """Wire rows → book rows (non-funding deltas are skipped; a malformed row raises naming the row)."""
    out, now = [], now_utc()
    for r in rows:
        delta = r.get("delta") if isinstance(r, dict) else None
        if not isinstance(delta, dict) or delta.get("type", "funding") != "funding":
            continue
        if "coin" not in delta or "usdc" not in delta or "time" not in r:
            raise ValueError(f"userFunding row {r!r}: needs time, delta.coin and delta.usdc")
        out.append({
            "account": account.lower(), "coin": str(delta["coin"]), "time": ts(from_ms(int(r["time"]))),
            "usdc": _num(delta["usdc"], "delta.usdc", r),
            "szi": None if delta.get("szi") is None else _num(delta["szi"], "delta.szi", r),
            "funding_rate": None if delta.get("fundingRate") is None else _num(delta["fundingRate"], "fundingRate", r),
            "hash": r.get("hash"), "ingested_at": now,
        })
    return out


def ingest_funding(conn: Connection, account: str, rows: list[dict]) -> int:
    """Store the account's funding payments (wire rows); returns how many were new."""
    parsed = parse_funding_rows(account, rows)
    if not parsed:
        return 0
    with unit(conn, write=True):
        before = conn.execute(sa.select(sa.func.count()).select_from(funding_payments)
                              .where(funding_payments.c.account == account.lower())).scalar()
        conn.execute(insert(conn, funding_payments).on_conflict_do_nothing(
            index_elements=["account", "coin", "time"]), parsed)
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


def sync_funding(conn: Connection, account: str, fetch, page_size: int = 500, max_pages: int = 100) -> int:
    """Fetch and store every payment since the newest stored one: `fetch(start_ms)` returns one page of wire rows
    (oldest first; the venue caps a page at `page_size`), pages are followed from the page's last time (inclusive:
    a page can end between coins of the same hour) until a short page. Returns new rows."""
    start, new = next_funding_start_ms(conn, account), 0
    for _ in range(max_pages):
        page = list(fetch(start) or [])
        new += ingest_funding(conn, account, page)
        if len(page) < page_size:
            break
        last = max(int(r["time"]) for r in page)
        start = last if last > start else start + 1  # a full page of one instant: step past it rather than loop
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


def sync_account_funding(conn: Connection, trading) -> int:
    """`sync_funding` for a `TradingClient` (its master address and `user_funding` page reader)."""
    return sync_funding(conn, trading.account_address, trading.user_funding)
