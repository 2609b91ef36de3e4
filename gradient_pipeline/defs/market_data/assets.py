"""Market-data assets: 4h candles, hourly funding and per-window universe snapshots in DuckDB.

Thin shell: the source (`marketdata.sources`), the pure preparation (`marketdata.transform`), validation
(`marketdata.schemas`) and the table writes (`marketdata.tables`) live outside Dagster. Every asset is partitioned
by `four_hourly` with a single-run backfill policy, so a range of windows is one run that replaces exactly those
windows in one transaction per table.
"""

import dagster as dg
import pandas as pd

from gradient_pipeline.defs.partitions import four_hourly
from gradient_pipeline.defs.resources import GradientResource
from gradient_pipeline.marketdata import schemas, tables
from gradient_pipeline.marketdata.freqtrade import FreqtradeDataError
from gradient_pipeline.marketdata.sources import MarketDataSource, SourceError, open_source
from gradient_pipeline.marketdata.transform import build_universe, prepare_candles, prepare_funding
from gradient_pipeline.timegrid import BAR, now_utc, partition_key, utc_naive

GROUP = "market_data"
DAY = pd.Timedelta(hours=24)


class MarketDataConfig(dg.Config):
    """Per-run source override; empty fields fall back to the configuration file's `data` section."""

    source: str = ""
    freqtrade_dir: str = ""


def _window(context: dg.AssetExecutionContext) -> tuple[pd.Timestamp, pd.Timestamp]:
    tw = context.partition_time_window  # the whole range in a single-run backfill
    return utc_naive(tw.start), utc_naive(tw.end)


def _source(config: MarketDataConfig, gradient: GradientResource) -> MarketDataSource:
    try:
        return open_source(gradient.config, config.source or None, config.freqtrade_dir or None)
    except (SourceError, FreqtradeDataError) as err:
        raise dg.Failure(description=str(err), allow_retries=False) from None


def _require_complete(source: MarketDataSource, end: pd.Timestamp) -> pd.Timestamp:
    """Refuse windows the source cannot have complete yet (forming candle, or beyond a directory's data)."""
    complete_end = source.complete_window_end()
    if end > complete_end:
        raise dg.Failure(
            description=f"window(s) up to {end} are not complete at source {source.name}: its newest complete "
            f"window is {partition_key(complete_end - BAR)} (ends {complete_end}); materialise up to that partition only",
            allow_retries=False,
        )
    return complete_end


def _validate(frame: pd.DataFrame, schema) -> pd.DataFrame:
    try:
        return schemas.validate(frame, schema)
    except schemas.MarketDataValidationError as err:
        raise dg.Failure(description=str(err), allow_retries=False) from None


_COMMON = dict(
    group_name=GROUP,
    partitions_def=four_hourly,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"duckdb", "pandas"},
)


@dg.asset(**_COMMON, metadata={"partition_expr": "ts", "table": "candles"})
def candles(context: dg.AssetExecutionContext, config: MarketDataConfig, gradient: GradientResource) -> dg.MaterializeResult:
    """Complete 4h OHLCV candles for every perp, table `candles` (key coin, ts = open time, naive UTC).

    Fetches exactly the partition window(s) from the source (Hyperliquid info endpoint or a freqtrade directory),
    drops rows before a coin's first trade, widens high/low that disagree slightly with open/close (flag
    `ohlc_repaired`, counted in metadata), validates with pandera and replaces the window(s) in one transaction.
    A validation failure names coin, time and rule and writes nothing. A forming candle is never stored.
    """
    start, end = _window(context)
    source = _source(config, gradient)
    complete_end = _require_complete(source, end)
    with gradient.db() as conn:
        tables.ensure(conn)
        traded_before = tables.coins_with_candle_in(conn, start - BAR, start)
    batch = source.candles(start, end, traded_before)
    rows, report = prepare_candles(batch.frame, source.name, now_utc())
    rows = _validate(rows, schemas.CANDLES)
    with gradient.db() as conn:
        n = tables.replace_window(conn, "candles", rows, start, end)
    context.log.info(f"candles {start} → {end} from {source.name}: {n} rows, {report['ohlc_repaired_rows']} repaired")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": n,
            "source": source.name,
            "window_start": str(start),
            "window_end": str(end),
            "source_complete_window_end": str(complete_end),
            "coins": int(rows["coin"].nunique()),
            "ohlc_repaired_rows": report["ohlc_repaired_rows"],
            "ohlc_repaired_coins": dg.MetadataValue.json(report["ohlc_repaired_coins"]),
            "pre_trade_rows_dropped": batch.pre_trade_rows_dropped,
            "pre_trade_ohlc_defects_dropped": sum(batch.pre_trade_ohlc_defects.values()),
            "pre_trade_ohlc_defect_coins": dg.MetadataValue.json(batch.pre_trade_ohlc_defects),
        }
    )


