"""Market-data assets: 4h candles, hourly funding and per-window universe snapshots in DuckDB.

Thin shell: the source (`marketdata.sources`), the pure preparation (`marketdata.transform`), validation
(`marketdata.schemas`, `marketdata.plausibility`) and the table writes (`marketdata.tables`) live outside Dagster.
Every asset is partitioned by `four_hourly` with a single-run backfill policy, so a range of windows is one run.

What a run may change (docs/TABLES.md, "What a write may change"):

* only the coins the source covers: a coin with stored rows in the window but no input (its file is gone, the
  exchange stopped listing it) keeps its stored rows, is listed in metadata, and fails the blocking check
  `<table>_inputs_complete`, so the command exits non-zero;
* never fewer rows than stored: if a covered coin's source lost rows the table holds for these (closed) windows,
  the asset fails naming coin and time and writes nothing, unless the run asks to prune (`prune: true`,
  `gradient-pipeline backfill --prune`);
* everything is validated before anything is written, and a table's write (with its repair records) is one
  transaction: a failure leaves every table as it was.
"""

from collections.abc import Callable
from typing import TypeVar

import dagster as dg
import pandas as pd

from gradient_pipeline.defs.partitions import four_hourly
from gradient_pipeline.defs.resources import GradientResource
from gradient_pipeline.exchange.hyperliquid.errors import UnknownCoinError, WireFormatError
from gradient_pipeline.marketdata import plausibility, schemas, tables
from gradient_pipeline.marketdata.freqtrade import FreqtradeDataError
from gradient_pipeline.marketdata.sources import MarketDataSource, SourceError, open_source
from gradient_pipeline.marketdata.transform import build_universe, prepare_candles, prepare_funding
from gradient_pipeline.timegrid import BAR, now_utc, partition_key, utc_naive

GROUP = "market_data"
DAY = pd.Timedelta(hours=24)
MAX_LISTED = 50  # rows listed in metadata (repairs, missing coins); the tables hold all of them
T = TypeVar("T")


class MarketDataConfig(dg.Config):
    """Per-run options; empty source fields fall back to the configuration file's `data` section."""

    source: str = ""
    freqtrade_dir: str = ""
    prune: bool = False  # allow deleting stored rows the source no longer has (never for coins without input)
    background: bool = False  # low priority on the shared exchange budget (the funding refresh after a window)


def _window(context: dg.AssetExecutionContext) -> tuple[pd.Timestamp, pd.Timestamp]:
    tw = context.partition_time_window  # the whole range in a single-run backfill
    return utc_naive(tw.start), utc_naive(tw.end)


def _window_name(start: pd.Timestamp, end: pd.Timestamp) -> str:
    last = end - BAR
    return partition_key(start) if last == start else f"{partition_key(start)} … {partition_key(last)}"


_SOURCE_ERRORS = (SourceError, FreqtradeDataError, WireFormatError, UnknownCoinError)


def _from_source(what: str, fn: Callable[[], T]) -> T:
    """Call the source; a bad or missing input becomes a Failure whose text is the reason (no retries)."""
    try:
        return fn()
    except _SOURCE_ERRORS as err:
        raise dg.Failure(description=f"{what}: {err}", allow_retries=False) from None


# One source per run and process: the steps of a window run (in-process executor) share its exchange clock and its
# universe snapshot (`metaAndAssetCtxs`, weight 20), so every step cuts at the same instant and the snapshot is
# fetched once per run, not once per step. Only the newest run's source is kept.
_RUN_SOURCE: dict[tuple, MarketDataSource] = {}


def _source(context, config: MarketDataConfig, gradient: GradientResource) -> MarketDataSource:
    key = (context.run_id, config.source, config.freqtrade_dir, config.background, gradient.config_path)
    if key not in _RUN_SOURCE:
        src = _from_source("market-data source", lambda: open_source(
            gradient.config, config.source or None, config.freqtrade_dir or None, background=config.background))
        _RUN_SOURCE.clear()
        _RUN_SOURCE[key] = src
    return _RUN_SOURCE[key]


