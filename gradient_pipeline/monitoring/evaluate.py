"""Alert conditions computed from the ledger: slippage per rebalance, position drift, daily summary figures.

Pure functions take frames and return rows; the `*_from_db` helpers read DuckDB (any connection, read-only is
fine). Raising and clearing alerts is done by the caller through `alerts.raise_alert` / `alerts.clear_alert`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import pandas as pd

from gradient_pipeline.storage.db import table_exists

# ------------------------------------------------------------------------------------------------ slippage


def slippage_rows(fills: pd.DataFrame, threshold_pct: float) -> list[dict]:
    """Fills whose price was worse than the mid at planning time by more than `threshold_pct` percent.

    `fills` needs coin, side (buy|sell), px, mid_px. Slippage is adverse-positive: a buy above the mid or a sell
    below it. Fills without a reference mid are ignored.
    """
    if fills.empty:
        return []
    f = fills.dropna(subset=["mid_px"])
    f = f[f["mid_px"] > 0]
    sign = f["side"].map({"buy": 1.0, "sell": -1.0})
    pct = (f["px"] - f["mid_px"]) / f["mid_px"] * 100.0 * sign
    out = f.assign(slippage_pct=pct)
    out = out[out["slippage_pct"] > threshold_pct]
    return [
        {"coin": r.coin, "side": r.side, "px": float(r.px), "ref_px": float(r.mid_px), "slippage_pct": float(r.slippage_pct)}
        for r in out.sort_values("slippage_pct", ascending=False).itertuples()
    ]


def fills_with_reference(conn: duckdb.DuckDBPyConnection, rebalance_id: str) -> pd.DataFrame:
    if not (table_exists(conn, "fills") and table_exists(conn, "orders")):
        return pd.DataFrame(columns=["coin", "side", "px", "mid_px"])
    return conn.execute(
        "SELECT f.coin, f.side, f.px, f.sz, o.mid_px FROM fills f JOIN orders o ON f.cloid = o.cloid "
        "WHERE f.rebalance_id = ?",
        [rebalance_id],
    ).df()


def recent_rebalance_ids(conn: duckdb.DuckDBPyConnection, limit: int = 6) -> list[str]:
    """Finished rebalances, newest first (these are reviewed for slippage; the alert key makes it once each)."""
    if not table_exists(conn, "rebalances"):
        return []
    rows = conn.execute(
        "SELECT rebalance_id FROM rebalances WHERE status IN ('complete', 'partial') "
        "ORDER BY finished_at DESC NULLS LAST LIMIT ?",
        [limit],
    ).fetchall()
    return [r[0] for r in rows]


# ------------------------------------------------------------------------------------------------ drift


def drift_rows(actual_usd: dict[str, float], target_usd: dict[str, float], account_value: float,
               threshold_pct: float) -> list[dict]:
    """Coins whose held notional differs from the target by more than `threshold_pct` % of account value."""
    if not account_value or account_value <= 0:
        return []
    out = []
    for coin in sorted(set(actual_usd) | set(target_usd)):
        a, t = actual_usd.get(coin, 0.0), target_usd.get(coin, 0.0)
        d = abs(a - t) / account_value * 100.0
        if d > threshold_pct:
            out.append({"coin": coin, "target_usd": t, "actual_usd": a, "drift_pct": d})
    return sorted(out, key=lambda r: -r["drift_pct"])


def last_rebalance_targets(conn: duckdb.DuckDBPyConnection) -> tuple[str, dict[str, float]] | None:
    """(rebalance id, coin → target weight) of the newest complete/partial rebalance, from `target_weights`."""
    if not (table_exists(conn, "rebalances") and table_exists(conn, "target_weights")):
        return None
    row = conn.execute(
        "SELECT rebalance_id, rebalance_time FROM rebalances WHERE status IN ('complete', 'partial') "
        "AND rebalance_id NOT LIKE 'emergency-%' ORDER BY finished_at DESC NULLS LAST LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    weights = conn.execute(
        "SELECT coin, weight FROM target_weights WHERE rebalance_time = ?", [row[1]]
    ).fetchall()
    return row[0], {c: float(w) for c, w in weights}


# ------------------------------------------------------------------------------------------------ daily summary


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


def daily_figures(conn: duckdb.DuckDBPyConnection, day: dt.date) -> DailyFigures | None:
    """PnL (equity change over the UTC day), exposure at the day's last snapshot, fills and fees of the day, and
    the rebalances that traded windows ending in the day. Times are the exchange clock (equity, fills, windows)."""
    if not table_exists(conn, "equity"):
        return None
    start = dt.datetime.combine(day, dt.time())
    end = start + dt.timedelta(days=1)
    last = conn.execute(
        "SELECT ts, account_value_usd FROM equity WHERE ts < ? ORDER BY ts DESC LIMIT 1", [end]
    ).fetchone()
    if last is None:
        return None
    before = conn.execute(
        "SELECT account_value_usd FROM equity WHERE ts < ? ORDER BY ts DESC LIMIT 1", [start]
    ).fetchone()
    first_of_day = conn.execute(
        "SELECT account_value_usd FROM equity WHERE ts >= ? AND ts < ? ORDER BY ts LIMIT 1", [start, end]
    ).fetchone()
    base = before[0] if before else (first_of_day[0] if first_of_day else last[1])
    longs = shorts = 0.0
    if table_exists(conn, "positions"):
        pos = conn.execute(
            "SELECT szi, position_value_usd FROM positions WHERE ts = (SELECT max(ts) FROM positions WHERE ts < ?)",
            [end],
        ).fetchall()
        longs = sum(v for s, v in pos if s > 0)
        shorts = sum(v for s, v in pos if s < 0)
    n_fills, fees = 0, 0.0
    if table_exists(conn, "fills"):
        n_fills, fees = conn.execute(
            "SELECT count(*), coalesce(sum(fee_usd), 0) FROM fills WHERE time >= ? AND time < ?", [start, end]
        ).fetchone()
    n_reb = 0
    if table_exists(conn, "rebalances"):
        n_reb = conn.execute(  # by the window's time (exchange clock), like equity and fills; not wall-clock start
            "SELECT count(*) FROM rebalances WHERE rebalance_time > ? AND rebalance_time <= ? "
            "AND status IN ('complete', 'partial') AND rebalance_id NOT LIKE 'emergency-%'", [start, end]
        ).fetchone()[0]
    return DailyFigures(day, float(last[1] - base), float(last[1]), float(longs), float(shorts), int(n_fills),
                        float(fees), int(n_reb))


def funding_usd(trading, day: dt.date) -> float:
    """Funding received (+) or paid (−) over the UTC day, from the exchange's `userFunding` for the master."""
    from gradient_pipeline.timegrid import to_ms

    start = pd.Timestamp(day)
    rows = trading.info.user_funding_history(trading.account_address, to_ms(start), to_ms(start + pd.Timedelta(days=1)))
    total = 0.0
    for r in rows or []:
        delta = r.get("delta", r)
        total += float(delta.get("usdc", 0.0))
    return total
