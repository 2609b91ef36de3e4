"""Routing: planned orders → venue orders, sent in batches, each outcome recorded.

Write-ahead: every order is in the ledger as `sending` (with its deterministic client id) before its batch goes
out. The halt flag is re-read before every batch, so a halt set meanwhile by another process stops further
sending. Ambiguous outcomes (timeout, 5xx, lost answer) are resolved by client-id lookup right away; if that fails
too the order stays unresolved and the run ends `failed` (the next run resolves it). `passive_first`: round 0
posts post-only orders at the touch, waits `passive_timeout_s`, cancels the rest; later rounds are IOC."""

from __future__ import annotations

import logging
import time

from gradient_pipeline.book import ledger
from gradient_pipeline.execution.context import RunContext
from gradient_pipeline.execution.planner import Plan, PlannedOrder
from gradient_pipeline.execution.resume import resolve, resolve_retrying
from gradient_pipeline.execution.risk_gate import trading_halt
from gradient_pipeline.venue.model import AccountState, OrderOutcome, OrderRequest, client_order_id

log = logging.getLogger("gradient_pipeline.execution.runner")


def never_reached(out: OrderOutcome) -> bool:
    """A rejection that is the transport's, not the venue's verdict on the order (rate limit after retries, a
    failure known not to have executed): the order never got there."""
    return out.kind == "rejected" and out.oid is None and out.unprocessed


def set_leverage(ctx: RunContext, plan: Plan, state: AccountState) -> None:
    """Per-coin leverage (the configured one, capped by the instrument's maximum) for coins about to be opened."""
    instruments = ctx.venue.instruments()
    for coin in sorted({o.coin for o in plan.orders if not o.reduce_only and o.coin not in state.positions}):
        spec = instruments.get(coin)
        lev = max(1, min(ctx.ex.leverage, spec.max_leverage if spec else ctx.ex.leverage))
        try:
            ctx.venue.update_leverage(coin, lev)
        except Exception as err:  # noqa: BLE001 - leverage is a preference; margin checks still apply
            log.warning("updateLeverage %s x%d failed: %s", coin, lev, err)


def record(ctx: RunContext, attempt: int, orders: list[PlannedOrder], tif: str, status: str,
           prices: dict[str, float] | None = None) -> list[OrderRequest]:
    """The round's orders into the ledger (write-ahead) and as venue requests."""
    reqs, rows = [], []
    for o in orders:
        cloid = client_order_id(ctx.rid, o.coin, o.leg, attempt)
        px = (prices or {}).get(o.coin + o.leg, o.limit_px)
        reqs.append(OrderRequest(o.coin, o.is_buy, o.sz, px, o.reduce_only, cloid, tif))
        rows.append({"cloid": cloid, "rebalance_id": ctx.rid, "coin": o.coin, "leg": o.leg, "attempt": attempt,
                     "side": o.side, "sz": o.sz, "limit_px": px, "mid_px": o.mid, "reduce_only": o.reduce_only,
                     "tif": tif, "notional_usd": o.notional_usd, "status": status})
    with ctx.db() as conn:
        ledger.record_orders(conn, rows)
        if status != "dry_run":
            ledger.set_attempts(conn, ctx.rid, attempt + 1)
    return reqs


def apply_outcomes(ctx: RunContext, outcomes: list[OrderOutcome], coins: dict[str, str]) -> None:
    """Each outcome into the ledger; ambiguous ones looked up by client id at once."""
    with ctx.db() as conn:
        for out in outcomes:
            ledger.update_order(conn, out.cloid, out.kind, oid=out.oid, filled_sz=out.filled_sz or None,
                                avg_px=out.avg_px, error=out.error)
    for out in outcomes:
        coin = coins[out.cloid]
        if out.kind == "ambiguous":
            ctx.say(f"{coin} {out.cloid}: ambiguous ({out.error}); looking it up by client id")
            try:
                status = resolve(ctx, out.cloid, coin)
                ctx.say(f"{coin} {out.cloid}: resolved -> {status}")
                if status == "not_placed":
                    ctx.unreached.append((coin, out.error or "no answer"))
            except Exception as err:  # noqa: BLE001 - stays 'ambiguous'; the run ends failed, next run resolves
                log.warning("lookup of %s failed: %s", out.cloid, err)
        elif out.kind == "rejected":
            ctx.say(f"{coin} {out.cloid}: rejected: {out.error}")
            if never_reached(out):
                ctx.unreached.append((coin, out.error or "refused unprocessed"))


def passive_prices(ctx: RunContext, orders: list[PlannedOrder]) -> dict[str, float]:
    """Post-only prices at the touch on our own side (never crossing); the IOC limit if that side is empty."""
    instruments = ctx.venue.instruments()
    prices = {}
    for o in orders:
        bid, ask = ctx.venue.l2_touch(o.coin)
        touch = bid if o.is_buy else ask
        prices[o.coin + o.leg] = instruments[o.coin].round_price(touch, not o.is_buy) if touch else o.limit_px
    return prices


def send_round(ctx: RunContext, attempt: int, orders: list[PlannedOrder], passive: bool) -> str | None:
    """Send one round; returns a whole-action refusal message (bad signer, nonce, …) or a halt, if there was one."""
    ctx.dead_man.arm()  # resting orders of this round die on the venue if this process dies
    tif, prices = ("Alo", passive_prices(ctx, orders)) if passive else ("Ioc", None)
    reqs = record(ctx, attempt, orders, tif, status="sending", prices=prices)
    coins = {r.cloid: r.coin for r in reqs}
    ctx.say(f"attempt {attempt}: sending {len(reqs)} {tif} order(s) in batches of {ctx.ex.batch_size}")
    refused = None
    for i in range(0, len(reqs), ctx.ex.batch_size):
        with ctx.db() as conn:  # a halt set meanwhile by another process stops sending before the next batch
            halted = trading_halt(conn)
        if halted:
            refused = f"trading halted during the rebalance, remaining orders not sent: {halted}"
            break
        outcomes = ctx.venue.bulk_orders(reqs[i : i + ctx.ex.batch_size])
        apply_outcomes(ctx, outcomes, coins)
        refused = refused or next((o.error or "action refused" for o in outcomes if o.action_refused), None)
        if refused:
            break  # the venue refuses this signer/account: more batches would only be refused too
    if passive:
        wait_then_cancel_resting(ctx)
    return refused


def wait_then_cancel_resting(ctx: RunContext) -> None:
    """Let post-only orders rest up to `passive_timeout_s` (until none of ours is open), then cancel the rest."""
    deadline = time.monotonic() + ctx.ex.passive_timeout_s
    while time.monotonic() < deadline:
        with ctx.db() as conn:
            ours = {int(o) for o in ledger.unresolved_orders(conn, ctx.rid)["oid"].dropna()}
        if not ours & {o.oid for o in ctx.venue.open_orders()}:
            break
        ctx.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    with ctx.db() as conn:
        resting = ledger.unresolved_orders(conn, ctx.rid)
    for row in resting.itertuples():
        resolve_retrying(ctx, row.cloid, row.coin)  # cancels what still rests; IOC rounds take the residual