def _require_complete(source: MarketDataSource, end: pd.Timestamp) -> pd.Timestamp:
    """Refuse windows the source cannot have complete yet (forming candle, or beyond a directory's data)."""
    complete_end = _from_source(f"source {source.name}", source.complete_window_end)
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


def _plausible(fn: Callable[[], None]) -> None:
    try:
        fn()
    except schemas.MarketDataValidationError as err:
        raise dg.Failure(description=str(err), allow_retries=False) from None


def _refuse_lost(conn, table: str, rows: pd.DataFrame, start, end, coins, prune: bool) -> pd.DataFrame:
    """Stored rows of covered coins the new rows lack: an error naming them, unless the run prunes."""
    lost = tables.lost_rows(conn, table, rows, start, end, coins)
    if len(lost) and not prune:
        shown = [f"  - coin {r.coin} at {pd.Timestamp(r.ts)}" for r in lost.head(20).itertuples(index=False)]
        more = [f"  … and {len(lost) - 20} more"] if len(lost) > 20 else []
        per_coin = ", ".join(f"{c} {n}" for c, n in lost["coin"].value_counts().sort_index().items())
        raise dg.Failure(
            description="\n".join([
                f"{table}: the source has fewer rows than stored for window {_window_name(start, end)}: "
                f"{len(lost)} stored row(s) would be deleted ({per_coin}); rule 'source keeps every stored row' "
                "failed; nothing was written (to delete them on purpose: backfill --prune):", *shown, *more]),
            allow_retries=False,
        )
    return lost


def _inputs_check(table: str, missing: dict[str, int], start, end, covered: int, source: str) -> dg.AssetCheckResult:
    window = _window_name(start, end)
    reason = (
        f"{table}: no input at source {source} for {len(missing)} coin(s) with stored rows in window {window}: "
        + ", ".join(f"{c} ({n} stored rows kept)" for c, n in missing.items())
        if missing else f"{table}: every stored coin had input for window {window}"
    )
    return dg.AssetCheckResult(
        check_name=f"{table}_inputs_complete",
        passed=not missing,
        description=reason,
        metadata={"reason": reason, "window": window, "coins_covered": covered,
                  "missing_coins": dg.MetadataValue.json(missing)},
    )


def _inputs_spec(table: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        f"{table}_inputs_complete", asset=table, blocking=True,
        description=f"Every coin with stored {table} rows in the window had input at the source (a coin without input "
                    "keeps its stored rows and fails this check, so the run fails).",
    )


def _missing(conn, table: str, start, end, covered) -> dict[str, int]:
    where = "ts >= ? AND ts < ? AND NOT coin IN (SELECT unnest(?))"
    rows = conn.execute(f"SELECT coin, count(*) FROM {table} WHERE {where} GROUP BY coin ORDER BY coin",
                        [start, end, sorted(covered)]).fetchall()
    return {c: int(n) for c, n in rows}


_COMMON = dict(
    group_name=GROUP,
    partitions_def=four_hourly,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"duckdb", "pandas"},
)


