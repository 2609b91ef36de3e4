"""`backtest` and `sweep` assets: research over the stored history, results in DuckDB, charts in the UI."""


import base64

import dagster as dg

from gradient_pipeline.defs.resources import GradientResource
from gradient_pipeline.defs.signals.assets import inception
from gradient_pipeline.research import data, runner, store


class SweepConfig(dg.Config):
    """Sweep run settings; `split` is the in-sample / out-of-sample boundary (UTC)."""

    split: str = "2024-10-01"
    grid: str = "full"
    folds: int = 4


def _img(png: bytes, alt: str) -> dg.MetadataValue:
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")


@dg.asset(group_name="research", deps=["candles", "funding", "universe"], kinds={"duckdb", "numba"})
def backtest(gradient: GradientResource) -> dg.MaterializeResult:
    """The configured strategy over all stored history from the first partition, net of taker fees,
    square-root slippage and funding. Tables `backtest_runs` (one row per run) and `backtest_equity`
    (per bar); the equity and drawdown chart is in this materialisation's metadata."""
    cfg = gradient.config
    with gradient.db(read_only=False) as conn:
        panel = data.load_panel_duckdb(conn)
    run = runner.backtest(panel, cfg, start=max(inception(cfg), panel.times[0]))
    with gradient.db() as conn:
        store.write_backtest(conn, run.run_id, run.result, run.config)
    m = run.result.metrics
    meta = {k: float(m[k]) for k in ("sharpe", "sharpe_gross", "annual_return", "annual_return_gross", "annual_vol",
                                      "max_drawdown", "turnover_per_bar", "fees_paid", "funding_paid", "slippage_paid")}
    return dg.MaterializeResult(metadata={**meta, "run_id": run.run_id, "start": m["start"], "end": m["end"],
                                          "equity_chart": _img(run.chart_png, "equity and drawdown")})


@dg.asset(group_name="research", deps=["candles", "funding", "universe"], kinds={"duckdb", "numba"})
def sweep(config: SweepConfig, gradient: GradientResource) -> dg.MaterializeResult:
    """Sensitivity sweep (concentration × rebalance interval × weighting × span subsets × band × smoothing) net of
    costs, with an in-sample / out-of-sample split and walk-forward re-selection. Tables `sweep_runs` and
    `sweep_results`; the heatmaps and the winner statement are in the metadata."""
    cfg = gradient.config
    if config.grid not in runner.GRIDS:
        raise dg.Failure(f"grid {config.grid!r}: expected one of {sorted(runner.GRIDS)}", allow_retries=False)
    with gradient.db(read_only=False) as conn:
        panel = data.load_panel_duckdb(conn)
    run = runner.sweep(panel, cfg, runner.GRIDS[config.grid], config.split, folds=config.folds)
    with gradient.db() as conn:
        store.write_sweep(conn, run.sweep_id, run.result, run.seconds)
    w = run.result.winner()
    return dg.MaterializeResult(metadata={
        "sweep_id": run.sweep_id, "configs": len(run.result.table), "seconds": run.seconds,
        "configs_per_second": len(run.result.table) / run.seconds,
        "winner_config_id": int(w.config_id), "winner_is_sharpe": float(w.is_sharpe),
        "winner_oos_sharpe": float(w.oos_sharpe), "statement": dg.MetadataValue.md(run.result.statement()),
        "heatmap_in_sample": _img(run.heatmaps["is_sharpe"], "in-sample heatmap"),
        "heatmap_out_of_sample": _img(run.heatmaps["oos_sharpe"], "out-of-sample heatmap"),
    })