@dg.asset(**_COMMON, metadata={"partition_expr": "ts", "table": "funding"})
def funding(context: dg.AssetExecutionContext, config: MarketDataConfig, gradient: GradientResource) -> dg.MaterializeResult:
    """Hourly funding rates, table `funding` (key coin, ts = funding hour, naive UTC; + means longs pay).

    A 4h partition holds the funding hours inside its window [t, t+4h) (8-hourly records before 2023-06-08).
    Validated (unique (coin, ts), on the hour, finite rate) before the window is replaced.
    """
    start, end = _window(context)
    source = _source(config, gradient)
    _require_complete(source, end)
    rows = _validate(prepare_funding(source.funding(start, end)), schemas.FUNDING)
    with gradient.db() as conn:
        tables.ensure(conn)
        n = tables.replace_window(conn, "funding", rows, start, end)
    return dg.MaterializeResult(
        metadata={"dagster/row_count": n, "source": source.name, "coins": int(rows["coin"].nunique()),
                  "window_start": str(start), "window_end": str(end)}
    )


@dg.asset(**_COMMON, metadata={"partition_expr": "ts", "table": "universe"}, deps=[candles, funding])
def universe(context: dg.AssetExecutionContext, config: MarketDataConfig, gradient: GradientResource) -> dg.MaterializeResult:
    """Per-window universe snapshot, table `universe` (key ts = window open, coin): who is listed or delisted,
    szDecimals, max leverage, 24h notional volume, and (hyperliquid, newest window) mark/oracle/OI/funding.

    Listed = the coin has a stored candle in the window; delisted = the source says it stopped trading (freqtrade:
    its data ended before the directory's end; hyperliquid: `isDelisted` in `meta`, newest window only).
    24h volume = Σ candle notional over the 6 bars ending with the window (live `dayNtlVlm` for the newest window).
    """
    start, end = _window(context)
    source = _source(config, gradient)
    _require_complete(source, end)
    with gradient.db() as conn:
        tables.ensure(conn)
        stored = tables.read_candles(conn, start - DAY + BAR, end)[["coin", "ts", "notional_usd"]]
        fund = tables.read_funding(conn, start, end)[["coin", "ts", "rate"]]
    windows = pd.date_range(start, end, freq=BAR, inclusive="left")
    newest = source.complete_window_end() - BAR
    live = source.live_contexts(newest) if start <= newest < end else None
    rows = build_universe(windows, stored, fund, source.coin_info(), source.delisted(start, end), live, newest)
    rows = _validate(rows, schemas.UNIVERSE)
    with gradient.db() as conn:
        n = tables.replace_window(conn, "universe", rows, start, end)
    last = rows[rows["ts"] == rows["ts"].max()] if len(rows) else rows
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": n,
            "source": source.name,
            "windows": len(windows),
            "listed_in_last_window": int((~last["is_delisted"]).sum()),
            "delisted_in_last_window": int(last["is_delisted"].sum()),
        }
    )