@dg.asset(**_COMMON, metadata={"partition_expr": "ts", "table": "candles"}, check_specs=[_inputs_spec("candles")])
def candles(context: dg.AssetExecutionContext, config: MarketDataConfig, gradient: GradientResource) -> dg.MaterializeResult:
    """Complete 4h OHLCV candles for every perp, table `candles` (key coin, ts = open time, naive UTC).

    Fetches exactly the partition window(s) from the source (Hyperliquid info endpoint or a freqtrade directory),
    drops rows before a coin's first trade, widens high/low that fall slightly short of open/close (never narrows;
    flag `ohlc_repaired`), validates with pandera and the plausibility bounds (`validation` config), then replaces
    the window(s) for the coins the source covered, with their repair records (`market_data_repairs`), in one
    transaction. A coin without input keeps its rows and fails `candles_inputs_complete`. A validation failure
    names coin, time and rule and writes nothing. A forming candle is never stored.
    """
    start, end = _window(context)
    bounds = gradient.config.validation
    source = _source(context, config, gradient)
    complete_end = _require_complete(source, end)
    with gradient.db() as conn:
        tables.ensure(conn)
        traded_before = tables.coins_with_candle_in(conn, start - BAR, start)
        prev_close = tables.closes_at(conn, start - BAR)
    batch = _from_source(f"candles from source {source.name}", lambda: source.candles(start, end, traded_before))
    rows, report = prepare_candles(batch.frame, source.name, now_utc(), bounds.ohlc_repair_max_pct / 100, batch.dropped)
    rows = _validate(rows, schemas.CANDLES)
    _plausible(lambda: plausibility.check_price_moves(rows, prev_close, bounds.max_bar_move_ratio))
    with gradient.db() as conn:
        lost = _refuse_lost(conn, "candles", rows, start, end, batch.coins, config.prune)
        missing = _missing(conn, "candles", start, end, batch.coins)
        rows = tables.keep_ingested_at(conn, rows, start, end)
        n = tables.replace_coins(conn, "candles", rows, start, end, batch.coins, report["repairs"])
    repairs = report["repairs"]
    context.log.info(f"candles {start} → {end} from {source.name}: {n} rows, {report['ohlc_repaired_rows']} repaired, "
                     f"{len(batch.dropped)} pre-trade rows dropped, {len(missing)} coin(s) without input")
    # Repairs first: they changed stored values; drops of pre-trade back-fill are routine and can be many.
    listing = repairs.sort_values("action", ascending=False, kind="stable").head(MAX_LISTED).astype({"ts": str})
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": n,
            "source": source.name,
            "window_start": str(start),
            "window_end": str(end),
            "source_complete_window_end": str(complete_end),
            "coins": int(rows["coin"].nunique()),
            "coins_covered": len(batch.coins),
            "missing_coins": dg.MetadataValue.json(missing),
            "pruned_rows": len(lost),
            "ohlc_repaired_rows": report["ohlc_repaired_rows"],
            "ohlc_repaired_coins": dg.MetadataValue.json(report["ohlc_repaired_coins"]),
            "pre_trade_rows_dropped": batch.pre_trade_rows_dropped,
            "pre_trade_ohlc_defects_dropped": sum(batch.pre_trade_ohlc_defects.values()),
            "pre_trade_ohlc_defect_coins": dg.MetadataValue.json(batch.pre_trade_ohlc_defects),
            "repairs_and_drops": dg.MetadataValue.md(
                (listing.to_markdown(index=False) + (f"\n\n… {len(repairs) - MAX_LISTED} more in table "
                 "`market_data_repairs`" if len(repairs) > MAX_LISTED else "")) if len(repairs) else "none"),
        },
        check_results=[_inputs_check("candles", missing, start, end, len(batch.coins), source.name)],
    )


# Step priority 1: in a run that builds funding and universe together (backfill, warm-up) funding is written
# first, so the universe snapshot's `funding` column sees it; the trading cycle refreshes funding in its own run.
@dg.asset(**_COMMON, metadata={"partition_expr": "ts", "table": "funding"}, check_specs=[_inputs_spec("funding")],
          op_tags={"dagster/priority": "1"})
def funding(context: dg.AssetExecutionContext, config: MarketDataConfig, gradient: GradientResource) -> dg.MaterializeResult:
    """Hourly funding rates, table `funding` (key coin, ts = funding hour, naive UTC; + means longs pay).

    A 4h partition holds the funding hours inside its window [t, t+4h) (8-hourly records before 2023-06-08).
    Not on the trading cycle's critical path: no signal or target reads it (targets need candles and the universe's
    listing only), so the cycle refreshes it after the rebalance is launched (`rebalance_after_window` requests a run of
    `funding_refresh_job` at low priority on the shared exchange budget), catching up every window it missed.
    Validated (unique (coin, ts), on the hour, finite rate, |rate| within the venue's cap of 4%/hour scaled to the
    record's interval) before the window is replaced for the coins the source covered; a coin without input keeps
    its rows and fails `funding_inputs_complete`.
    """
    start, end = _window(context)
    bounds = gradient.config.validation
    source = _source(context, config, gradient)
    _require_complete(source, end)
    batch = _from_source(f"funding from source {source.name}", lambda: source.funding(start, end))
    rows = _validate(prepare_funding(batch.frame), schemas.FUNDING)
    _plausible(lambda: plausibility.check_funding(rows, bounds.max_funding_per_hour))
    with gradient.db() as conn:
        tables.ensure(conn)
        lost = _refuse_lost(conn, "funding", rows, start, end, batch.coins, config.prune)
        missing = _missing(conn, "funding", start, end, batch.coins)
        n = tables.replace_coins(conn, "funding", rows, start, end, batch.coins)
    return dg.MaterializeResult(
        metadata={"dagster/row_count": n, "source": source.name, "coins": int(rows["coin"].nunique()),
                  "coins_covered": len(batch.coins), "missing_coins": dg.MetadataValue.json(missing),
                  "pruned_rows": len(lost), "window_start": str(start), "window_end": str(end)},
        check_results=[_inputs_check("funding", missing, start, end, len(batch.coins), source.name)],
    )


