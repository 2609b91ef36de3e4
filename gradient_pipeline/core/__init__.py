"""Pure strategy code: signals, portfolio, costs, backtest, sweep, pre-trade risk (no I/O)."""
