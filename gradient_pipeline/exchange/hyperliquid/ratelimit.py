"""Client-side weight budget for Hyperliquid's per-IP REST limit (1200 weight per minute by default).

Hyperliquid charges every REST request a weight: `/info` types cost 20 (a few cheap ones 2, `userRole` 60), plus an
extra that depends on how many items the response holds (`candleSnapshot` +1 per 60 candles; `fundingHistory`,
`userFills`, … +1 per 20 items); `/exchange` actions cost `1 + floor(batch / 40)`. The extra is only known after the
response, so the limiter charges the base weight *before* sending (blocking until the rolling 60 s window has room)
and the extra *after* (never blocking; the next request waits for it).

The budget is `budget_per_minute × safety_fraction` over a rolling 60 s window, which keeps a margin for other
processes on the same IP and for the exchange's own rounding of the extra weight (we charge `floor(items / 60)`, the
documented reading of "+1 per 60 items" and what the local exchange does; should the real exchange round up, the
difference is at most 1 per request, well inside the default 10 % margin). A rolling window of
`capacity <= budget` never overdraws the exchange's token bucket (capacity = budget, refilled at budget/60 per s).
All methods are thread-safe; `stats()` feeds the benchmarks.

**One budget per IP across processes.** The exchange counts weight per IP, but a deployment calls it from many
processes at once (parallel asset steps, sensors, monitor and rebalance runs, the CLI). With `ledger=` a
`SharedWeightLedger` holds the rolling window instead of process memory: a small SQLite file (default
`exchange_rate.sqlite` beside the DuckDB file) with one row per charge, keyed by the exchange's host. Admission is one
`BEGIN IMMEDIATE` transaction (SQLite's own file lock serialises every process on the machine): expire rows older
than 60 s, sum the rest, insert the charge if it fits. So N processes together never spend more than the one
budget, and a process alone may use all of it. A process killed mid-request leaves only its charge, which expires
with the window. The counters in `stats()` stay per process (what *this* client spent and waited).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from gradient_pipeline.config import RateLimitConfig
from gradient_pipeline.sqlite_wal import enable_wal

WINDOW_S = 60.0

# Info types whose weight grows by 1 per `items_per_extra_weight` (20) items returned (Hyperliquid rate-limit docs).
PER_ITEM_INFO_TYPES = frozenset(
    {
        "recentTrades", "historicalOrders", "userFills", "userFillsByTime", "fundingHistory", "userFunding",
        "nonUserFundingUpdates", "twapHistory", "userTwapSliceFills", "userTwapSliceFillsByTime",
        "delegatorHistory", "delegatorRewards", "validatorStats",
    }
)
CANDLE_INFO_TYPE = "candleSnapshot"
EXCHANGE_BATCH_PER_EXTRA_WEIGHT = 40  # `/exchange`: weight 1 + floor(batch_length / 40)


@dataclasses.dataclass(frozen=True)
class LimiterStats:
    """Counters since the limiter was created (or last `reset_stats`)."""

    requests: int  # HTTP attempts, retries included
    weight_spent: int  # base + extra weight charged
    rate_limited: int  # HTTP 429 responses seen
    retries: int  # attempts repeated after a 429 / timeout / 5xx
    limiter_wait_s: float  # time spent blocked waiting for budget
    backoff_wait_s: float  # time spent sleeping in retry back-off

    @property
    def wait_s(self) -> float:
        return self.limiter_wait_s + self.backoff_wait_s


class WeightLimiter:
    """Rolling-window weight budget shared by every request of one process (see module docstring).

    `clock` and `sleep` default to `time.monotonic` / `time.sleep`; they are parameters so the window arithmetic
    can be exercised deterministically.
    """

    def __init__(
        self,
        config: RateLimitConfig,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        ledger: "SharedWeightLedger | None" = None,
    ):
        self.config = config
        self.capacity = max(1, int(config.budget_per_minute * config.safety_fraction))
        self._clock = clock
        self._sleep = sleep
        self.ledger = ledger  # None: this process's own rolling window; else the machine-wide one
        self._lock = threading.Lock()
        self._events: collections.deque[tuple[float, int]] = collections.deque()  # (time charged, weight)
        self._used = 0
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._requests = 0
        self._weight = 0
        self._n429 = 0
        self._retries = 0
        self._limiter_wait = 0.0
        self._backoff_wait = 0.0

    # ---- weights -------------------------------------------------------------------------------------------

    def base_weight(self, url_path: str, body: Any) -> int:
        """Weight charged before sending: info type weight, or `1 + floor(batch/40)` for an `/exchange` action."""
        if url_path == "/exchange":
            action = body.get("action") if isinstance(body, Mapping) else None
            batch = 0
            if isinstance(action, Mapping):
                for key in ("orders", "cancels", "modifies"):
                    if isinstance(action.get(key), list):
                        batch = len(action[key])
                        break
            return 1 + batch // EXCHANGE_BATCH_PER_EXTRA_WEIGHT
        kind = body.get("type") if isinstance(body, Mapping) else None
        return int(self.config.info_weights.get(kind, self.config.default_info_weight))

    def extra_weight(self, url_path: str, body: Any, response: Any) -> int:
        """Item-dependent weight charged after the response: +1 per full `per` items (floor)."""
        if url_path != "/info" or not isinstance(body, Mapping) or not isinstance(response, list):
            return 0
        kind = body.get("type")
        if kind == CANDLE_INFO_TYPE:
            per = self.config.candle_items_per_extra_weight
        elif kind in PER_ITEM_INFO_TYPES:
            per = self.config.items_per_extra_weight
        else:
            return 0
        return len(response) // per

    # ---- budget ---------------------------------------------------------------------------------------------

    def _expire(self, now: float) -> None:
        while self._events and self._events[0][0] <= now - WINDOW_S:
            self._used -= self._events.popleft()[1]

    def acquire(self, weight: int) -> float:
        """Block until `weight` fits in the rolling window, then charge it. Returns the seconds waited.

        A weight larger than the whole budget is admitted once the window is empty (it could never fit otherwise).
        """
        if self.ledger is not None:
            waited = self.ledger.acquire(int(weight), self.capacity, self._sleep)
            with self._lock:
                self._requests += 1
                self._weight += int(weight)
                self._limiter_wait += waited
            return waited
        need = min(int(weight), self.capacity)
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._expire(now)
                if self._used + need <= self.capacity:
                    self._events.append((now, int(weight)))
                    self._used += int(weight)
                    self._requests += 1
                    self._weight += int(weight)
                    self._limiter_wait += waited
                    return waited
                # Earliest moment enough old charges have left the window.
                freed, until = 0, now
                for t, w in self._events:
                    freed += w
                    until = t + WINDOW_S
                    if self._used - freed + need <= self.capacity:
                        break
                delay = max(until - now, 0.001)
            self._sleep(delay)  # outside the lock: other threads may charge extras meanwhile
            waited += delay

    def charge(self, weight: int) -> None:
        """Add weight learned after the response (never blocks; later `acquire` calls wait for it)."""
        if weight <= 0:
            return
        if self.ledger is not None:
            self.ledger.charge(int(weight))
            with self._lock:
                self._weight += int(weight)
            return
        with self._lock:
            now = self._clock()
            self._expire(now)
            self._events.append((now, int(weight)))
            self._used += int(weight)
            self._weight += int(weight)

    def used(self) -> int:
        """Weight currently inside the rolling window."""
        if self.ledger is not None:
            return self.ledger.used()
        with self._lock:
            self._expire(self._clock())
            return self._used

    # ---- bookkeeping for retries -----------------------------------------------------------------------------

    def record_429(self) -> None:
        with self._lock:
            self._n429 += 1

    def record_retry(self, backoff_s: float) -> None:
        with self._lock:
            self._retries += 1
            self._backoff_wait += backoff_s

    def stats(self) -> LimiterStats:
        with self._lock:
            return LimiterStats(
                requests=self._requests,
                weight_spent=self._weight,
                rate_limited=self._n429,
                retries=self._retries,
                limiter_wait_s=self._limiter_wait,
                backoff_wait_s=self._backoff_wait,
            )

    def reset_stats(self) -> None:
        """Zero the counters (the window itself is kept: the exchange still remembers recent weight)."""
        with self._lock:
            self._reset_counters()


LEDGER_FILE_NAME = "exchange_rate.sqlite"
LEDGER_ENV_VAR = "GRADIENT_RATE_LEDGER"

_LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS spend (
    host   TEXT NOT NULL,   -- exchange host:port: one budget per exchange our IP talks to
    t      REAL NOT NULL,   -- epoch seconds (wall clock: shared by every process on the machine)
    weight INTEGER NOT NULL,
    pid    INTEGER NOT NULL -- who spent it (for `gradient-pipeline` debugging only)
);
CREATE INDEX IF NOT EXISTS spend_host_t ON spend (host, t);
"""


