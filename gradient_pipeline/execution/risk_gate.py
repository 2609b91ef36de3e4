"""The two safety hooks the rebalance runner calls before anything is sent.

- `trading_halt(conn)` → reason string if trading is halted (the operations book, book/halt.py), else None.
- `pre_trade_risk(plan, account, adv_usd, halted, cfg)` → `core.risk.check_plan`'s `RiskDecision` on the plan.

Both are owned by the risk/monitoring domain; this module only adapts the planner's types to theirs so the
runner has one obvious place where risk is applied.
"""

from __future__ import annotations

from gradient_pipeline.config import GradientConfig
from gradient_pipeline.core.risk import RiskDecision, check_plan
from gradient_pipeline.venue.model import AccountState
from gradient_pipeline.execution.planner import Plan
from gradient_pipeline.book.halt import halt_reason, is_halted


def trading_halt(conn) -> str | None:
    """None when trading may proceed; otherwise the halt's one-line reason."""
    return halt_reason(conn) if is_halted(conn) else None


def pre_trade_risk(
    plan: Plan, account: AccountState, mids: dict[str, float], adv_usd: dict[str, float], halted: bool,
    cfg: GradientConfig,
) -> RiskDecision:
    """Run the pre-trade limits on the whole plan (targets in USD, current positions in USD, every order)."""
    targets_usd = {c: sz * mids[c] for c, sz in plan.target_sz.items() if sz}
    current_usd = {c: p.szi * mids.get(c, p.position_value / abs(p.szi)) for c, p in account.positions.items()}
    return check_plan(
        plan.orders,
        targets_usd,
        account.account_value,
        adv_usd,
        halted,
        cfg,
        current_positions=current_usd,
    )
