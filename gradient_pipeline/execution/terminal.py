"""Terminal status: every rebalance ends as one of complete (nothing left to trade), partial (residuals listed),
refused (reason, nothing sent) or failed (error); positions and equity are snapshotted at the end."""

from __future__ import annotations

from dataclasses import dataclass, field

from gradient_pipeline.book import ledger
from gradient_pipeline.execution.context import RunContext
from gradient_pipeline.execution.planner import Plan
from gradient_pipeline.execution.reconcile import positions_of
from gradient_pipeline.venue.model import AccountState


@dataclass
class RebalanceResult:
    rebalance_id: str
    status: str  # complete | partial | refused | failed
    reason: str | None
    mode: str
    network: str
    orders_sent: int = 0
    fills: int = 0
    account_value: float | None = None
    residual_usd: dict[str, float] = field(default_factory=dict)
    resumed: bool = False
    # the venue's dead-man switch (dead_man.py): armed at least once / why it could not be armed (alerted by the
    # caller: monitoring/alerts.py `dead_man_condition`)
    dead_man_armed: bool = False
    dead_man_failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        tail = f": {self.reason}" if self.reason else ""
        counts = (f"{self.orders_sent} orders planned and recorded, none sent" if self.mode == "dry_run"
                  else f"{self.orders_sent} orders sent, {self.fills} fills")
        return f"rebalance {self.rebalance_id} [{self.mode}/{self.network}] {self.status}{tail} ({counts})"


def ensure_started(ctx: RunContext, capital: float | None = None) -> None:
    """A ledger row for this rebalance (one that failed or was refused before it started still gets one)."""
    with ctx.db() as conn:
        if ledger.get_rebalance(conn, ctx.rid) is None:
            ledger.start_rebalance(conn, ctx.rid, ctx.window_ts, ctx.mode, ctx.network, ctx.venue.account_address,
                                   capital, ctx.dagster_run_id)


def finish(ctx: RunContext, status: str, reason: str | None, state: AccountState | None, plan: Plan | None,
           mids: dict[str, float] | None = None) -> RebalanceResult:
    """Record the terminal status (and the end snapshot when the account was read) and report it."""
    if ctx.risk_note:  # a scaled book says so in the ledger
        reason = f"{reason}; {ctx.risk_note}" if reason else ctx.risk_note
    residual = {}
    if state is not None:
        now = ctx.venue.server_time()
        with ctx.db() as conn:
            ledger.snapshot(conn, now, "rebalance_end", ctx.rid, state.account_value, state.total_ntl_pos,
                            state.positions, ctx.target_weights)
    if plan is not None and status == "partial" and state is not None and mids:
        residual = {c: v for c, v in plan.residual_usd(positions_of(state), mids).items() if v > 0}
    with ctx.db() as conn:
        ledger.finish_rebalance(conn, ctx.rid, status, reason)
        row = ledger.get_rebalance(conn, ctx.rid)
    result = RebalanceResult(ctx.rid, status, reason, ctx.mode, ctx.network, orders_sent=int(row["n_orders"]),
                             fills=int(row["n_fills"]), account_value=state.account_value if state else None,
                             residual_usd=residual, resumed=ctx.resumed)
    ctx.say(result.summary())
    return result


def failed(ctx: RunContext, err: Exception) -> RebalanceResult:
    """An unexpected error: the rebalance ends `failed` with the error, and the next run of the window resumes."""
    msg = f"{type(err).__name__}: {err}"[:500]
    ensure_started(ctx)
    with ctx.db() as conn:
        ledger.finish_rebalance(conn, ctx.rid, "failed", msg)
    return RebalanceResult(ctx.rid, "failed", msg, ctx.mode, ctx.network, resumed=ctx.resumed)
