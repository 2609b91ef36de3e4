"""The market-data tables in DuckDB: DDL, window writes and the read helpers other domains call.

Documented for users in docs/TABLES.md. Every timestamp is naive UTC (`TIMESTAMP`). Writes replace whole 4h
windows atomically, per coin: `replace_coins` replaces a window's rows only for the coins the source covered, in
one transaction with their repair records (`market_data_repairs`), which is what makes rematerialising a partition
idempotent without ever deleting a coin whose input went missing.

Keys ((coin, ts); (ts, coin) for `universe`) are enforced on write, not by a DuckDB PRIMARY KEY: every frame is
pandera-validated unique before it is written, and `replace_window` refuses rows outside the window it replaces, so
no write can duplicate a stored row. (A PRIMARY KEY index is rewritten at every checkpoint, which made the 4h update
cost grow with the stored history: 164 → 252 ms for 1 month → 2.5 years, against a flat ~100 ms without it.)
Queries filter on `ts` ranges so their cost follows the window asked for, not the history: rows are inserted in
time order, so DuckDB's per-row-group min/max on `ts` skips everything outside the range.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import pandas as pd

from gradient_pipeline.storage.db import ensure_tables, replace_many, replace_rows
from gradient_pipeline.timegrid import BAR, utc_naive

CANDLES_COLUMNS = ["coin", "ts", "open", "high", "low", "close", "volume", "notional_usd", "ohlc_repaired",
                   "source", "ingested_at"]
FUNDING_COLUMNS = ["coin", "ts", "rate", "premium"]
REPAIRS_COLUMNS = ["table_name", "coin", "ts", "action", "rule", "open", "high_before", "low_before", "close",
                   "volume", "high_after", "low_after", "detail", "source"]
UNIVERSE_COLUMNS = ["ts", "coin", "asset_index", "sz_decimals", "max_leverage", "is_delisted", "only_isolated",
                    "day_ntl_vlm", "mark_px", "oracle_px", "open_interest", "funding"]

DDL = """
CREATE TABLE IF NOT EXISTS candles (
    coin          VARCHAR   NOT NULL,
    ts            TIMESTAMP NOT NULL,  -- candle open time, naive UTC; the candle covers [ts, ts + 4h)
    open          DOUBLE    NOT NULL,
    high          DOUBLE    NOT NULL,
    low           DOUBLE    NOT NULL,
    close         DOUBLE    NOT NULL,
    volume        DOUBLE    NOT NULL,  -- base-asset units
    notional_usd  DOUBLE    NOT NULL,  -- volume * close
    ohlc_repaired BOOLEAN   NOT NULL,  -- high/low widened to include open/close (docs/TABLES.md)
    source        VARCHAR   NOT NULL,  -- hyperliquid | freqtrade
    ingested_at   TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS funding (
    coin    VARCHAR   NOT NULL,
    ts      TIMESTAMP NOT NULL,  -- funding hour, naive UTC
    rate    DOUBLE    NOT NULL,  -- rate for the interval (1h; 8h before 2023-06-08); + means longs pay shorts
    premium DOUBLE               -- premium component when the source has it (hyperliquid), else NULL
);
CREATE TABLE IF NOT EXISTS universe (
    ts            TIMESTAMP NOT NULL,  -- window open time; the snapshot describes the window [ts, ts + 4h)
    coin          VARCHAR   NOT NULL,
    asset_index   INTEGER,             -- exchange asset id (hyperliquid), NULL for freqtrade
    sz_decimals   INTEGER,
    max_leverage  INTEGER,
    is_delisted   BOOLEAN   NOT NULL,
    only_isolated BOOLEAN,
    day_ntl_vlm   DOUBLE,              -- 24h notional volume, USD
    mark_px       DOUBLE,
    oracle_px     DOUBLE,
    open_interest DOUBLE,              -- base units
    funding       DOUBLE               -- latest hourly funding rate known for the window
);
CREATE TABLE IF NOT EXISTS market_data_repairs (
    table_name  VARCHAR   NOT NULL,  -- the table the row was bound for (candles)
    coin        VARCHAR   NOT NULL,
    ts          TIMESTAMP NOT NULL,  -- the row's key time, naive UTC
    action      VARCHAR   NOT NULL,  -- repaired (stored with changed values) | dropped (not stored)
    rule        VARCHAR   NOT NULL,  -- ohlc_widened_to_cover_open_close | before_first_trade
    open        DOUBLE,
    high_before DOUBLE,              -- as the source gave it
    low_before  DOUBLE,
    close       DOUBLE,
    volume      DOUBLE,
    high_after  DOUBLE,              -- as stored (NULL for dropped rows)
    low_after   DOUBLE,
    detail      VARCHAR,
    source      VARCHAR   NOT NULL
);
"""


def ensure(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the market-data tables if they do not exist (idempotent)."""
    ensure_tables(conn, DDL)


def replace_window(conn: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame, start, end) -> int:
    """Atomically replace every row of `table` with `start <= ts < end` by `frame` (already validated).

    Replaces ALL coins' rows in the window; the assets use `replace_coins`, which touches only the coins the source
    covered."""
    columns = _COLUMNS[table]
    lo, hi = utc_naive(start), utc_naive(end)
    _refuse_outside(table, frame, lo, hi)
    # Time-ordered inserts keep each row group's ts range narrow, so later window queries skip old data.
    ordered = frame[columns].sort_values(["ts", "coin"], kind="stable")
    return replace_rows(conn, table, ordered, "ts >= ? AND ts < ?", [lo, hi])


GAP_LOOKBACK = pd.Timedelta(days=30)
_COLUMNS = {"candles": CANDLES_COLUMNS, "funding": FUNDING_COLUMNS, "universe": UNIVERSE_COLUMNS}
_VALUE_COLUMNS = [c for c in CANDLES_COLUMNS if c not in ("coin", "ts", "ingested_at")]


def stored_coins(conn: duckdb.DuckDBPyConnection, table: str, start, end) -> set[str]:
    """Coins with a stored row of `table` in `[start, end)`."""
    rows = conn.execute(f"SELECT DISTINCT coin FROM {table} WHERE ts >= ? AND ts < ?", [utc_naive(start), utc_naive(end)])
    return {r[0] for r in rows.fetchall()}


def lost_rows(conn: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame, start, end,
              coins: Iterable[str]) -> pd.DataFrame:
    """Stored `(coin, ts)` of `coins` in `[start, end)` that `frame` does not have: what a replace would delete."""
    where, params = _where(start, end, coins)
    stored = conn.execute(f"SELECT coin, ts FROM {table} WHERE {where}", params).df()
    if stored.empty:
        return stored
    have = pd.MultiIndex.from_frame(frame[["coin", "ts"]].astype({"ts": "datetime64[ns]"}))
    key = pd.MultiIndex.from_frame(stored.astype({"ts": "datetime64[ns]"}))
    return stored[~key.isin(have)].sort_values(["coin", "ts"]).reset_index(drop=True)


def keep_ingested_at(conn: duckdb.DuckDBPyConnection, rows: pd.DataFrame, start, end) -> pd.DataFrame:
    """`candles` rows whose values equal the stored row keep the stored `ingested_at`: re-importing the same data
    changes nothing, and `ingested_at` says when a value was first stored, not when it was last re-read."""
    if rows.empty:
        return rows
    where, params = _where(start, end, sorted(rows["coin"].unique()))
    stored = conn.execute(f"SELECT * FROM candles WHERE {where}", params).df()
    if stored.empty:
        return rows
    stored["ts"] = stored["ts"].astype("datetime64[ns]")
    m = rows.merge(stored, on=["coin", "ts"], how="left", suffixes=("", "_stored"))
    same = pd.Series(True, index=m.index)
    for c in _VALUE_COLUMNS:
        same &= m[c] == m[f"{c}_stored"]
    out = rows.copy()
    out.loc[same.to_numpy(), "ingested_at"] = m.loc[same, "ingested_at_stored"].astype("datetime64[ns]").to_numpy()
    return out


def replace_coins(conn: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame, start, end,
                  coins: Iterable[str], repairs: pd.DataFrame | None = None) -> int:
    """Atomically replace the rows of `table` in `[start, end)` for `coins` only (plus their repair records).

    Rows of other coins are untouched: a coin the source did not cover keeps what is stored. `frame` must hold only
    rows of `coins` inside the window. With `repairs`, `market_data_repairs` rows of (`table`, `coins`, window) are
    replaced in the same transaction.
    """
    coins = sorted(set(coins))
    lo, hi = utc_naive(start), utc_naive(end)
    _refuse_outside(table, frame, lo, hi)
    stray = frame[~frame["coin"].isin(coins)]
    if len(stray):
        raise ValueError(f"{table}: rows for coin(s) {sorted(stray['coin'].unique())} not in the coins being "
                         "replaced; nothing was written")
    where = "ts >= ? AND ts < ? AND coin IN (SELECT unnest(?))"
    ordered = frame[_COLUMNS[table]].sort_values(["ts", "coin"], kind="stable")
    steps = [(table, ordered, where, [lo, hi, coins])]
    if repairs is not None:
        steps.append(("market_data_repairs", repairs[REPAIRS_COLUMNS], f"table_name = ? AND {where}",
                      [table, lo, hi, coins]))
    return replace_many(conn, steps)[0]


def replace_keys(conn: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame, start, end) -> int:
    """Atomically replace exactly the rows of `table` whose (coin, ts) is in `frame`; every other row is kept.

    For the derived `universe`: a historical window rebuilt from a source that can no longer say everything it said
    when the window was newest (hyperliquid only knows who is delisted *now*) must not lose what was stored then.
    """
    lo, hi = utc_naive(start), utc_naive(end)
    _refuse_outside(table, frame, lo, hi)
    ordered = frame[_COLUMNS[table]].sort_values(["ts", "coin"], kind="stable")
    keys = ordered[["coin", "ts"]].reset_index(drop=True)
    conn.register("_replace_keys", keys)
    try:
        where = (f"ts >= ? AND ts < ? AND EXISTS (SELECT 1 FROM _replace_keys k "
                 f"WHERE k.coin = {table}.coin AND k.ts = {table}.ts)")
        return replace_many(conn, [(table, ordered, where, [lo, hi])])[0]
    finally:
        conn.unregister("_replace_keys")


def _refuse_outside(table: str, frame: pd.DataFrame, lo: pd.Timestamp, hi: pd.Timestamp) -> None:
    outside = frame[(frame["ts"] < lo) | (frame["ts"] >= hi)]
    if len(outside):
        row = outside.iloc[0]
        raise ValueError(
            f"{table}: {len(outside)} row(s) outside the window [{lo}, {hi}) being replaced, e.g. coin "
            f"{row['coin']} at {row['ts']}; nothing was written"
        )


def _where(start, end, coins: Iterable[str] | None) -> tuple[str, list]:
    clauses, params = ["TRUE"], []
    if start is not None:
        clauses.append("ts >= ?")
        params.append(utc_naive(start))
    if end is not None:
        clauses.append("ts < ?")
        params.append(utc_naive(end))
    if coins is not None:
        coins = list(coins)
        clauses.append("coin IN (SELECT unnest(?))")
        params.append(coins)
    return " AND ".join(clauses), params


def read_candles(conn: duckdb.DuckDBPyConnection, start=None, end=None, coins: Iterable[str] | None = None) -> pd.DataFrame:
    """Stored candles with `start <= ts < end` (either bound optional), sorted by (coin, ts)."""
    where, params = _where(start, end, coins)
    return conn.execute(f"SELECT * FROM candles WHERE {where} ORDER BY coin, ts", params).df()


def read_funding(conn: duckdb.DuckDBPyConnection, start=None, end=None, coins: Iterable[str] | None = None) -> pd.DataFrame:
    where, params = _where(start, end, coins)
    return conn.execute(f"SELECT * FROM funding WHERE {where} ORDER BY coin, ts", params).df()


def read_universe(conn: duckdb.DuckDBPyConnection, start=None, end=None, coins: Iterable[str] | None = None) -> pd.DataFrame:
    where, params = _where(start, end, coins)
    return conn.execute(f"SELECT * FROM universe WHERE {where} ORDER BY ts, coin", params).df()


def coins_with_candle_in(conn: duckdb.DuckDBPyConnection, start, end) -> set[str]:
    """Coins with a stored candle in `[start, end)` (bounded: reads only that range)."""
    rows = conn.execute("SELECT DISTINCT coin FROM candles WHERE ts >= ? AND ts < ?", [utc_naive(start), utc_naive(end)])
    return {r[0] for r in rows.fetchall()}


def closes_at(conn: duckdb.DuckDBPyConnection, ts) -> pd.Series:
    """Stored close of every coin's candle opening at `ts`, indexed by coin (the bar before a window)."""
    rows = conn.execute("SELECT coin, close FROM candles WHERE ts = ?", [utc_naive(ts)]).fetchall()
    return pd.Series({c: float(x) for c, x in rows}, dtype=float)


def window_row_count(conn: duckdb.DuckDBPyConnection, table: str, ts) -> int:
    t = utc_naive(ts)
    return int(conn.execute(f"SELECT count(*) FROM {table} WHERE ts >= ? AND ts < ?", [t, t + BAR]).fetchone()[0])


def stored_range(conn: duckdb.DuckDBPyConnection, table: str = "candles") -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    lo, hi = conn.execute(f"SELECT min(ts), max(ts) FROM {table}").fetchone()
    return (pd.Timestamp(lo) if lo is not None else None, pd.Timestamp(hi) if hi is not None else None)


def candle_gaps(conn: duckdb.DuckDBPyConnection, coins: Iterable[str] | None = None, start=None, end=None) -> pd.DataFrame:
    """Missing 4h bars inside each coin's stored range: `coin, after, before, missing_bars` (one row per hole).

    With `start`, only holes ending at a stored bar in `[start, end)` are reported: each coin with a bar there is
    joined with its last stored bar in the `GAP_LOOKBACK` before `start` (so a hole reaching back before the range
    is seen whole; a coin back after a longer absence counts as relisted), and the cost follows the range, not the
    history.
    """
    where, params = _where(start, end, coins)
    if start is None:
        rows = f"SELECT coin, ts FROM candles WHERE {where}"
    else:
        rows = f"""
            SELECT coin, ts FROM candles WHERE {where}
            UNION ALL
            SELECT coin, max(ts) FROM candles
            WHERE ts < ? AND ts >= ? AND coin IN (SELECT DISTINCT coin FROM candles WHERE {where}) GROUP BY coin"""
        params = [*params, utc_naive(start), utc_naive(start) - GAP_LOOKBACK, *params]
    gaps = conn.execute(
        f"""
        SELECT coin, prev_ts AS after, ts AS before,
               CAST(epoch(ts - prev_ts) / 14400 AS BIGINT) - 1 AS missing_bars
        FROM (SELECT coin, ts, lag(ts) OVER (PARTITION BY coin ORDER BY ts) AS prev_ts FROM ({rows}))
        WHERE prev_ts IS NOT NULL AND ts - prev_ts > INTERVAL 4 HOUR
        ORDER BY coin, after
        """,
        params,
    ).df()
    return gaps
