"""`MarketView`: the replayed market as seen at replay-now — the contract between the market-data half and the
trading engine (`engine.py`).

Contract (stable; the trading engine codes against exactly this):

```python
class CoinMeta:                       # frozen dataclass
    name: str                         # exact exchange spelling, e.g. "BTC", "kPEPE"
    asset_index: int                  # index in meta["universe"]; never shifts (delisted coins keep theirs)
    sz_decimals: int
    max_leverage: int
    is_delisted: bool                 # recorded data ended before replay-now (and before the dataset's end)

class MarketView:
    def now_ms(self) -> int                                   # replay clock, epoch ms
    def coins(self) -> list[CoinMeta]                         # listed coins at now, in asset-index order
    def coin(self, name: str) -> CoinMeta | None              # listed coin by name (None if unknown / not yet listed)
    def coin_by_asset(self, i: int) -> CoinMeta | None        # None if out of range / not yet listed
    def mid(self, coin: str) -> float | None                  # None if unknown, not listed yet, or delisted
    def mark(self, coin: str) -> float | None                 # == mid for listed coins; last price if delisted
    def oracle(self, coin: str) -> float | None               # == mark (no separate oracle feed in the data)
    def book(self, coin: str) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]
        # (bids best-first, asks best-first) as (px, sz); px valid exchange prices (5 sig figs, <= 6-szDecimals
        # decimals), sz rounded to szDecimals; empty lists if no mid. Same numbers as /info l2Book.
    def funding_rate(self, coin: str, hour_ms: int) -> float | None
        # the recorded rate of the funding event in the hour [hour_ms, hour_ms + 1h) (recorded times carry ms
        # jitter); None if no event in that hour (8-hourly era before 2023-06-08, or outside the data)
    def current_funding(self, coin: str) -> float | None      # latest recorded rate at or before now
```

Prices at replay-now: mid = close of the latest *closed* 1h candle (open + 1h <= now), falling back to the latest
closed 4h candle, then to the forming candle's open; multiplied by every price shock (`shock(factor, coin)`)
applied at or before now. Prices therefore move only when the replay clock moves (or a shock is applied).
Nothing here looks past replay-now.

Clock: the engine is told about clock moves through `TradingEngine.on_clock(now_ms)`, called by the app (under the
app's lock) after every explicit set/advance and, when the clock runs (speed > 0), before handling a request whose
replay-now differs from the last one notified. One call may therefore jump several hours: apply every hourly
funding boundary crossed since the previous call.

All calls are made with the app's single state lock held (requests are handled one at a time), so neither side
needs its own locking.
"""
