"""Strategy in Dagster: `returns`, `momentum_scores`, `target_weights` (group `signals`), their checks and job;
`backtest` and `sweep` (group `research`)."""

import dagster as dg

from gradient_pipeline.defs.signals.assets import momentum_scores, returns, target_weights
from gradient_pipeline.defs.signals.checks import target_weights_fresh, target_weights_invariants
from gradient_pipeline.defs.signals.jobs import research_job, signals_job
from gradient_pipeline.defs.signals.research_assets import backtest, sweep

defs = dg.Definitions(
    assets=[returns, momentum_scores, target_weights, backtest, sweep],
    asset_checks=[target_weights_invariants, target_weights_fresh],
    jobs=[signals_job, research_job],
)
