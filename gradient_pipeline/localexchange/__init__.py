"""Local Hyperliquid-compatible exchange: an HTTP service on 127.0.0.1 that replays recorded market data.

Used for paper trading, the offline demo and tests; the project's exchange adapter talks to it through the real
`hyperliquid-python-sdk` with `base_url` pointed here. Modules (one job each):

- `replay.py`   feather loading (freqtrade layout, cached per process) and the replay clock
- `market.py`   `MarketView`: prices, candles, funding, synthetic book and universe at replay-now (the contract the
                trading engine codes against is in its docstring)
- `engine.py`   `TradingEngine`: accounts, orders, signatures, funding payments (owned by the trading half)
- `venue_clock.py` the one clock for nonces, `expiresAfter` and `scheduleCancel` (wall clock + operator offset)
- `ratelimit.py` per-IP weight budget (documented Hyperliquid weights), 429 + `null` when exceeded
- `faults.py`   fault injection (429 / 5xx / timeout / drop / lost response) for tests and the demo
- `app.py`      the starlette app: `/info`, `/exchange`, and the operator surface under `/_local/...`
- `server.py`   `run_in_background(...)` -> `LocalExchangeHandle` (uvicorn in a daemon thread)
- `upstream.py` `UpstreamMarket`: the `MarketView` contract served from a live Hyperliquid info URL (paper trading)
- `paper.py`    a local exchange on an upstream with its accounts in a state file (`exchange serve --upstream`)
- `cli.py`      `gradient-pipeline exchange serve ...`
"""
