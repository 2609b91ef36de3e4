"""Resume: a rebalance is identified by the window it trades, so running the window again finds what an earlier
process did. Orders whose fate is unknown (`sending`, `ambiguous`, `resting`) are looked up by client order id
*before anything else is sent*; resting ones are cancelled; older rebalances left running by a dead process are
resolved and closed as `failed`. Nothing is ever re-sent blind."""

from __future__ import annotations

import hashlib
import logging

from gradient_pipeline.book import ledger
from gradient_pipeline.execution.context import RunContext
from gradient_pipeline.timegrid import utc_naive
from gradient_pipeline.venue.model import OrderLookup

log = logging.getLogger("gradient_pipeline.execution.runner")

RESOLVE_TRIES = 3  # lookup/cancel attempts for a resting post-only order before leaving it to the next run

LOOKUP_TO_STATUS = {"open": "resting", "filled": "filled", "canceled": "canceled", "unknown": "not_placed"}


def rebalance_id_for(window_ts, mode: str, account: str) -> str:
    """Deterministic id of the rebalance for one target window, mode and account (resumable)."""
    t = utc_naive(window_ts)
    acct = hashlib.sha256(account.lower().encode()).hexdigest()[:8]
    return f"{mode}-{t:%Y%m%dT%H%M}-{acct}"


def ledger_status(look: OrderLookup) -> str:
    """The ledger status of an order looked up at the venue (a cancelled or rejected order with fills: partial)."""
    filled = look.filled_sz
    if look.state in LOOKUP_TO_STATUS and not (look.state == "canceled" and filled > 0):
        return LOOKUP_TO_STATUS[look.state]
    if filled > 0:
        return "partial"
    if look.state == "rejected":
        return "rejected"
    return "canceled"  # gone without (more) fills


def resolve(ctx: RunContext, cloid: str, coin: str) -> str:
    """Find out what happened to an order by client id; cancel it if it still rests. Returns the ledger status."""
    look = ctx.venue.order_status(cloid)
    if look.is_open and ctx.venue.can_sign:
        ctx.venue.cancel_by_cloid(coin, cloid)
        look = ctx.venue.order_status(cloid)
    status = ledger_status(look)
    with ctx.db() as conn:
        ledger.update_order(conn, cloid, status, oid=look.oid,
                            error=None if look.exists else "not found by orderStatus: never placed")
    return status


def resolve_retrying(ctx: RunContext, cloid: str, coin: str) -> str | None:
    """`resolve` (look up, cancel if resting) with a few backoff retries. If it still fails the order stays
    unresolved in the ledger: the round ends the run `failed` and the next run cancels it before sending."""
    from gradient_pipeline.backoff import Backoff

    policy = Backoff(ctx.cfg.rate_limit.backoff_base_s, ctx.cfg.rate_limit.backoff_max_s)
    for failures in range(1, RESOLVE_TRIES + 1):
        try:
            return resolve(ctx, cloid, coin)
        except Exception as err:  # noqa: BLE001 - retried, then left for the next run (never raised mid-round)
            ctx.say(f"{coin} {cloid}: lookup/cancel failed ({type(err).__name__}: {str(err)[:200]}); "
                    f"try {failures}/{RESOLVE_TRIES}")
            if failures < RESOLVE_TRIES:
                ctx.sleep(policy.delay(failures))
    return None


def resolve_unresolved(ctx: RunContext) -> int:
    """Orders of this rebalance whose fate is unknown, resolved by client id. Returns how many there were."""
    with ctx.db() as conn:
        pending = ledger.unresolved_orders(conn, ctx.rid)
    for row in pending.itertuples():
        status = resolve(ctx, row.cloid, row.coin)
        ctx.say(f"resolved {row.coin} {row.cloid} (was {row.status}) -> {status}")
    return len(pending)


def resolve_interrupted(ctx: RunContext) -> None:
    """Orders left unresolved by an older rebalance (a crashed run whose window has passed); the older rebalances
    left running are closed as failed."""
    account = ctx.venue.account_address
    with ctx.db() as conn:
        stale = ledger.interrupted(conn, ctx.mode, account, ctx.rid)
    for row in stale.itertuples():
        status = resolve(ctx, row.cloid, row.coin)
        ctx.say(f"resolved {row.coin} {row.cloid} of interrupted {row.rebalance_id} -> {status}")
    with ctx.db() as conn:
        for old in ledger.supersede(conn, ctx.mode, account, ctx.rid):
            ctx.say(f"{old} was left running by a dead process; closed as failed (superseded by {ctx.rid})")


def resume(ctx: RunContext) -> None:
    """Everything an earlier process may have left: this rebalance's unknown orders, then older rebalances'."""
    if not ctx.sends:
        return
    if ctx.resumed:
        n = resolve_unresolved(ctx)
        if n:
            ctx.say(f"resumed {ctx.rid}: {n} order(s) of an interrupted run resolved by client id")
    resolve_interrupted(ctx)
