"""Strategy assets: `returns` → `momentum_scores` → `target_weights`, 4h-partitioned, written to DuckDB.

Thin shell over `signals.steps` (window logic, Dagster-free) and `core` (the kernels the backtest uses).
A single-run backfill computes its whole range in one pass; a one-window run reads only the bar before it
(stored state) and the candles it needs, so its cost does not grow with the stored history.
"""


import dagster as dg
import numpy as np
import pandas as pd

from gradient_pipeline.core.portfolio import PortfolioParams
from gradient_pipeline.core.signals import SignalParams
from gradient_pipeline.defs.partitions import four_hourly
from gradient_pipeline.defs.resources import GradientResource
from gradient_pipeline.signals import steps, tables
from gradient_pipeline.marketdata import tables as market
from gradient_pipeline.storage.db import replace_rows
from gradient_pipeline.timegrid import parse_partition_key, partition_key, utc_naive

GROUP = "signals"

_COMMON = dict(
    group_name=GROUP,
    partitions_def=four_hourly,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"duckdb", "numba"},
)


def _window(context) -> tuple[pd.Timestamp, pd.Timestamp]:
    tw = context.partition_time_window  # the whole range in a single-run backfill
    return utc_naive(tw.start), utc_naive(tw.end)


def inception(cfg) -> pd.Timestamp:
    """Where the live weights path starts flat: the configuration's first partition (`data.partitions_start`),
    which is also the backtest asset's start, so path-dependent settings give the same weights in both."""
    return parse_partition_key(cfg.data.partitions_start)


def _write(conn, table: str, rows: pd.DataFrame, start, end, ts_col: str = "ts") -> int:
    return replace_rows(conn, table, rows, f"{ts_col} >= ? AND {ts_col} < ?", [start, end])


def _write_markers(conn, asset: str, markers: pd.DataFrame, start, end) -> None:
    replace_rows(conn, "signal_windows", markers, "asset = ? AND ts >= ? AND ts < ?", [asset, start, end])


@dg.asset(
    deps=["candles"],
    metadata={"partition_expr": "ts", "table": "returns"},
    **_COMMON,
)
def returns(context: dg.AssetExecutionContext, gradient: GradientResource) -> dg.MaterializeResult:
    """Per coin and 4h bar: log return `r`, EWMA volatility `sigma` (span `vol_span`, pandas `adjust=False`
    semantics) and `z = r / sigma`, plus the trailing 24h USD volume `adv_usd`. Table `returns`.

    Continues the recursion from the previous window's stored state (columns `st_*`); rebuilds it from the
    stored candles once if that window is missing or was computed with other parameters (`bootstrapped`).
    """
    start, end = _window(context)
    params = SignalParams.from_config(gradient.config)
    with gradient.db() as conn:
        market.ensure(conn)
        tables.ensure(conn)
        out = steps.returns_step(conn, start, end, params)
        bad = out.rows["sigma"].notna() & ~(out.rows["sigma"] >= 0)
        if bad.any():
            row = out.rows[bad].iloc[0]
            raise dg.Failure(f"negative sigma for {row.coin} at {row.ts}; nothing written", allow_retries=False)
        n = _write(conn, "returns", out.rows, start, end)
        _write_markers(conn, "returns", out.windows, start, end)
    last = out.rows[out.rows.ts == out.rows.ts.max()] if len(out.rows) else out.rows
    return dg.MaterializeResult(metadata={
        "rows": n, "windows": len(out.windows), "bootstrapped": out.bootstrapped,
        "coins_last_window": len(last), "coins_with_sigma_last_window": out.extra["coins_with_sigma"],
        "median_sigma_last_window": float(last["sigma"].median()) if last["sigma"].notna().any() else 0.0,
    })


