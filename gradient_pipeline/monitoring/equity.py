"""Mark-to-market equity, high-water mark and drawdown.

Account value is Hyperliquid's `marginSummary.accountValue` for the master address: USDC balance plus the
unrealised PnL of every open position at mark price, after every fee and every hourly funding payment (funding
settles into the balance), so it is the mark-to-market equity the drawdown stop needs — not closed-trade PnL.

Snapshots go to the execution ledger's `equity` / `positions` tables (source ``monitor`` from the equity sensor's
run, ``rebalance_*`` from the rebalance job). The high-water mark lives in `high_water_mark` (one row): it only
rises, except that `rebase_high_water_mark` (called by `resume`) resets it to the current account value — otherwise
a resumed account still 20 % below its old peak would trip the stop again at once. Deposits and withdrawals are not
netted out: after moving money, rebase (``gradient-pipeline resume --rebase-only``) so the drawdown stays honest.

Pure parts (`drawdown_pct`, `drawdown_level`) are separate from the DuckDB parts so sensors can reuse them
on a read-only connection.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import pandas as pd

from gradient_pipeline.config import GradientConfig
from gradient_pipeline.monitoring.halt import utcnow
from gradient_pipeline.storage.db import table_exists

HWM_DDL = """
CREATE TABLE IF NOT EXISTS high_water_mark (
    name       VARCHAR PRIMARY KEY,  -- always 'account' (one trading account per DuckDB file)
    hwm_usd    DOUBLE NOT NULL,      -- highest mark-to-market account value seen since the last rebase
    hwm_ts     TIMESTAMP NOT NULL,   -- when it was seen (naive UTC)
    updated_at TIMESTAMP NOT NULL,
    reason     VARCHAR NOT NULL      -- new_high | rebase: <why>
);
"""


@dataclass(frozen=True)
class EquityState:
    """The latest equity, the high-water mark and the drawdown between them (percent, ≥ 0)."""

    ts: dt.datetime | None
    account_value: float | None
    hwm: float | None
    drawdown_pct: float | None
    source: str | None = None


# ------------------------------------------------------------------------------------------------ pure


def drawdown_pct(equity: float, hwm: float) -> float:
    """Percent below the high-water mark (0 at or above it)."""
    if hwm is None or hwm <= 0 or equity is None:
        return 0.0
    return max(0.0, (hwm - equity) / hwm * 100.0)


def drawdown_level(dd_pct: float, cfg: GradientConfig) -> str:
    """'ok', 'warn' (≥ risk.drawdown_warn_pct) or 'stop' (≥ emergency_stop_drawdown_pct)."""
    if dd_pct >= cfg.emergency_stop_drawdown_pct:
        return "stop"
    if dd_pct >= cfg.risk.drawdown_warn_pct:
        return "warn"
    return "ok"


def drawdown_series(equity: pd.Series) -> pd.Series:
    """Running drawdown percent of an equity curve (for charts)."""
    peak = equity.cummax()
    return ((peak - equity) / peak * 100.0).fillna(0.0)


# ------------------------------------------------------------------------------------------------ DuckDB


def ensure_hwm_table(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(HWM_DDL)


def high_water_mark(conn: duckdb.DuckDBPyConnection) -> tuple[float, dt.datetime] | None:
    if not table_exists(conn, "high_water_mark"):
        return None
    row = conn.execute("SELECT hwm_usd, hwm_ts FROM high_water_mark WHERE name = 'account'").fetchone()
    return (float(row[0]), row[1]) if row else None


def update_high_water_mark(conn: duckdb.DuckDBPyConnection, account_value: float, ts: dt.datetime) -> float:
    """Raise the mark if `account_value` is a new high (or the first seen); return the current mark."""
    ensure_hwm_table(conn)
    current = high_water_mark(conn)
    if current is None or account_value > current[0]:
        conn.execute(
            "INSERT OR REPLACE INTO high_water_mark VALUES ('account', ?, ?, ?, 'new_high')",
            [float(account_value), ts, utcnow()],
        )
        return float(account_value)
    return current[0]


def rebase_high_water_mark(conn: duckdb.DuckDBPyConnection, account_value: float, why: str) -> None:
    """Reset the mark to `account_value` (resume, deposits). Its time is the newest equity snapshot's (exchange
    clock), so only snapshots after the rebase can raise it again."""
    ensure_hwm_table(conn)
    last = latest_equity(conn)
    ts = last[0] if last else utcnow()
    conn.execute(
        "INSERT OR REPLACE INTO high_water_mark VALUES ('account', ?, ?, ?, ?)",
        [float(account_value), ts, utcnow(), f"rebase: {why}"],
    )


def catch_up_high_water_mark(conn: duckdb.DuckDBPyConnection) -> float | None:
    """Raise the mark to the highest `equity` snapshot (any source: rebalances too) newer than the mark."""
    if not table_exists(conn, "equity"):
        return None
    current = high_water_mark(conn)
    where, params = ("WHERE ts >= ?", [current[1]]) if current else ("", [])
    row = conn.execute(
        f"SELECT max(account_value_usd), arg_max(ts, account_value_usd) FROM equity {where}", params
    ).fetchone()
    if row is None or row[0] is None:
        return current[0] if current else None
    return update_high_water_mark(conn, float(row[0]), row[1])


def latest_equity(conn: duckdb.DuckDBPyConnection) -> tuple[dt.datetime, float, str] | None:
    """The newest `equity` row (ts, account value, source), any source."""
    if not table_exists(conn, "equity"):
        return None
    row = conn.execute(
        "SELECT ts, account_value_usd, source FROM equity ORDER BY ts DESC, source LIMIT 1"
    ).fetchone()
    return (row[0], float(row[1]), row[2]) if row else None


def equity_state(conn: duckdb.DuckDBPyConnection) -> EquityState:
    """Latest equity vs the high-water mark; works on a read-only connection (nothing written)."""
    last = latest_equity(conn)
    hwm = high_water_mark(conn)
    if last is None:
        return EquityState(None, None, hwm[0] if hwm else None, None)
    ts, value, source = last
    where, params = ("WHERE ts >= ?", [hwm[1]]) if hwm else ("", [])
    peak = conn.execute(f"SELECT max(account_value_usd) FROM equity {where}", params).fetchone()[0]
    mark = max(x for x in (hwm[0] if hwm else None, peak, value) if x is not None)
    return EquityState(ts, value, mark, drawdown_pct(value, mark), source)


def record_equity(conn: duckdb.DuckDBPyConnection, account, ts: dt.datetime | pd.Timestamp,
                  source: str = "monitor") -> EquityState:
    """Snapshot an `AccountState` (exchange.trading) into the ledger, raise the high-water mark, return the state."""
    from gradient_pipeline.execution import ledger

    ledger.ensure(conn)
    ts = pd.Timestamp(ts).to_pydatetime()
    ledger.snapshot(conn, ts, source, None, account.account_value, account.total_ntl_pos, account.positions)
    mark = catch_up_high_water_mark(conn)
    return EquityState(ts, account.account_value, mark, drawdown_pct(account.account_value, mark), source)


def equity_history(conn: duckdb.DuckDBPyConnection, since: dt.datetime | None = None) -> pd.DataFrame:
    """Equity rows (ts, source, account value, exposure) in time order; empty frame if none yet."""
    cols = ["ts", "source", "account_value_usd", "gross_exposure_usd", "net_exposure_usd", "n_positions"]
    if not table_exists(conn, "equity"):
        return pd.DataFrame(columns=cols)
    q = f"SELECT {', '.join(cols)} FROM equity"
    params: list = []
    if since is not None:
        q += " WHERE ts >= ?"
        params.append(since)
    return conn.execute(q + " ORDER BY ts, source", params).df()


POSITION_COLUMNS = ["coin", "szi", "entry_px", "position_value_usd", "unrealized_pnl_usd", "weight", "target_weight"]


def latest_positions(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Positions of the newest snapshot. The snapshot is the newest `equity` row (a flat account has an equity
    row and no position rows, so it correctly shows nothing), largest first."""
    if not (table_exists(conn, "positions") and table_exists(conn, "equity")):
        return pd.DataFrame(columns=POSITION_COLUMNS)
    return conn.execute(
        f"WITH last AS (SELECT ts, source FROM equity ORDER BY ts DESC, source LIMIT 1) "
        f"SELECT {', '.join('p.' + c for c in POSITION_COLUMNS)} FROM positions p JOIN last USING (ts, source) "
        "ORDER BY abs(p.position_value_usd) DESC"
    ).df()
