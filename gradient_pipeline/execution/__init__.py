"""Rebalance planning, the order lifecycle and the execution ledger (Dagster-free)."""