@dg.asset(
    deps=["returns"],
    metadata={"partition_expr": "ts", "table": "momentum_scores"},
    **_COMMON,
)
def momentum_scores(context: dg.AssetExecutionContext, gradient: GradientResource) -> dg.MaterializeResult:
    """Multi-span momentum score per coin and bar: Σ over `lookback_spans` of EWMA(z, span) (or the configured
    `signal_combination`), and its rank (1 = highest; ties by coin name). Table `momentum_scores`."""
    start, end = _window(context)
    params = SignalParams.from_config(gradient.config)
    with gradient.db() as conn:
        market.ensure(conn)
        tables.ensure(conn)
        out = steps.scores_step(conn, start, end, params)
        if len(out.rows) and not np.isfinite(out.rows["score"].to_numpy(np.float64)).all():
            raise dg.Failure("non-finite score computed; nothing written", allow_retries=False)
        n = _write(conn, "momentum_scores", out.rows, start, end)
        _write_markers(conn, "momentum_scores", out.windows, start, end)
    last = out.rows[out.rows.ts == out.rows.ts.max()].sort_values("rank") if len(out.rows) else out.rows
    return dg.MaterializeResult(metadata={
        "rows": n, "windows": len(out.windows), "bootstrapped": out.bootstrapped, "coins_last_window": len(last),
        "top_coins": dg.MetadataValue.json(last["coin"].head(5).tolist()),
        "bottom_coins": dg.MetadataValue.json(last["coin"].tail(5).tolist()[::-1]),
        "max_score": float(last["score"].max()) if len(last) else 0.0,
        "min_score": float(last["score"].min()) if len(last) else 0.0,
    })


@dg.asset(
    deps=["momentum_scores", "returns", "universe"],
    metadata={"partition_expr": "ts", "table": "target_weights"},
    **_COMMON,
)
def target_weights(context: dg.AssetExecutionContext, gradient: GradientResource) -> dg.MaterializeResult:
    """Signed target weights (fraction of capital) per coin for each window: table `target_weights`
    (`rebalance_time` = window end UTC, `ts`, `coin`, `weight`, `score`, `sigma`, `adv_usd`, `side`, `rank`;
    only non-zero weights) and one summary row per window in `target_windows`.

    Same function as the backtest (`core.portfolio.target_path`), continued from the previous window's stored
    targets (band / smoothing / rebalance interval are path-dependent). Invariants (finite, caps, side grosses,
    counts, net ≈ 0, no ineligible coin) are validated before the write: a violation fails the run and writes
    nothing.
    """
    start, end = _window(context)
    cfg = gradient.config
    sp, pp = SignalParams.from_config(cfg), PortfolioParams.from_config(cfg)
    with gradient.db() as conn:
        market.ensure(conn)
        tables.ensure(conn)
        try:
            out = steps.targets_step(conn, start, end, sp, pp, inception(cfg))
        except (steps.TargetInvariantError, steps.MissingHistoryError) as err:
            raise dg.Failure(description=str(err), allow_retries=False) from None
        n = _write(conn, "target_weights", out.rows, start, end)
        replace_rows(conn, "target_windows", out.windows, "ts >= ? AND ts < ?", [start, end])
    return dg.MaterializeResult(metadata=_targets_metadata(out, n))


def _targets_metadata(out: steps.StepOutput, n: int) -> dict:
    w = out.windows.iloc[-1]
    last = out.rows[out.rows.ts == w["ts"]].sort_values("weight", ascending=False)
    longs, shorts = last[last.weight > 0], last[last.weight < 0].sort_values("weight")
    fmt = lambda d: dg.MetadataValue.md(  # noqa: E731
        "\n".join(f"- {r.coin}: {r.weight:+.4f}" for r in d.head(5).itertuples()) or "none")
    return {
        "rows": n,
        "windows": len(out.windows),
        "last_rebalance_time": str(w["rebalance_time"]),
        "n_long": int(w["n_long"]),
        "n_short": int(w["n_short"]),
        "n_eligible": int(w["n_eligible"]),
        "long_gross": float(w["long_gross"]),
        "short_gross": float(w["short_gross"]),
        "gross": float(w["long_gross"] + w["short_gross"]),
        "net": float(w["net"]),
        "turnover_vs_previous": float(w["turnover"]),
        "mean_turnover_range": float(out.windows["turnover"].mean()),
        "n_capped": int(w["n_capped"]),
        "side_shrunk": bool(w["shrunk"]),
        "cap_handling": "side shrunk (k × cap < side gross)" if w["shrunk"] else (
            "excess redistributed within the side" if w["n_capped"] else "no position at the cap"),
        "vol_scale": float(w["vol_scale"]),
        "top_longs": fmt(longs),
        "top_shorts": fmt(shorts),
    }


__all__ = ["returns", "momentum_scores", "target_weights", "partition_key"]
