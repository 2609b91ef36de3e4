"""Blocking checks on `target_weights`: the stored rows obey the invariants, and the newest window is there."""


import dagster as dg
import numpy as np
import pandas as pd

from gradient_pipeline.core.portfolio import PortfolioParams
from gradient_pipeline.defs.resources import GradientResource
from gradient_pipeline.signals import tables
from gradient_pipeline.defs.signals.assets import target_weights
from gradient_pipeline.storage.db import table_exists
from gradient_pipeline.timegrid import BAR, parse_partition_key, partition_key

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def _run_windows(context) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """[first, last] window open times the run materialised (None: not a partitioned run)."""
    tags = context.run.tags
    if tags.get(RANGE_START):
        return parse_partition_key(tags[RANGE_START]), parse_partition_key(tags[RANGE_END])
    if tags.get("dagster/partition"):
        t = parse_partition_key(tags["dagster/partition"])
        return t, t
    return None


def stored_violations(rows: pd.DataFrame, windows: pd.DataFrame, pp: PortfolioParams) -> list[str]:
    """Invariants checked on the stored rows (independent of the code that produced them)."""
    out = []
    groups = dict(tuple(rows.groupby("ts"))) if len(rows) else {}
    empty = rows.iloc[:0]
    for w in windows.itertuples():
        r = groups.get(w.ts, empty)
        when = f"window ending {w.rebalance_time}"
        wt = r["weight"].to_numpy(np.float64)
        if not np.isfinite(wt).all():
            out.append(f"non-finite weight ({when})")
            continue
        if (np.abs(wt) > pp.cap + 1e-12).any():
            c = r.loc[np.abs(wt) > pp.cap + 1e-12, "coin"].iloc[0]
            out.append(f"{c} above the {pp.cap:.2%} cap ({when})")
        if np.abs(wt).sum() > pp.max_leverage + 1e-9:
            out.append(f"gross {np.abs(wt).sum():.4f} above max_total_leverage ({when})")
        if ((r["side"] == "long") != (wt > 0)).any():
            out.append(f"side label disagrees with the weight's sign ({when})")
        nl, ns = int((wt > 0).sum()), int((wt < 0).sum())
        if (nl, ns) != (w.n_long, w.n_short):
            out.append(f"{nl} longs / {ns} shorts stored, {w.n_long} / {w.n_short} computed ({when})")
        tol = 1e-9 if not pp.path_dependent else pp.side_gross * max(1.0, pp.max_scale if pp.vol_target else 1.0)
        if abs(wt.sum()) > tol + 1e-9:
            out.append(f"net {wt.sum():+.4f} beyond tolerance {tol:g} ({when})")
        if not pp.path_dependent and nl != ns:
            out.append(f"unequal sides {nl} / {ns} ({when})")
    return out


@dg.asset_check(asset=target_weights, blocking=True,
                description="Stored targets of this run's windows: finite, within caps and leverage, counts match, net ≈ 0.")
def target_weights_invariants(context: dg.AssetCheckExecutionContext, gradient: GradientResource) -> dg.AssetCheckResult:
    pp = PortfolioParams.from_config(gradient.config)
    with gradient.db() as conn:
        if not table_exists(conn, "target_windows"):
            return dg.AssetCheckResult(passed=False, metadata={"error": "table target_windows does not exist"})
        span = _run_windows(context)
        if span is None:
            row = conn.execute("SELECT max(ts) FROM target_windows").fetchone()
            span = (row[0], row[0])
        lo, hi = pd.Timestamp(span[0]), pd.Timestamp(span[1]) + BAR
        windows = conn.execute("SELECT * FROM target_windows WHERE ts >= ? AND ts < ? ORDER BY ts", [lo, hi]).df()
        rows = tables.read_targets(conn, lo, hi)
    expected = int((hi - lo) / BAR)
    problems = stored_violations(rows, windows, pp)
    if len(windows) != expected:
        problems.insert(0, f"{len(windows)} of {expected} windows have a target_windows row")
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={"windows_checked": len(windows), "rows_checked": len(rows), "violations": len(problems),
                  "first_violations": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems[:10]) or "none")},
    )


@dg.asset_check(asset=target_weights, blocking=False,
                description="Targets exist for the newest stored candle window (the pipeline is not behind).")
def target_weights_fresh(gradient: GradientResource) -> dg.AssetCheckResult:
    with gradient.db() as conn:
        if not (table_exists(conn, "candles") and table_exists(conn, "target_windows")):
            return dg.AssetCheckResult(passed=False, metadata={"error": "candles or target_windows missing"})
        newest_candle = conn.execute("SELECT max(ts) FROM candles").fetchone()[0]
        newest_target = conn.execute("SELECT max(ts) FROM target_windows").fetchone()[0]
    behind = int((pd.Timestamp(newest_candle) - pd.Timestamp(newest_target)) / BAR) if newest_candle and newest_target else -1
    return dg.AssetCheckResult(
        passed=behind == 0,
        metadata={"newest_candle_window": partition_key(newest_candle) if newest_candle else "none",
                  "newest_target_window": partition_key(newest_target) if newest_target else "none",
                  "windows_behind": behind},
    )
