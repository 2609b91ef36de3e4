"""Asset checks on the stored market data: freshness (newest complete window present) and gaps."""


import dagster as dg
import pandas as pd

from gradient_pipeline.defs.market_data.assets import candles
from gradient_pipeline.defs.resources import GradientResource
from gradient_pipeline.marketdata import tables
from gradient_pipeline.marketdata.sources import SourceError, open_source
from gradient_pipeline.storage.db import table_exists
from gradient_pipeline.timegrid import BAR, partition_key, utc_naive

MAX_GAPS_LISTED = 20


def _last_materialization_metadata(context: dg.AssetCheckExecutionContext) -> dict:
    event = context.instance.get_latest_materialization_event(candles.key)
    if event is None or event.asset_materialization is None:
        return {}
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def newest_complete_window(context: dg.AssetCheckExecutionContext, gradient: GradientResource) -> tuple[pd.Timestamp, str]:
    """Open time of the newest window the source has complete, and the source's name.

    The source is the one that last wrote candles (its name is in the materialisation metadata). For hyperliquid
    the exchange is asked now (its clock decides, so the local replaying exchange and mainnet behave alike); for a
    freqtrade directory, the end recorded by that materialisation.
    """
    meta = _last_materialization_metadata(context)
    name = meta.get("source") or gradient.config.data.source
    if name == "freqtrade" and meta.get("source_complete_window_end"):
        return utc_naive(meta["source_complete_window_end"]) - BAR, name
    return open_source(gradient.config, name).complete_window_end() - BAR, name


@dg.asset_check(asset=candles, description="The newest complete 4h window (source clock) is in `candles`.")
def candles_fresh(context: dg.AssetCheckExecutionContext, gradient: GradientResource) -> dg.AssetCheckResult:
    try:
        newest, name = newest_complete_window(context, gradient)
    except SourceError as err:
        return dg.AssetCheckResult(passed=False, metadata={"error": str(err)})
    with gradient.db(read_only=False) as conn:
        tables.ensure(conn)
        present = tables.window_row_count(conn, "candles", newest)
        _, latest = tables.stored_range(conn)
    return dg.AssetCheckResult(
        passed=present > 0,
        metadata={
            "source": name,
            "newest_complete_window": partition_key(newest),
            "rows_in_newest_window": present,
            "latest_stored_window": partition_key(latest) if latest is not None else "none",
            "windows_behind": int((newest - latest) / BAR) if latest is not None else -1,
        },
    )


@dg.asset_check(asset=candles, description="No missing 4h bar for any coin between its first and last stored candle.")
def candles_no_gaps(gradient: GradientResource) -> dg.AssetCheckResult:
    with gradient.db() as conn:
        if not table_exists(conn, "candles"):
            return dg.AssetCheckResult(passed=False, metadata={"error": "table candles does not exist yet"})
        gaps = tables.candle_gaps(conn)
        n_coins = int(conn.execute("SELECT count(DISTINCT coin) FROM candles").fetchone()[0])
    listing = gaps.head(MAX_GAPS_LISTED).assign(after=lambda d: d["after"].astype(str), before=lambda d: d["before"].astype(str))
    return dg.AssetCheckResult(
        passed=gaps.empty,
        metadata={
            "coins_checked": n_coins,
            "gaps": len(gaps),
            "missing_bars": int(gaps["missing_bars"].sum()) if len(gaps) else 0,
            "coins_with_gaps": dg.MetadataValue.json(sorted(gaps["coin"].unique().tolist())),
            "first_gaps": dg.MetadataValue.md(listing.to_markdown(index=False) if len(listing) else "none"),
        },
    )
