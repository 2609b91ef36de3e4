"""Monitoring and operations (Dagster-free): halt state, equity and drawdown, alerts, status, emergency stop.

The Dagster layer in `gradient_pipeline/defs/monitoring` and the CLI (`app/monitoring_cli.py`) are thin shells over
these modules, so an operator can stop and inspect the system with the Dagster daemon down.
"""
