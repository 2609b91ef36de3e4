"""The strategy tables in DuckDB (Dagster-free): DDL, window reads and the stored recursion state.

User-facing columns (documented in README / ARCHITECTURE.md):

* ``returns(ts, coin, r, sigma, z, adv_usd, has_candle)`` — one row per coin with history at bar ``ts``
  (from its first traded candle; a coin missing for more than 7 days is dropped).
* ``momentum_scores(ts, coin, score, rank)`` — rank 1 = highest score among coins with a score; ties by name.
* ``target_weights(rebalance_time, ts, coin, weight, score, sigma, adv_usd, side, rank)`` — only non-zero
  weights; ``weight`` is a signed fraction of capital, ``rebalance_time = ts + 4h`` (UTC window end);
  ``rank`` is among the *eligible* coins at that bar.
* ``target_windows(rebalance_time, ts, …)`` — one row per computed window, even when the book is empty:
  counts, grosses, net, turnover vs the previous window, whether it was a rebalance bar.

Internal columns (prefix ``st_``, plus ``momentum_scores.ewm`` and ``signal_key``): the exact recursion state
after the bar, so the next window continues from it instead of recomputing the history. ``signal_key`` names
the parameters the state belongs to; a run with other parameters ignores it and recomputes.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from gradient_pipeline.core.signals import SignalState
from gradient_pipeline.storage.db import ensure_tables, table_exists
from gradient_pipeline.timegrid import utc_naive

DDL = """
CREATE TABLE IF NOT EXISTS returns (
    ts            TIMESTAMP NOT NULL,  -- candle open time (bar), naive UTC
    coin          VARCHAR   NOT NULL,
    r             DOUBLE,              -- log(close_t / close_t-1); NULL when either candle is missing
    sigma         DOUBLE,              -- EWMA std of r (span vol_span, pandas adjust=False)
    z             DOUBLE,              -- r / sigma (NULL when not finite; counts as 0 in the score)
    adv_usd       DOUBLE    NOT NULL,  -- Σ volume × close over the last adv_bars bars (USD)
    has_candle    BOOLEAN   NOT NULL,
    st_gap        INTEGER   NOT NULL,
    st_prev_close DOUBLE,
    st_vol_mean   DOUBLE,
    st_vol_cov    DOUBLE    NOT NULL,
    st_vol_sum_wt DOUBLE    NOT NULL,
    st_vol_sum_wt2 DOUBLE   NOT NULL,
    st_vol_old_wt DOUBLE    NOT NULL,
    st_vol_nobs   INTEGER   NOT NULL,
    signal_key    VARCHAR   NOT NULL,
    PRIMARY KEY (ts, coin)
);
CREATE TABLE IF NOT EXISTS momentum_scores (
    ts         TIMESTAMP NOT NULL,
    coin       VARCHAR   NOT NULL,
    score      DOUBLE    NOT NULL,
    rank       INTEGER   NOT NULL,  -- 1 = highest score at this bar; ties by coin name
    ewm        DOUBLE[]  NOT NULL,  -- EWMA of z per lookback span (state)
    signal_key VARCHAR   NOT NULL,
    PRIMARY KEY (ts, coin)
);
CREATE TABLE IF NOT EXISTS target_weights (
    rebalance_time TIMESTAMP NOT NULL,  -- window end (UTC): targets computed from candles closed by then
    ts             TIMESTAMP NOT NULL,  -- window open = rebalance_time - 4h
    coin           VARCHAR   NOT NULL,
    weight         DOUBLE    NOT NULL,  -- signed fraction of capital (+ long, - short)
    score          DOUBLE    NOT NULL,
    sigma          DOUBLE    NOT NULL,
    adv_usd        DOUBLE    NOT NULL,
    side           VARCHAR   NOT NULL,  -- long | short
    rank           INTEGER   NOT NULL,  -- rank among eligible coins (1 = highest score)
    PRIMARY KEY (rebalance_time, coin)
);
CREATE TABLE IF NOT EXISTS signal_windows (
    asset       VARCHAR   NOT NULL,  -- returns | momentum_scores
    ts          TIMESTAMP NOT NULL,
    signal_key  VARCHAR   NOT NULL,
    n_rows      INTEGER   NOT NULL,
    computed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (asset, ts)
);
CREATE TABLE IF NOT EXISTS target_windows (
    rebalance_time TIMESTAMP NOT NULL,
    ts             TIMESTAMP NOT NULL,
    is_rebalance   BOOLEAN   NOT NULL,
    n_eligible     INTEGER   NOT NULL,
    k              INTEGER   NOT NULL,
    n_long         INTEGER   NOT NULL,
    n_short        INTEGER   NOT NULL,
    long_gross     DOUBLE    NOT NULL,
    short_gross    DOUBLE    NOT NULL,
    net            DOUBLE    NOT NULL,
    turnover       DOUBLE    NOT NULL,  -- Σ |w - w_prev| vs the previous window's targets
    n_capped       INTEGER   NOT NULL,
    shrunk         BOOLEAN   NOT NULL,  -- a side could not reach its gross under the cap
    vol_scale      DOUBLE    NOT NULL,
    config_key     VARCHAR   NOT NULL,
    computed_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (rebalance_time)
);
"""

RETURNS_COLUMNS = ["ts", "coin", "r", "sigma", "z", "adv_usd", "has_candle", "st_gap", "st_prev_close",
                   "st_vol_mean", "st_vol_cov", "st_vol_sum_wt", "st_vol_sum_wt2", "st_vol_old_wt", "st_vol_nobs",
                   "signal_key"]
SCORES_COLUMNS = ["ts", "coin", "score", "rank", "ewm", "signal_key"]
TARGET_WINDOW_COLUMNS = ["rebalance_time", "ts", "is_rebalance", "n_eligible", "k", "n_long", "n_short",
                         "long_gross", "short_gross", "net", "turnover", "n_capped", "shrunk", "vol_scale",
                         "config_key", "computed_at"]
_STATE_MAP = {"st_prev_close": "prev_close", "st_vol_mean": "vol_mean", "st_vol_cov": "vol_cov",
              "st_vol_sum_wt": "vol_sum_wt", "st_vol_sum_wt2": "vol_sum_wt2", "st_vol_old_wt": "vol_old_wt"}


def ensure(conn: duckdb.DuckDBPyConnection) -> None:
    ensure_tables(conn, DDL)


def has_window(conn, asset: str, ts, key: str) -> bool:
    """True if `asset` was computed for bar `ts` with parameters `key` (its state can be continued)."""
    row = conn.execute("SELECT signal_key FROM signal_windows WHERE asset = ? AND ts = ?", [asset, utc_naive(ts)]).fetchone()
    return row is not None and row[0] == key


def load_vol_state(conn, ts, key: str, n_spans: int) -> SignalState | None:
    """The returns recursion state after bar `ts`, or None if that window was not computed with `key`."""
    if not has_window(conn, "returns", ts, key):
        return None
    df = conn.execute(f"SELECT coin, {', '.join(c for c in RETURNS_COLUMNS if c.startswith('st_'))} FROM returns "
                      "WHERE ts = ? ORDER BY coin", [utc_naive(ts)]).df()
    st = SignalState(tuple(df["coin"]), n_spans)
    st.started[:] = True
    st.gap[:] = df["st_gap"].to_numpy(np.int64)
    st.vol_nobs[:] = df["st_vol_nobs"].to_numpy(np.int64)
    for col, attr in _STATE_MAP.items():
        getattr(st, attr)[:] = df[col].to_numpy(np.float64, na_value=np.nan)
    return st


def load_ewm_state(conn, ts, key: str, n_spans: int) -> SignalState | None:
    if not has_window(conn, "momentum_scores", ts, key):
        return None
    df = conn.execute("SELECT coin, ewm FROM momentum_scores WHERE ts = ? ORDER BY coin", [utc_naive(ts)]).df()
    st = SignalState(tuple(df["coin"]), n_spans)
    if len(df):
        st.ewm[:] = np.vstack([np.asarray(e, dtype=np.float64) for e in df["ewm"]])
    return st


def read_returns(conn, start, end) -> pd.DataFrame:
    return conn.execute("SELECT ts, coin, r, sigma, z, adv_usd, has_candle FROM returns WHERE ts >= ? AND ts < ? "
                        "ORDER BY ts, coin", [utc_naive(start), utc_naive(end)]).df()


def read_scores(conn, start, end) -> pd.DataFrame:
    return conn.execute("SELECT ts, coin, score, rank FROM momentum_scores WHERE ts >= ? AND ts < ? ORDER BY ts, coin",
                        [utc_naive(start), utc_naive(end)]).df()


def read_targets(conn, start, end) -> pd.DataFrame:
    """`target_weights` rows with window open `start <= ts < end`."""
    if not table_exists(conn, "target_weights"):
        return pd.DataFrame(columns=["rebalance_time", "ts", "coin", "weight", "score", "sigma", "adv_usd", "side", "rank"])
    return conn.execute("SELECT * FROM target_weights WHERE ts >= ? AND ts < ? ORDER BY ts, coin",
                        [utc_naive(start), utc_naive(end)]).df()


def target_window(conn, ts) -> dict | None:
    """The `target_windows` row of bar `ts`, or None if that window has not been computed."""
    df = conn.execute("SELECT * FROM target_windows WHERE ts = ?", [utc_naive(ts)]).df()
    return None if df.empty else df.iloc[0].to_dict()
