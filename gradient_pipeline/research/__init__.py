"""Research runners: load history (DuckDB or a freqtrade directory), call `core`, store results, draw charts."""
