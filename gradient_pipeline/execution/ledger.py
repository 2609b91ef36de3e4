"""The execution ledger in DuckDB: `rebalances`, `orders`, `fills`, `positions`, `equity`.

Every write is idempotent so a resumed rebalance can replay any step:
- `orders` is keyed by the deterministic client order id; an order is recorded (status `sending`) **before** it
  is sent, so a process killed mid-send leaves a row the next run resolves by `orderStatus` lookup;
- `fills` is keyed by the exchange's trade id (`tid`); ingesting the same fill twice changes nothing;
- `positions` and `equity` are snapshots keyed by time; `rebalances` by the id derived from the target window.
Columns and units are documented in docs/TABLES.md ("Execution ledger").
"""

from __future__ import annotations

import duckdb
import pandas as pd

from gradient_pipeline.timegrid import from_ms, now_utc

DDL = """
CREATE TABLE IF NOT EXISTS rebalances (
    rebalance_id VARCHAR PRIMARY KEY,
    window_ts TIMESTAMP,          -- open time of the 4h window whose targets are traded
    rebalance_time TIMESTAMP,     -- window_ts + 4h: when the targets became valid
    mode VARCHAR,                 -- paper | dry_run | testnet | mainnet
    network VARCHAR,              -- local | testnet | mainnet
    account VARCHAR,              -- master account address (public)
    status VARCHAR,               -- running | complete | partial | refused | failed
    reason VARCHAR,               -- why refused/failed/partial (residuals), NULL when complete
    capital_usd DOUBLE,           -- account value the plan was sized from (frozen at first start)
    attempts INTEGER,             -- order rounds sent so far
    n_orders INTEGER,
    n_fills INTEGER,
    dagster_run_id VARCHAR,
    started_at TIMESTAMP,
    finished_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS orders (
    cloid VARCHAR PRIMARY KEY,    -- deterministic: sha256(rebalance_id|coin|leg|attempt)[:16 bytes]
    rebalance_id VARCHAR,
    coin VARCHAR,
    leg VARCHAR,                  -- close | reduce | open
    attempt INTEGER,
    side VARCHAR,                 -- buy | sell
    sz DOUBLE,                    -- base units sent
    limit_px DOUBLE,              -- USD per unit
    mid_px DOUBLE,                -- mid used for pricing
    reduce_only BOOLEAN,
    tif VARCHAR,                  -- Ioc | Alo | Gtc
    notional_usd DOUBLE,          -- sz * mid_px
    status VARCHAR,               -- planned | dry_run | sending | filled | partial | resting | canceled | rejected | ambiguous | not_placed
    oid BIGINT,                   -- exchange order id
    filled_sz DOUBLE,
    avg_px DOUBLE,
    error VARCHAR,
    created_at TIMESTAMP,
    updated_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS fills (
    tid BIGINT PRIMARY KEY,       -- exchange trade id
    oid BIGINT,
    cloid VARCHAR,
    rebalance_id VARCHAR,
    coin VARCHAR,
    side VARCHAR,                 -- buy | sell
    px DOUBLE,
    sz DOUBLE,
    notional_usd DOUBLE,
    fee_usd DOUBLE,
    fee_token VARCHAR,
    liquidity VARCHAR,            -- maker | taker (exchange 'crossed')
    closed_pnl_usd DOUBLE,
    dir VARCHAR,
    time TIMESTAMP,
    hash VARCHAR,
    ingested_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS positions (
    ts TIMESTAMP,                 -- exchange clock at the snapshot
    source VARCHAR,               -- rebalance_start | rebalance_end | …
    rebalance_id VARCHAR,
    coin VARCHAR,
    szi DOUBLE,                   -- signed base units, + long
    entry_px DOUBLE,
    position_value_usd DOUBLE,
    unrealized_pnl_usd DOUBLE,
    weight DOUBLE,                -- signed position value / account value
    target_weight DOUBLE,
    PRIMARY KEY (ts, source, coin)
);
CREATE TABLE IF NOT EXISTS equity (
    ts TIMESTAMP,
    source VARCHAR,               -- rebalance_start | rebalance_end | sensor | …
    rebalance_id VARCHAR,
    account_value_usd DOUBLE,
    total_ntl_pos_usd DOUBLE,
    gross_exposure_usd DOUBLE,
    net_exposure_usd DOUBLE,
    n_positions INTEGER,
    PRIMARY KEY (ts, source)
);
"""

TERMINAL = ("complete", "partial", "refused", "failed")


