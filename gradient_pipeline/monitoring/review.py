"""What the monitor run evaluates after each equity snapshot: drawdown-warning re-arm, position drift, slippage.

Called by the `equity_snapshot` asset (and usable from a script) with a book connection; writes only the alert
tables.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from gradient_pipeline.config import GradientConfig
from gradient_pipeline.monitoring import messages
from gradient_pipeline.monitoring.alerts import Delivery, clear_alert, raise_alert
from gradient_pipeline.monitoring.equity import EquityState, drawdown_level
from gradient_pipeline.monitoring.halt import is_halted
from gradient_pipeline.monitoring.evaluate import (
    drift_rows,
    fills_with_reference,
    last_rebalance_targets,
    recent_rebalance_ids,
    slippage_rows,
)


def review_snapshot(conn: Connection, cfg: GradientConfig, account, state: EquityState) -> list[Delivery]:
    """Evaluate the snapshot's alert conditions; returns what was attempted (sent, rate-limited, …)."""
    out: list[Delivery] = []
    if state.drawdown_pct is not None and drawdown_level(state.drawdown_pct, cfg) == "ok":
        clear_alert(conn, "drawdown_warn")  # re-arm: the next crossing alerts again

    last = last_rebalance_targets(conn)
    if last is not None and is_halted(conn):
        # A halt means "be flat": drift is measured against no positions. A flat halted account is quiet (the
        # halt itself was alerted once); positions left open while halted alert once, until they are gone.
        last = ("the halt (target: flat)", {})
    if last is not None and account.account_value > 0:
        rid, weights = last
        target_usd = {c: w * account.account_value for c, w in weights.items()}
        actual_usd = {c: (p.position_value if p.szi > 0 else -p.position_value) for c, p in account.positions.items()}
        rows = drift_rows(actual_usd, target_usd, account.account_value, cfg.alerts.drift_alert_pct)
        if rows:
            out.append(raise_alert(conn, messages.position_drift(rows, cfg.alerts.drift_alert_pct, rid), cfg))
        else:
            clear_alert(conn, "position_drift")

    for rid in recent_rebalance_ids(conn):
        rows = slippage_rows(fills_with_reference(conn, rid), cfg.alerts.slippage_alert_pct)
        if rows:
            d = raise_alert(conn, messages.slippage(rid, rows, cfg.alerts.slippage_alert_pct), cfg)
            if d.status != "duplicate":
                out.append(d)
    return [d for d in out if d.status != "duplicate"]