@dg.asset(**_COMMON, metadata={"partition_expr": "ts", "table": "universe"}, deps=[candles])
def universe(context: dg.AssetExecutionContext, config: MarketDataConfig, gradient: GradientResource) -> dg.MaterializeResult:
    """Per-window universe snapshot, table `universe` (key ts = window open, coin): who is listed or delisted,
    szDecimals, max leverage, 24h notional volume, and (hyperliquid, newest window) mark/oracle/OI/funding.
    `funding` is the live rate for the newest window at hyperliquid, else the last stored hourly rate inside the
    window when the snapshot was built (the `funding` table is the record; this asset does not wait for it: it is on
    the trading cycle's critical path and funding is not).

    Listed = the coin has a stored candle in the window; delisted = the source says it stopped trading (freqtrade:
    its data ended before the directory's end; hyperliquid: `isDelisted` in `meta`, newest window only).
    24h volume = Σ candle notional over the 6 bars ending with the window (live `dayNtlVlm` for the newest window).
    Live mark/oracle prices must lie within `validation.mark_oracle_band_pct` of the mid. Rows are replaced by
    (ts, coin): a stored row the rebuild does not produce (e.g. a hyperliquid delisting recorded when the window was
    newest) is kept and counted (`stored_rows_kept`), unless the run prunes.
    """
    start, end = _window(context)
    source = _source(context, config, gradient)
    complete_end = _require_complete(source, end)
    with gradient.db() as conn:
        tables.ensure(conn)
        stored = tables.read_candles(conn, start - DAY + BAR, end)[["coin", "ts", "notional_usd"]]
        fund = tables.read_funding(conn, start, end)[["coin", "ts", "rate"]]
    windows = pd.date_range(start, end, freq=BAR, inclusive="left")
    newest = complete_end - BAR
    live = _from_source(f"asset contexts from source {source.name}",
                        lambda: source.live_contexts(newest) if start <= newest < end else None)
    _plausible(lambda: plausibility.check_live_contexts(live, gradient.config.validation.mark_oracle_band_pct,
                                                         newest))
    info, gone = _from_source(f"universe from source {source.name}",
                              lambda: (source.coin_info(), source.delisted(start, end)))
    rows = build_universe(windows, stored, fund, info, gone, live, newest)
    rows = _validate(rows, schemas.UNIVERSE)
    with gradient.db() as conn:
        stored_coins = tables.stored_coins(conn, "universe", start, end)
        kept = tables.lost_rows(conn, "universe", rows, start, end, stored_coins)
        if config.prune:  # rebuilt from what is stored now: rows without a basis any more go
            n = tables.replace_coins(conn, "universe", rows, start, end, set(rows["coin"]) | stored_coins)
        else:  # a stored row the rebuild does not produce is kept (the source may no longer know it)
            n = tables.replace_keys(conn, "universe", rows, start, end)
    last = rows[rows["ts"] == rows["ts"].max()] if len(rows) else rows
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": n,
            "source": source.name,
            "windows": len(windows),
            "pruned_rows": len(kept) if config.prune else 0,
            "stored_rows_kept": 0 if config.prune else len(kept),
            "listed_in_last_window": int((~last["is_delisted"]).sum()),
            "delisted_in_last_window": int(last["is_delisted"].sum()),
        }
    )
