"""The signals job (also the single-run backfill job for the three strategy assets)."""

from __future__ import annotations

import dagster as dg
from gradient_pipeline import runtags

WRITER_TAGS = runtags.DUCKDB_WRITER  # serialised by dagster.yaml: one DuckDB writer at a time

signals_job = dg.define_asset_job(
    "signals_job",
    selection=dg.AssetSelection.assets("returns", "momentum_scores", "target_weights"),
    tags=WRITER_TAGS,
    description="returns → momentum_scores → target_weights for one 4h window or a range in one run.",
)

research_job = dg.define_asset_job(
    "research_job",
    selection=dg.AssetSelection.assets("backtest", "sweep"),
    tags=WRITER_TAGS,
    description="Backtest of the configured strategy and the sensitivity sweep over the stored history.",
)