class SharedWeightLedger:
    """The rolling 60 s weight window of one exchange host, shared by every process through a SQLite file.

    Thread- and process-safe: every admission is one `BEGIN IMMEDIATE` transaction. The file is a scratch ledger
    (WAL, `synchronous=OFF`): losing it loses at most a minute of accounting, never data.
    """

    def __init__(self, path: str | os.PathLike, host: str, clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self.host = host
        self._clock = clock
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn().executescript(_LEDGER_DDL)

    def __repr__(self) -> str:
        return f"SharedWeightLedger({str(self.path)!r}, host={self.host!r})"

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            enable_wal(conn, self.path)
            conn.execute("PRAGMA synchronous=OFF")
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")  # the write lock first: read-then-insert is atomic across processes
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def acquire(self, weight: int, capacity: int, sleep: Callable[[float], None] = time.sleep) -> float:
        """Block until `weight` fits in the host's rolling window (capacity per 60 s), charge it, return the wait."""
        need = min(int(weight), int(capacity))
        waited = 0.0
        while True:
            with self._tx() as conn:
                now = self._clock()
                conn.execute("DELETE FROM spend WHERE host = ? AND t <= ?", (self.host, now - WINDOW_S))
                rows = conn.execute("SELECT t, weight FROM spend WHERE host = ? ORDER BY t", (self.host,)).fetchall()
                used = sum(w for _, w in rows)
                if used + need <= capacity:
                    conn.execute("INSERT INTO spend VALUES (?, ?, ?, ?)", (self.host, now, int(weight), os.getpid()))
                    return waited
                freed, until = 0, now
                for t, w in rows:  # earliest moment enough old charges have left the window
                    freed += w
                    until = t + WINDOW_S
                    if used - freed + need <= capacity:
                        break
                delay = max(until - now, 0.001)
            sleep(delay)  # outside the transaction: other processes keep spending meanwhile
            waited += delay

    def charge(self, weight: int) -> None:
        """Add weight learned after a response (never blocks on budget)."""
        if weight > 0:
            with self._tx() as conn:
                conn.execute("INSERT INTO spend VALUES (?, ?, ?, ?)", (self.host, self._clock(), int(weight), os.getpid()))

    def used(self) -> int:
        """Weight inside the host's rolling window right now (all processes)."""
        row = self._conn().execute("SELECT coalesce(sum(weight), 0) FROM spend WHERE host = ? AND t > ?",
                                   (self.host, self._clock() - WINDOW_S)).fetchone()
        return int(row[0])


def ledger_host(base_url: str) -> str:
    """The ledger key of an exchange URL: host[:port] (mainnet, testnet and each local exchange differ)."""
    from urllib.parse import urlparse

    return urlparse(base_url).netloc or base_url


def backoff_delay(attempt: int, config: RateLimitConfig, rand: Callable[[], float]) -> float:
    """Exponential back-off with jitter for retry number `attempt` (0-based), capped at `backoff_max_s`.

    "Equal jitter": half the exponential step is kept, the other half is random, so concurrent clients spread
    out but nobody retries immediately.
    """
    step = min(config.backoff_max_s, config.backoff_base_s * (2.0**attempt))
    return step / 2 + rand() * step / 2
