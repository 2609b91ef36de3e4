"""`ExecutionVenue`: everything the rebalance runner, the emergency stop and monitoring ask of a trading venue.

An adapter implements it in one package (`exchange/hyperliquid/` for Hyperliquid; the in-memory double in
`gradient_pipeline_tests/venue/` shows the minimum). Callers depend on this protocol and `venue.model` only, never
on an adapter's payloads or SDK.

Contract the runner relies on:
- `bulk_orders` never raises for venue or transport trouble: every order gets an `OrderOutcome`; an outcome whose
  fate is unknown is `ambiguous`, and `order_status(cloid)` later tells what became of it;
- reads (`account_state`, `open_orders`, `fills_since`, `order_status`, `all_mids`) may raise on failure; they are
  side-effect free and safe to retry;
- `schedule_cancel(at)` arms the venue's dead-man switch (every open order cancelled at `at` unless re-armed or
  cleared); an adapter whose venue has none raises `ActionRefusedError` (the runner then says loudly that it is
  not armed). Signed actions expire after `expires_after_s` so a delayed one cannot land late.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import pandas as pd

from gradient_pipeline.venue.model import (
    AccountEquity,
    AccountState,
    Fill,
    FundingPayment,
    InstrumentSpec,
    OpenOrder,
    OrderLookup,
    OrderOutcome,
    OrderRequest,
)


@runtime_checkable
class ExecutionVenue(Protocol):
    """One account on one venue. `account_address` is the account the reads are about; `can_sign` False means a
    read-only connection (dry_run), which refuses every action."""

    base_url: str  # where the venue was reached (banners, logs)
    account_address: str
    expires_after_s: float | None  # signed actions are refused by the venue if they land later than this

    @property
    def can_sign(self) -> bool: ...

    # ----------------------------------------------------------------- reference data and clock
    def instruments(self) -> Mapping[str, InstrumentSpec]:
        """Every tradable instrument's rules (sizes, prices, minimum notional, leverage, delisting), by coin."""
        ...

    def server_time(self) -> pd.Timestamp:
        """The venue's clock (naive UTC)."""
        ...

    def all_mids(self) -> dict[str, float]: ...

    def l2_touch(self, coin: str) -> tuple[float | None, float | None]:
        """(best bid, best ask); None for an empty side."""
        ...

    # ----------------------------------------------------------------- account reads
    def account_state(self) -> AccountState: ...

    def account_equity(self) -> AccountEquity: ...

    def open_orders(self) -> list[OpenOrder]: ...

    def fills_since(self, start_ms: int | None = None) -> list[Fill]:
        """The account's fills at or after `start_ms` (None: every fill the venue still reports), oldest first."""
        ...

    def order_status(self, cloid: str) -> OrderLookup: ...

    def funding_payments(self, start_ms: int, end_ms: int | None = None) -> list[FundingPayment]:
        """Every funding payment on the account's positions in [start_ms, end_ms] (None: until now), oldest first."""
        ...

    def funding_usd(self, start_ms: int, end_ms: int) -> float:
        """Funding received (+) or paid (−) by the account's positions between two times."""
        ...

    # ----------------------------------------------------------------- actions
    def bulk_orders(self, orders: list[OrderRequest]) -> list[OrderOutcome]: ...

    def cancel_by_cloid(self, coin: str, cloid: str) -> bool:
        """True if cancelled, False if it was no longer open."""
        ...

    def cancel(self, coin: str, oid: int) -> bool:
        """Cancel by the venue's order id (orders placed without a client id)."""
        ...

    def update_leverage(self, coin: str, leverage: int, is_cross: bool = True) -> None: ...

    # ----------------------------------------------------------------- safety valves
    def schedule_cancel(self, at) -> int:
        """Arm the dead-man switch for `at` (epoch ms, or a naive-UTC timestamp); returns the ms armed."""
        ...

    def clear_schedule_cancel(self) -> None: ...
