"""Rounds: plan → validate → pre-trade risk → send, repeated until the book is at target or the attempt budget is
spent. The plan is rebuilt from the live positions each round, so a partial fill's residual is re-priced at the
current mid; every order is validated before any is sent; pre-trade risk can refuse (nothing sent) or scale the
book once. Each way out is a terminal status (`terminal.finish`)."""

from __future__ import annotations

from gradient_pipeline.book import ledger
from gradient_pipeline.execution.context import RunContext
from gradient_pipeline.execution.planner import Plan, PlanParams, PlanValidationError, plan_orders, validate_plan
from gradient_pipeline.execution.reconcile import ingest_fills, positions_of
from gradient_pipeline.execution.risk_gate import pre_trade_risk
from gradient_pipeline.execution.routing import record, send_round, set_leverage
from gradient_pipeline.execution.terminal import RebalanceResult, finish
from gradient_pipeline.venue.model import AccountState


def plan_params(ctx: RunContext) -> PlanParams:
    return PlanParams(ctx.ex.min_order_usd, ctx.ex.min_order_buffer_usd, ctx.ex.slippage_cap_bps)


def trade_rounds(ctx: RunContext, state: AccountState, capital: float, targets: dict[str, float],
                 adv_usd: dict[str, float], halted: str | None) -> RebalanceResult:
    """Trade from `state` towards `targets` (fractions of `capital`) in rounds; returns the terminal result."""
    params = plan_params(ctx)
    instruments = ctx.venue.instruments()
    scale = 1.0
    plan: Plan | None = None
    with ctx.db() as conn:
        first_attempt = ledger.max_attempt(conn, ctx.rid) + 1
    attempt = first_attempt
    while True:
        mids = ctx.venue.all_mids()
        positions = positions_of(state)
        scaled_targets = {c: w * scale for c, w in targets.items()}
        try:
            plan = plan_orders(scaled_targets, positions, mids, instruments, capital, params)
        except PlanValidationError as err:
            return finish(ctx, "refused" if attempt == first_attempt else "failed", str(err), state, None)
        problems = validate_plan(plan, positions, instruments, params)
        delisted = sorted({o.coin for o in plan.orders if instruments[o.coin].delisted and not o.reduce_only})
        problems += [f"{c}: delisted (only reduce-only orders allowed)" for c in delisted]
        if problems:
            sent_before = attempt > first_attempt
            return finish(ctx, "failed" if sent_before else "refused",
                          "order plan failed validation, nothing sent in this round: " + "; ".join(problems),
                          state, plan)
        if not plan.orders:
            rounds = attempt - first_attempt
            note = (f"at target after {rounds} order round(s)" if rounds else "already at target, nothing sent")
            if plan.skipped:
                note += f"; {len(plan.skipped)} delta(s) below the minimum left alone"
            return finish(ctx, "complete", note, state, plan, mids)
        if attempt - first_attempt >= ctx.ex.max_attempts:  # a budget per run: a re-run trades again
            if ctx.unreached:  # not a market outcome: the orders never got there; the window is retried
                coin, err = ctx.unreached[-1]
                return finish(ctx, "failed", f"{len(ctx.unreached)} order(s) never reached the exchange "
                              f"(last: {coin}: {err}); {len(plan.orders)} order(s) left after "
                              f"{ctx.ex.max_attempts} attempts; the next run retries this window", state, plan, mids)
            return finish(ctx, "partial", f"{len(plan.orders)} order(s) left after {ctx.ex.max_attempts} attempts",
                          state, plan, mids)
        decision = pre_trade_risk(plan, state, mids, adv_usd, halted is not None, ctx.cfg)
        if not decision.approved:
            return finish(ctx, "refused", decision.summary(), state, plan)
        if decision.scaled:
            if scale != 1.0:
                return finish(ctx, "refused", "risk scaled the book twice: " + decision.summary(), state, plan)
            scale = decision.scale
            ctx.risk_note = decision.summary()
            ctx.say(ctx.risk_note)
            continue
        if not ctx.sends:
            record(ctx, attempt, plan.orders, "Ioc", status="dry_run")
            for o in plan.orders:  # what would have gone out; `gradient-pipeline trades` lists them too
                ctx.say(f"dry run, NOT sent: {o.side} {o.sz:g} {o.coin} limit {o.limit_px:g} "
                        f"(${o.notional_usd:,.0f}, {o.leg}{', reduce-only' if o.reduce_only else ''})")
            return finish(ctx, "complete", f"dry run: {len(plan.orders)} order(s) planned and checked, none sent",
                          state, plan, mids)

        if attempt == first_attempt:
            set_leverage(ctx, plan, state)
        passive = ctx.ex.style == "passive_first" and attempt == 0
        refused = send_round(ctx, attempt, plan.orders, passive)
        attempt += 1
        if refused:
            with ctx.db() as conn:  # orders of batches never sent are not on the venue
                ledger.mark_not_placed(conn, ctx.rid)
            ingest_fills(ctx)
            return finish(ctx, "failed", refused, ctx.venue.account_state(), plan, mids)
        ingest_fills(ctx)
        with ctx.db() as conn:
            stuck = ledger.unresolved_orders(conn, ctx.rid)
        if len(stuck):
            return finish(ctx, "failed", f"{len(stuck)} order(s) with unknown fate (e.g. "
                          f"{stuck.iloc[0]['coin']} {stuck.iloc[0]['cloid']}); the next run resolves them "
                          "by client id before sending", ctx.venue.account_state(), plan, mids)
        state = ctx.venue.account_state()
