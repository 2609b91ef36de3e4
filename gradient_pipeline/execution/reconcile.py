"""Reconcile: positions, account value and fills come from the venue (the account's own address), never from
memory. Fills are ingested into the ledger by trade id (idempotent); the capital a rebalance sizes with is frozen
at the first run that knew it."""

from __future__ import annotations

import math

from gradient_pipeline.book import ledger
from gradient_pipeline.execution.context import RunContext
from gradient_pipeline.venue.model import AccountState


def known_capital(value) -> float | None:
    """A capital figure that can size a rebalance: finite and positive; None (unknown) otherwise — NULL read back
    as NaN included."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def positions_of(state: AccountState) -> dict[str, float]:
    """coin → signed size."""
    return {c: p.szi for c, p in state.positions.items()}


def ingest_fills(ctx: RunContext) -> int:
    """The venue's fills into the ledger (new trade ids only); order fill totals refreshed. Returns how many new."""
    if not ctx.sends:
        return 0
    fills = ctx.venue.fills_since()
    with ctx.db() as conn:
        new = ledger.ingest_fills(conn, fills)
        ledger.refresh_order_fills(conn)
    return new


def frozen_capital(ctx: RunContext, stored, state: AccountState) -> float:
    """The capital this rebalance sizes with: the one stored by the first run that knew it, else the live account
    value now (stored). A failed read before it was known stored NULL (read back as NaN), which never counts."""
    capital = known_capital(stored)
    if capital is None:
        capital = known_capital(state.account_value)
        if capital is None:
            raise ValueError(f"account value unknown or not positive ({state.account_value!r}); the next run "
                             "retries this window")
        with ctx.db() as conn:
            ledger.set_capital(conn, ctx.rid, capital)
    return capital
