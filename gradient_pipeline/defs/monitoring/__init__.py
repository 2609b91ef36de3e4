"""Monitoring in Dagster: equity snapshots and the dashboard assets, drawdown warning and emergency stop,
run-failure alerts, the daily summary and the performance report."""

from gradient_pipeline.defs.monitoring.definitions import defs

__all__ = ["defs"]