def ensure(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(DDL)


# ----------------------------------------------------------------------------------------------- rebalances
def get_rebalance(conn, rebalance_id: str) -> dict | None:
    df = conn.execute("SELECT * FROM rebalances WHERE rebalance_id = ?", [rebalance_id]).df()
    return None if df.empty else df.iloc[0].to_dict()


def start_rebalance(conn, rebalance_id, window_ts, mode, network, account, capital_usd, dagster_run_id=None) -> dict:
    """Create the row, or return the existing one (a resumed run keeps its frozen capital)."""
    existing = get_rebalance(conn, rebalance_id)
    if existing is not None:
        conn.execute(
            "UPDATE rebalances SET dagster_run_id = coalesce(?, dagster_run_id), "
            "status = CASE WHEN status IN ('complete','partial') THEN status ELSE 'running' END WHERE rebalance_id = ?",
            [dagster_run_id, rebalance_id],
        )
        return get_rebalance(conn, rebalance_id)
    now = now_utc()
    conn.execute(
        "INSERT INTO rebalances VALUES (?, ?, ?, ?, ?, ?, 'running', NULL, ?, 0, 0, 0, ?, ?, NULL)",
        [rebalance_id, window_ts, pd.Timestamp(window_ts) + pd.Timedelta(hours=4), mode, network, account,
         capital_usd, dagster_run_id, now],
    )
    return get_rebalance(conn, rebalance_id)


def set_capital(conn, rebalance_id: str, capital_usd: float) -> None:
    conn.execute("UPDATE rebalances SET capital_usd = ? WHERE rebalance_id = ? AND capital_usd IS NULL",
                 [capital_usd, rebalance_id])


def set_attempts(conn, rebalance_id: str, attempts: int) -> None:
    conn.execute("UPDATE rebalances SET attempts = greatest(attempts, ?) WHERE rebalance_id = ?", [attempts, rebalance_id])


def finish_rebalance(conn, rebalance_id: str, status: str, reason: str | None) -> None:
    if status not in TERMINAL:
        raise ValueError(f"not a terminal status: {status!r}")
    n_orders = conn.execute("SELECT count(*) FROM orders WHERE rebalance_id = ?", [rebalance_id]).fetchall()[0][0]
    n_fills = conn.execute("SELECT count(*) FROM fills WHERE rebalance_id = ?", [rebalance_id]).fetchall()[0][0]
    conn.execute(
        "UPDATE rebalances SET status = ?, reason = ?, n_orders = ?, n_fills = ?, finished_at = ? WHERE rebalance_id = ?",
        [status, reason, n_orders, n_fills, now_utc(), rebalance_id],
    )


# ----------------------------------------------------------------------------------------------- orders
ORDER_COLS = ["cloid", "rebalance_id", "coin", "leg", "attempt", "side", "sz", "limit_px", "mid_px", "reduce_only",
              "tif", "notional_usd", "status", "oid", "filled_sz", "avg_px", "error", "created_at", "updated_at"]


def record_orders(conn, rows: list[dict]) -> None:
    """Write-ahead: insert orders (status `sending`/`dry_run`) before they go out. Re-inserting a cloid is a no-op."""
    if not rows:
        return
    now = now_utc()
    df = pd.DataFrame([{**{c: None for c in ORDER_COLS}, "created_at": now, "updated_at": now, **r} for r in rows])[ORDER_COLS]
    df["oid"] = df["oid"].astype("Int64")
    conn.register("_new_orders", df)
    try:
        conn.execute(f"INSERT OR IGNORE INTO orders SELECT {', '.join(ORDER_COLS)} FROM _new_orders")
    finally:
        conn.unregister("_new_orders")


def update_order(conn, cloid: str, status: str, oid=None, filled_sz=None, avg_px=None, error=None) -> None:
    conn.execute(
        "UPDATE orders SET status = ?, oid = coalesce(?, oid), filled_sz = coalesce(?, filled_sz), "
        "avg_px = coalesce(?, avg_px), error = coalesce(?, error), updated_at = ? WHERE cloid = ?",
        [status, oid, filled_sz, avg_px, error, now_utc(), cloid],
    )


def orders_for(conn, rebalance_id: str) -> pd.DataFrame:
    return conn.execute("SELECT * FROM orders WHERE rebalance_id = ? ORDER BY attempt, created_at, coin",
                        [rebalance_id]).df()


def unresolved_orders(conn, rebalance_id: str) -> pd.DataFrame:
    """Orders whose fate the ledger does not know: sent (or about to be) without a definitive answer, or resting."""
    return conn.execute(
        "SELECT * FROM orders WHERE rebalance_id = ? AND status IN ('sending', 'ambiguous', 'resting')",
        [rebalance_id],
    ).df()


def interrupted(conn, mode: str, account: str, except_id: str) -> pd.DataFrame:
    """Orders of *other* unfinished rebalances of this mode and account (e.g. a crashed run whose window passed):
    they must be resolved, and resting ones cancelled, before a new rebalance trades."""
    return conn.execute(
        "SELECT o.* FROM orders o JOIN rebalances r USING (rebalance_id) WHERE r.mode = ? AND lower(r.account) = ? "
        "AND o.rebalance_id <> ? AND o.status IN ('sending', 'ambiguous', 'resting')",
        [mode, account.lower(), except_id],
    ).df()


def supersede(conn, mode: str, account: str, by_id: str) -> list[str]:
    """Close older rebalances left `running` by a dead process: status failed, reason names the successor."""
    ids = [r[0] for r in conn.execute(
        "SELECT rebalance_id FROM rebalances WHERE mode = ? AND lower(account) = ? AND status = 'running' "
        "AND rebalance_id <> ?", [mode, account.lower(), by_id]).fetchall()]
    for rid in ids:
        finish_rebalance(conn, rid, "failed", f"interrupted; superseded by {by_id} (its orders were resolved by client id)")
    return ids


def max_attempt(conn, rebalance_id: str) -> int:
    v = conn.execute("SELECT max(attempt) FROM orders WHERE rebalance_id = ? AND status <> 'dry_run'",
                     [rebalance_id]).fetchall()[0][0]
    return -1 if v is None else int(v)


# ----------------------------------------------------------------------------------------------- fills
FILL_COLS = ["tid", "oid", "cloid", "rebalance_id", "coin", "side", "px", "sz", "notional_usd", "fee_usd",
             "fee_token", "liquidity", "closed_pnl_usd", "dir", "time", "hash", "ingested_at"]


def ingest_fills(conn, fills: list[dict]) -> int:
    """Insert exchange fills (userFills shape) for orders this ledger knows; returns how many were new.

    Fills are attributed to a rebalance through the order's exchange id (oid) or client id; fills of orders
    the ledger never sent (manual trades on the same account) are stored with rebalance_id NULL.
    """
    if not fills:
        return 0
    known = conn.execute("SELECT oid, cloid, rebalance_id FROM orders WHERE oid IS NOT NULL").fetchall()
    by_oid = {int(o): (c, r) for o, c, r in known}
    by_cloid = {c: r for _o, c, r in known}
    now = now_utc()
    rows = []
    for f in fills:
        oid = int(f["oid"]) if f.get("oid") is not None else None
        cloid = f.get("cloid") or (by_oid.get(oid, (None, None))[0] if oid is not None else None)
        reb = by_oid.get(oid, (None, None))[1] if oid in by_oid else by_cloid.get(cloid)
        px, sz = float(f["px"]), float(f["sz"])
        rows.append({
            "tid": int(f["tid"]), "oid": oid, "cloid": cloid, "rebalance_id": reb, "coin": f["coin"],
            "side": "buy" if f.get("side") == "B" else "sell", "px": px, "sz": sz, "notional_usd": px * sz,
            "fee_usd": float(f.get("fee", 0.0)), "fee_token": f.get("feeToken", "USDC"),
            "liquidity": "taker" if f.get("crossed", True) else "maker",
            "closed_pnl_usd": float(f.get("closedPnl", 0.0)), "dir": f.get("dir"),
            "time": from_ms(f["time"]), "hash": f.get("hash"), "ingested_at": now,
        })
    df = pd.DataFrame(rows)[FILL_COLS]
    df["oid"] = df["oid"].astype("Int64")
    before = conn.execute("SELECT count(*) FROM fills").fetchall()[0][0]
    conn.register("_new_fills", df)
    try:
        conn.execute(f"INSERT OR IGNORE INTO fills SELECT {', '.join(FILL_COLS)} FROM _new_fills")
        # Fills that arrived before their order's oid was known get attributed now.
        conn.execute(
            "UPDATE fills SET rebalance_id = o.rebalance_id, cloid = o.cloid FROM orders o "
            "WHERE fills.rebalance_id IS NULL AND fills.oid = o.oid"
        )
    finally:
        conn.unregister("_new_fills")
    return conn.execute("SELECT count(*) FROM fills").fetchall()[0][0] - before


def fills_for(conn, rebalance_id: str) -> pd.DataFrame:
    return conn.execute("SELECT * FROM fills WHERE rebalance_id = ? ORDER BY time, tid", [rebalance_id]).df()


# ----------------------------------------------------------------------------------------------- snapshots
def snapshot(conn, ts, source: str, rebalance_id: str | None, account_value: float, total_ntl_pos: float,
             positions: dict, target_weights: dict[str, float] | None = None) -> None:
    """Positions and equity at `ts` (exchange clock), replacing an earlier snapshot with the same key."""
    ts = pd.Timestamp(ts)
    target_weights = target_weights or {}
    signed = {c: (p.position_value if p.szi > 0 else -p.position_value) for c, p in positions.items()}
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute("DELETE FROM positions WHERE ts = ? AND source = ?", [ts, source])
        for c, p in sorted(positions.items()):
            conn.execute(
                "INSERT INTO positions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [ts, source, rebalance_id, c, p.szi, p.entry_px, p.position_value, p.unrealized_pnl,
                 signed[c] / account_value if account_value else None, target_weights.get(c, 0.0)],
            )
        conn.execute(
            "INSERT OR REPLACE INTO equity VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [ts, source, rebalance_id, account_value, total_ntl_pos, sum(abs(v) for v in signed.values()),
             sum(signed.values()), len(positions)],
        )
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
