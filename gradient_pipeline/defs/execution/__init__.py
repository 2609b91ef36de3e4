"""Execution in Dagster: the `rebalance_job` op job, its lineage asset, the 4h schedule and the sensor chain."""

from gradient_pipeline.defs.execution.definitions import defs

__all__ = ["defs"]
