"""Market data: freqtrade import, pandera schemas, DuckDB market tables and the data sources behind them."""
