"""The execution ledger: `rebalances`, `orders`, `fills`, `positions`, `equity`, `rebalance_targets`.

Same functions, names and argument order as the DuckDB ledger it replaces (`execution/ledger.py` before the
operations book); `conn` is a SQLAlchemy `Connection` from `gradient_pipeline.book.connect(...)`. Every function
commits its own work (see `book.engine.unit`), so an order recorded by `record_orders` is durable before the
caller sends it.

Every write is idempotent so a resumed rebalance can replay any step:
- `orders` is keyed by the deterministic client order id; an order is recorded (status `sending`) **before** it
  is sent, so a process killed mid-send leaves a row the next run resolves by `orderStatus` lookup;
- `fills` is keyed by the exchange's trade id (`tid`); ingesting the same fill twice changes nothing;
- `positions` and `equity` are snapshots keyed by time; `rebalances` by the id derived from the target window.
`orders.updated_at` changes only for rows whose content a call actually changed.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gradient_pipeline.book._values import py, row, ts
from gradient_pipeline.book.engine import insert, unit
from gradient_pipeline.book.schema import equity, fills, orders, positions, rebalance_targets, rebalances
from gradient_pipeline.timegrid import from_ms, now_utc
from gradient_pipeline.venue.model import Fill

TERMINAL = ("complete", "partial", "refused", "failed")


def ensure(conn: Connection) -> None:
    """Kept for callers of the old ledger: the schema is migrated when the book is opened."""


def _frame(conn: Connection, stmt) -> pd.DataFrame:
    with unit(conn):
        result = conn.execute(stmt)
        return pd.DataFrame(result.fetchall(), columns=list(result.keys())).infer_objects()


def table_frame(conn: Connection, table: sa.Table | str, order_by: list[str] | None = None) -> pd.DataFrame:
    """A whole book table as a DataFrame (small tables: reports, the demo summary, tests)."""
    from gradient_pipeline.book.schema import metadata

    t = metadata.tables[table] if isinstance(table, str) else table
    stmt = sa.select(t)
    if order_by:
        stmt = stmt.order_by(*[t.c[c] for c in order_by])
    return _frame(conn, stmt)


# ----------------------------------------------------------------------------------------------- rebalances
def get_rebalance(conn: Connection, rebalance_id: str) -> dict | None:
    with unit(conn):
        r = conn.execute(sa.select(rebalances).where(rebalances.c.rebalance_id == rebalance_id)).mappings().first()
    return None if r is None else dict(r)


def start_rebalance(conn, rebalance_id, window_ts, mode, network, account, capital_usd, dagster_run_id=None) -> dict:
    """Create the row, or return the existing one (a resumed run keeps its frozen capital)."""
    with unit(conn, write=True):
        existing = conn.execute(sa.select(rebalances.c.status).where(rebalances.c.rebalance_id == rebalance_id)).first()
        if existing is not None:
            conn.execute(
                rebalances.update().where(rebalances.c.rebalance_id == rebalance_id).values(
                    dagster_run_id=sa.func.coalesce(dagster_run_id, rebalances.c.dagster_run_id),
                    status=sa.case((rebalances.c.status.in_(("complete", "partial")), rebalances.c.status),
                                   else_="running"),
                ))
        else:
            w = ts(window_ts)
            conn.execute(insert(conn, rebalances).values(
                rebalance_id=rebalance_id, window_ts=w, rebalance_time=w + pd.Timedelta(hours=4), mode=mode,
                network=network, account=account, status="running", reason=None, capital_usd=py(capital_usd),
                attempts=0, n_orders=0, n_fills=0, dagster_run_id=dagster_run_id, started_at=now_utc(),
                finished_at=None,
            ).on_conflict_do_nothing())
    return get_rebalance(conn, rebalance_id)


def set_capital(conn, rebalance_id: str, capital_usd: float) -> None:
    with unit(conn, write=True):
        conn.execute(rebalances.update().where(rebalances.c.rebalance_id == rebalance_id,
                                               rebalances.c.capital_usd.is_(None)).values(capital_usd=py(capital_usd)))


def set_attempts(conn, rebalance_id: str, attempts: int) -> None:
    with unit(conn, write=True):
        conn.execute(rebalances.update().where(rebalances.c.rebalance_id == rebalance_id,
                                               sa.or_(rebalances.c.attempts.is_(None),
                                                      rebalances.c.attempts < int(attempts)))
                     .values(attempts=int(attempts)))


def finish_rebalance(conn, rebalance_id: str, status: str, reason: str | None) -> None:
    if status not in TERMINAL:
        raise ValueError(f"not a terminal status: {status!r}")
    with unit(conn, write=True):
        n_orders = conn.execute(sa.select(sa.func.count()).select_from(orders)
                                .where(orders.c.rebalance_id == rebalance_id)).scalar_one()
        n_fills = conn.execute(sa.select(sa.func.count()).select_from(fills)
                               .where(fills.c.rebalance_id == rebalance_id)).scalar_one()
        conn.execute(rebalances.update().where(rebalances.c.rebalance_id == rebalance_id).values(
            status=status, reason=reason, n_orders=n_orders, n_fills=n_fills, finished_at=now_utc()))


def last_rebalance(conn: Connection, include_emergency: bool = False) -> dict | None:
    """The most recently started rebalance (emergency stops excluded unless asked)."""
    stmt = sa.select(rebalances.c.rebalance_id, rebalances.c.window_ts, rebalances.c.mode, rebalances.c.status,
                     rebalances.c.reason, rebalances.c.started_at, rebalances.c.finished_at)
    if not include_emergency:
        stmt = stmt.where(rebalances.c.rebalance_id.not_like("emergency-%"))
    with unit(conn):
        r = conn.execute(stmt.order_by(rebalances.c.started_at.desc()).limit(1)).mappings().first()
    return None if r is None else dict(r)


def recent_rebalances(conn: Connection, limit: int = 20) -> pd.DataFrame:
    """The newest rebalances (by start), for the dashboard."""
    c = rebalances.c
    return _frame(conn, sa.select(c.rebalance_id, c.window_ts, c.mode, c.status, c.reason, c.n_orders, c.n_fills,
                                  c.started_at, c.finished_at).order_by(c.started_at.desc()).limit(limit))


# ----------------------------------------------------------------------------------------------- orders
ORDER_COLS = [c.name for c in orders.columns]


def record_orders(conn, rows: list[dict]) -> None:
    """Write-ahead: insert orders (status `sending`/`dry_run`) before they go out. Re-inserting a cloid is a no-op."""
    if not rows:
        return
    now = now_utc()
    values = [row({**{c: None for c in ORDER_COLS}, "created_at": now, "updated_at": now, **r}) for r in rows]
    for v in values:
        if v["oid"] is not None:
            v["oid"] = int(v["oid"])
    with unit(conn, write=True):
        conn.execute(insert(conn, orders).on_conflict_do_nothing(index_elements=["cloid"]), values)


def update_order(conn, cloid: str, status: str, oid=None, filled_sz=None, avg_px=None, error=None) -> None:
    """Record what happened to one order; `updated_at` moves only if something in the row changed."""
    c = orders.c
    new = {
        "status": sa.literal(status),
        "oid": sa.func.coalesce(sa.cast(py(oid) if oid is None else int(oid), sa.BigInteger), c.oid),
        "filled_sz": sa.func.coalesce(sa.cast(py(filled_sz), sa.Double), c.filled_sz),
        "avg_px": sa.func.coalesce(sa.cast(py(avg_px), sa.Double), c.avg_px),
        "error": sa.func.coalesce(sa.cast(error, sa.Text), c.error),
    }
    changed = sa.or_(*[c[k].is_distinct_from(v) for k, v in new.items()])
    with unit(conn, write=True):
        conn.execute(orders.update().where(c.cloid == cloid, changed).values(**new, updated_at=now_utc()))


def mark_not_placed(conn, rebalance_id: str, error: str = "batch not sent after refusal") -> int:
    """Orders of batches never sent (still `sending`) are not on the exchange: mark them `not_placed`."""
    with unit(conn, write=True):
        return conn.execute(orders.update().where(orders.c.rebalance_id == rebalance_id, orders.c.status == "sending")
                            .values(status="not_placed", error=error, updated_at=now_utc())).rowcount


def refresh_order_fills(conn) -> int:
    """Set each order's `filled_sz` / `avg_px` from its ingested fills; touches (and re-stamps `updated_at` of)
    only orders whose figures changed. Returns how many orders changed."""
    agg = (sa.select(fills.c.cloid, sa.func.sum(fills.c.sz).label("sz"),
                     (sa.func.sum(fills.c.px * fills.c.sz) / sa.func.sum(fills.c.sz)).label("px"))
           .where(fills.c.cloid.is_not(None)).group_by(fills.c.cloid))
    with unit(conn, write=True):
        sub = agg.subquery()
        rows = conn.execute(sa.select(orders.c.cloid, orders.c.filled_sz, orders.c.avg_px, sub.c.sz, sub.c.px)
                            .join(sub, orders.c.cloid == sub.c.cloid)).fetchall()
        changed = [r for r in rows if not (_same(r[1], r[3]) and _same(r[2], r[4]))]
        now = now_utc()
        for cloid, _f, _p, sz, px in changed:
            conn.execute(orders.update().where(orders.c.cloid == cloid).values(filled_sz=sz, avg_px=px, updated_at=now))
    return len(changed)


def _same(a, b, tol: float = 1e-12) -> bool:
    if a is None or b is None:
        return a is b
    return abs(float(a) - float(b)) <= tol * max(1.0, abs(float(b)))


def orders_for(conn, rebalance_id: str) -> pd.DataFrame:
    return _frame(conn, sa.select(orders).where(orders.c.rebalance_id == rebalance_id)
                  .order_by(orders.c.attempt, orders.c.created_at, orders.c.coin))


def unresolved_orders(conn, rebalance_id: str) -> pd.DataFrame:
    """Orders whose fate the ledger does not know: sent (or about to be) without a definitive answer, or resting."""
    return _frame(conn, sa.select(orders).where(orders.c.rebalance_id == rebalance_id,
                                                orders.c.status.in_(("sending", "ambiguous", "resting"))))


def interrupted(conn, mode: str, account: str, except_id: str) -> pd.DataFrame:
    """Orders of *other* unfinished rebalances of this mode and account (e.g. a crashed run whose window passed):
    they must be resolved, and resting ones cancelled, before a new rebalance trades."""
    return _frame(conn, sa.select(orders).join(rebalances, orders.c.rebalance_id == rebalances.c.rebalance_id).where(
        rebalances.c.mode == mode, sa.func.lower(rebalances.c.account) == account.lower(),
        orders.c.rebalance_id != except_id, orders.c.status.in_(("sending", "ambiguous", "resting"))))


def supersede(conn, mode: str, account: str, by_id: str) -> list[str]:
    """Close older rebalances left `running` by a dead process: status failed, reason names the successor."""
    with unit(conn):
        ids = list(conn.execute(sa.select(rebalances.c.rebalance_id).where(
            rebalances.c.mode == mode, sa.func.lower(rebalances.c.account) == account.lower(),
            rebalances.c.status == "running", rebalances.c.rebalance_id != by_id)).scalars())
    for rid in ids:
        finish_rebalance(conn, rid, "failed", f"interrupted; superseded by {by_id} (its orders were resolved by client id)")
    return ids


def max_attempt(conn, rebalance_id: str) -> int:
    with unit(conn):
        v = conn.execute(sa.select(sa.func.max(orders.c.attempt)).where(
            orders.c.rebalance_id == rebalance_id, orders.c.status != "dry_run")).scalar()
    return -1 if v is None else int(v)


# ----------------------------------------------------------------------------------------------- fills
FILL_COLS = [c.name for c in fills.columns]


def ingest_fills(conn, fills_in: list[Fill]) -> int:
    """Insert the venue's fills (`venue.model.Fill`) for orders this ledger knows; returns how many were new.

    Fills are attributed to a rebalance through the order's exchange id (oid) or client id; fills of orders
    the ledger never sent (manual trades on the same account) are stored with rebalance_id NULL.
    """
    if not fills_in:
        return 0
    with unit(conn, write=True):
        known = conn.execute(sa.select(orders.c.oid, orders.c.cloid, orders.c.rebalance_id)
                             .where(orders.c.oid.is_not(None))).fetchall()
        by_oid = {int(o): (c, r) for o, c, r in known}
        by_cloid = {c: r for _o, c, r in known}
        have = set(conn.execute(sa.select(fills.c.tid).where(
            fills.c.tid.in_([int(f.tid) for f in fills_in]))).scalars())
        now = now_utc()
        rows, seen = [], set()
        for f in fills_in:
            if f.tid in have or f.tid in seen:
                continue
            seen.add(f.tid)
            oid = f.oid
            cloid = f.cloid or (by_oid.get(oid, (None, None))[0] if oid is not None else None)
            reb = by_oid.get(oid, (None, None))[1] if oid in by_oid else by_cloid.get(cloid)
            rows.append({
                "tid": f.tid, "oid": oid, "cloid": cloid, "rebalance_id": reb, "coin": f.coin,
                "side": f.side, "px": f.px, "sz": f.sz, "notional_usd": f.notional_usd,
                "fee_usd": f.fee_usd, "fee_token": f.fee_token, "liquidity": "taker" if f.taker else "maker",
                "closed_pnl_usd": f.closed_pnl_usd, "dir": f.direction,
                "time": ts(from_ms(f.time_ms)), "hash": f.hash, "ingested_at": now,
            })
        if rows:
            conn.execute(insert(conn, fills).on_conflict_do_nothing(index_elements=["tid"]), rows)
        # Fills that arrived before their order's oid was known get attributed now.
        o = orders.alias("o")
        match = sa.select(o.c.rebalance_id).where(o.c.oid == fills.c.oid).limit(1).scalar_subquery()
        match_cloid = sa.select(o.c.cloid).where(o.c.oid == fills.c.oid).limit(1).scalar_subquery()
        conn.execute(fills.update().where(fills.c.rebalance_id.is_(None), fills.c.oid.is_not(None),
                                          sa.exists().where(o.c.oid == fills.c.oid))
                     .values(rebalance_id=match, cloid=match_cloid))
    return len(rows)


def fills_for(conn, rebalance_id: str) -> pd.DataFrame:
    return _frame(conn, sa.select(fills).where(fills.c.rebalance_id == rebalance_id).order_by(fills.c.time, fills.c.tid))


def fills_with_reference(conn, rebalance_id: str) -> pd.DataFrame:
    """Fills of a rebalance with the mid each order was priced from (slippage review)."""
    return _frame(conn, sa.select(fills.c.coin, fills.c.side, fills.c.px, fills.c.sz, orders.c.mid_px)
                  .join(orders, fills.c.cloid == orders.c.cloid).where(fills.c.rebalance_id == rebalance_id))


def fees_since(conn, since) -> float:
    with unit(conn):
        v = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(fills.c.fee_usd), 0.0))
                         .where(fills.c.time > ts(since))).scalar()
    return float(v or 0.0)


# ----------------------------------------------------------------------------------------------- snapshots
def snapshot(conn, ts_, source: str, rebalance_id: str | None, account_value: float, total_ntl_pos: float,
             positions_: dict, target_weights: dict[str, float] | None = None) -> None:
    """Positions and equity at `ts_` (exchange clock), replacing an earlier snapshot with the same key, in one
    transaction. With a rebalance id and targets, the targets are stored too (`rebalance_targets`)."""
    t = ts(ts_)
    target_weights = target_weights or {}
    signed = {c: (p.position_value if p.szi > 0 else -p.position_value) for c, p in positions_.items()}
    pos_rows = [row({"ts": t, "source": source, "rebalance_id": rebalance_id, "coin": c, "szi": p.szi,
                     "entry_px": p.entry_px, "position_value_usd": p.position_value,
                     "unrealized_pnl_usd": p.unrealized_pnl,
                     "weight": signed[c] / account_value if account_value else None,
                     "target_weight": target_weights.get(c, 0.0)}) for c, p in sorted(positions_.items())]
    eq = row({"ts": t, "source": source, "rebalance_id": rebalance_id, "account_value_usd": account_value,
              "total_ntl_pos_usd": total_ntl_pos, "gross_exposure_usd": sum(abs(v) for v in signed.values()),
              "net_exposure_usd": sum(signed.values()), "n_positions": len(positions_),
              "recorded_at": now_utc()})
    with unit(conn, write=True):
        conn.execute(positions.delete().where(positions.c.ts == t, positions.c.source == source))
        if pos_rows:
            conn.execute(positions.insert(), pos_rows)
        stmt = insert(conn, equity).values(**eq)
        conn.execute(stmt.on_conflict_do_update(index_elements=["ts", "source"],
                                                set_={k: stmt.excluded[k] for k in eq if k not in ("ts", "source")}))
        if rebalance_id is not None and target_weights:
            conn.execute(rebalance_targets.delete().where(rebalance_targets.c.rebalance_id == rebalance_id))
            conn.execute(rebalance_targets.insert(), [{"rebalance_id": rebalance_id, "coin": c, "weight": float(w)}
                                                      for c, w in sorted(target_weights.items())])


def last_rebalance_targets(conn) -> tuple[str, dict[str, float]] | None:
    """(rebalance id, coin → target weight) of the newest complete/partial rebalance."""
    with unit(conn):
        rid = conn.execute(sa.select(rebalances.c.rebalance_id).where(
            rebalances.c.status.in_(("complete", "partial")), rebalances.c.rebalance_id.not_like("emergency-%"))
            .order_by(rebalances.c.finished_at.desc().nulls_last()).limit(1)).scalar()
        if rid is None:
            return None
        weights = conn.execute(sa.select(rebalance_targets.c.coin, rebalance_targets.c.weight)
                               .where(rebalance_targets.c.rebalance_id == rid)).fetchall()
    return rid, {c: float(w) for c, w in weights}


def recent_rebalance_ids(conn, limit: int = 6) -> list[str]:
    """Finished rebalances, newest first (these are reviewed for slippage; the alert key makes it once each)."""
    with unit(conn):
        return list(conn.execute(sa.select(rebalances.c.rebalance_id).where(
            rebalances.c.status.in_(("complete", "partial")))
            .order_by(rebalances.c.finished_at.desc().nulls_last()).limit(limit)).scalars())


def finished_rebalance_for_window(conn, window_ts, mode: str) -> tuple[str, str] | None:
    """(rebalance id, status) of a complete or partial rebalance of `window_ts` in `mode`, or None — what the
    rebalance sensor asks before launching a run for a window."""
    with unit(conn):
        r = conn.execute(sa.select(rebalances.c.rebalance_id, rebalances.c.status).where(
            rebalances.c.window_ts == ts(window_ts), rebalances.c.mode == mode,
            rebalances.c.status.in_(("complete", "partial"))).limit(1)).first()
    return (r[0], r[1]) if r else None
