"""The live strategy's window steps (Dagster-free): `steps` turns one range of 4h windows of market data into
returns, momentum scores and target weights (carrying the signal state across windows, exactly as the backtest's
kernels in `core/` do), and `tables` owns the DuckDB tables they write. `defs/signals` wraps them as assets."""
