"""Blocking asset checks on the stored market data for the window(s) a run asked for: freshness and gaps.

Both are `blocking`: a failure fails the run (so `gradient-pipeline backfill` and the 4h update exit non-zero) and
keeps downstream assets from building on the data. Each result's description is the reason, naming check, coin
and window; the CLI prints it.

The window is the run's partition (or partition range, for a single-run backfill), read from the run's tags; a run
without one (e.g. a check executed on its own) falls back to the window of the latest `candles` materialisation.
"""

import dagster as dg
import pandas as pd

from gradient_pipeline.defs.market_data.assets import candles
from gradient_pipeline.defs.resources import GradientResource
from gradient_pipeline.marketdata import tables
from gradient_pipeline.marketdata.sources import SourceError, open_source
from gradient_pipeline.storage.db import table_exists
from gradient_pipeline.timegrid import BAR, parse_partition_key, partition_key, utc_naive

MAX_GAPS_LISTED = 20
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def _last_materialization_metadata(context: dg.AssetCheckExecutionContext) -> dict:
    event = context.instance.get_latest_materialization_event(candles.key)
    if event is None or event.asset_materialization is None:
        return {}
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def asked_window(context: dg.AssetCheckExecutionContext) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """`[start, end)` of the windows this run materialises (run tags), else of the latest candles materialisation."""
    tags = context.run.tags
    if tags.get(RANGE_START_TAG) and tags.get(RANGE_END_TAG):
        return parse_partition_key(tags[RANGE_START_TAG]), parse_partition_key(tags[RANGE_END_TAG]) + BAR
    if tags.get(PARTITION_TAG):
        start = parse_partition_key(tags[PARTITION_TAG])
        return start, start + BAR
    meta = _last_materialization_metadata(context)
    if meta.get("window_start") and meta.get("window_end"):
        return utc_naive(meta["window_start"]), utc_naive(meta["window_end"])
    return None


def _window_name(start: pd.Timestamp, end: pd.Timestamp) -> str:
    last = end - BAR
    return partition_key(start) if last == start else f"{partition_key(start)} … {partition_key(last)}"


def newest_complete_window(context: dg.AssetCheckExecutionContext, gradient: GradientResource) -> tuple[pd.Timestamp, str]:
    """Open time of the newest window the source has complete, and the source's name (informational here).

    The source is the one that last wrote candles (its name is in the materialisation metadata). For hyperliquid
    the exchange is asked now; for a freqtrade directory, the end recorded by that materialisation.
    """
    meta = _last_materialization_metadata(context)
    name = meta.get("source") or gradient.config.data.source
    if name == "freqtrade" and meta.get("source_complete_window_end"):
        return utc_naive(meta["source_complete_window_end"]) - BAR, name
    return open_source(gradient.config, name).complete_window_end() - BAR, name


@dg.asset_check(asset=candles, blocking=True,
                description="The last window the run asked for has candles in `candles` (historical backfills are "
                            "judged by the windows they asked for, not by the clock).")
def candles_fresh(context: dg.AssetCheckExecutionContext, gradient: GradientResource) -> dg.AssetCheckResult:
    window = asked_window(context)
    if window is None:
        reason = "candles_fresh: no window asked for and no candles materialisation to judge"
        return dg.AssetCheckResult(passed=False, description=reason, metadata={"reason": reason})
    start, end = window
    last = end - BAR
    with gradient.db(read_only=False) as conn:
        tables.ensure(conn)
        present = tables.window_row_count(conn, "candles", last)
        _, latest = tables.stored_range(conn)
    meta = {"window": _window_name(start, end), "last_window_asked": partition_key(last),
            "rows_in_last_window": present,
            "latest_stored_window": partition_key(latest) if latest is not None else "none"}
    try:  # how far the asked window is behind the source: information for the operator, not the verdict
        newest, name = newest_complete_window(context, gradient)
        meta.update(source=name, source_newest_complete_window=partition_key(newest),
                    windows_behind_source=int((newest - last) / BAR))
    except (SourceError, OSError, ValueError, RuntimeError) as err:
        meta["source_error"] = str(err)
    reason = (f"candles_fresh: {present} candle(s) stored for window {partition_key(last)}, the last window asked for"
              if present else
              f"candles_fresh: no candles stored for window {partition_key(last)}, the last window asked for "
              f"(window {_window_name(start, end)})")
    return dg.AssetCheckResult(passed=present > 0, description=reason, metadata={"reason": reason, **meta})


@dg.asset_check(asset=candles, blocking=True,
                description="No missing 4h bar for any coin in the windows the run asked for (a hole reaching back "
                            "before them included).")
def candles_no_gaps(context: dg.AssetCheckExecutionContext, gradient: GradientResource) -> dg.AssetCheckResult:
    window = asked_window(context)
    start, end = window if window else (None, None)
    with gradient.db() as conn:
        if not table_exists(conn, "candles"):
            reason = "candles_no_gaps: table candles does not exist yet"
            return dg.AssetCheckResult(passed=False, description=reason, metadata={"reason": reason})
        gaps = tables.candle_gaps(conn, start=start, end=end)
        n_coins = len(tables.stored_coins(conn, "candles", start, end)) if window else int(
            conn.execute("SELECT count(DISTINCT coin) FROM candles").fetchone()[0])
    where = f"window {_window_name(*window)}" if window else "the stored history"
    if gaps.empty:
        reason = f"candles_no_gaps: no missing 4h bar in {where} ({n_coins} coins)"
    else:
        holes = []
        for g in gaps.head(MAX_GAPS_LISTED).itertuples(index=False):
            first_missing = pd.Timestamp(g.after) + BAR
            span = str(first_missing) if g.missing_bars == 1 else f"{first_missing} … {pd.Timestamp(g.before) - BAR}"
            holes.append(f"coin {g.coin} missing {g.missing_bars} bar(s) at {span}")
        more = f"; … and {len(gaps) - MAX_GAPS_LISTED} more" if len(gaps) > MAX_GAPS_LISTED else ""
        reason = f"candles_no_gaps: {len(gaps)} gap(s) in {where}: " + "; ".join(holes) + more
    listing = gaps.head(MAX_GAPS_LISTED).assign(after=lambda d: d["after"].astype(str), before=lambda d: d["before"].astype(str))
    return dg.AssetCheckResult(
        passed=gaps.empty,
        description=reason,
        metadata={
            "reason": reason,
            "coins_checked": n_coins,
            "gaps": len(gaps),
            "missing_bars": int(gaps["missing_bars"].sum()) if len(gaps) else 0,
            "coins_with_gaps": dg.MetadataValue.json(sorted(gaps["coin"].unique().tolist())),
            "first_gaps": dg.MetadataValue.md(listing.to_markdown(index=False) if len(listing) else "none"),
        },
    )
