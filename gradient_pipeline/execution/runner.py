"""The rebalance state machine: reconcile → plan → validate → risk → send in rounds → record a terminal status.

One rebalance is identified by the target window it trades (`rebalance_id_for`), so running the same window again
— after a crash, a kill -9, a retry by hand — resumes the same rebalance instead of starting a second one:

1. **Lock**: one rebalance at a time per operations book (`book/locks.py`: a PostgreSQL advisory lock, or an OS
   file lock beside a SQLite book; both released even by kill -9); a second caller gets `RebalanceBusy` and is
   skipped visibly.
2. **Resume**: orders of this rebalance whose fate is unknown (`sending`, `ambiguous`, `resting`) are looked up
   by client order id *before anything else is sent*; resting ones are cancelled. Fills are ingested by trade id.
3. **Reconcile**: positions and account value come from the exchange (master address), never from memory.
4. **Plan and check**: the plan is rebuilt from the live positions each round, so a partial fill's residual is
   re-priced at the current mid; every order is validated before any is sent; pre-trade risk and the halt flag
   can refuse (nothing sent) or scale the book.
5. **Send**: write-ahead (`orders.status = sending`), then batches; each outcome is recorded. Ambiguous outcomes
   (timeout, 5xx, lost response) are resolved by `orderStatus` lookup right away; if the lookup fails too, the
   rebalance stops as `failed` and the next run resolves it — nothing is ever re-sent blind.
   `passive_first`: round 0 posts Alo orders at the touch, waits `passive_timeout_s`, cancels the rest; later
   rounds are IOC.
6. **Terminal status**: complete (nothing left to trade), partial (residuals listed), refused (reason, nothing
   sent), failed (error). Positions and equity are snapshotted at start and end.

Modes: `paper`/`testnet`/`mainnet` send; `dry_run` plans, checks and records orders as `dry_run`, never sends.

One idea per module: this one takes the lock and runs the steps in order; `resume.py` (1-2), `reconcile.py` (3),
`rounds.py` (4), `routing.py` (5), `terminal.py` (6); `context.py` holds what they share. The venue is any
`venue.ExecutionVenue` (the Hyperliquid adapter in production, an in-memory double in the tests).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

import pandas as pd

from gradient_pipeline.book import ledger
from gradient_pipeline.book.locks import RebalanceBusy, rebalance_lock
from gradient_pipeline.config import GradientConfig
from gradient_pipeline.execution.context import RunContext
from gradient_pipeline.execution.dead_man import dead_man_switch
from gradient_pipeline.execution.reconcile import frozen_capital, ingest_fills, known_capital
from gradient_pipeline.execution.resume import rebalance_id_for, resume
from gradient_pipeline.execution.risk_gate import trading_halt
from gradient_pipeline.execution.rounds import trade_rounds
from gradient_pipeline.execution.routing import never_reached
from gradient_pipeline.execution.terminal import RebalanceResult, ensure_started, failed, finish
from gradient_pipeline.timegrid import utc_naive
from gradient_pipeline.venue.protocol import ExecutionVenue

__all__ = [  # the runner's public face (callers import these from here)
    "RebalanceBusy", "RebalanceResult", "Rebalancer", "known_capital", "load_targets", "never_reached",
    "rebalance_id_for", "rebalance_lock",
]

log = logging.getLogger(__name__)


class Rebalancer:
    """Runs one rebalance for a target window. Construct per run; `run()` does everything and never raises for
    trading trouble (it records `failed`), only for `RebalanceBusy` and programming errors after recording."""

    def __init__(
        self,
        cfg: GradientConfig,
        client: ExecutionVenue,
        db_path: str | os.PathLike,
        dagster_run_id: str | None = None,
        on_event: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.cfg = cfg
        self.client = client
        self.db_path = str(db_path)
        self.mode = cfg.mode
        self.network = cfg.network
        self.dagster_run_id = dagster_run_id
        self._emit = on_event or (lambda msg: log.info(msg))
        self._sleep = sleep
        if self.mode != "dry_run" and not client.can_sign:
            raise ValueError(f"mode {self.mode} sends orders but the trading client has no key")

    def run(self, window_ts, targets: dict[str, float], adv_usd: dict[str, float] | None = None) -> RebalanceResult:
        window_ts = utc_naive(window_ts)
        rid = rebalance_id_for(window_ts, self.mode, self.client.account_address)
        banner = f"rebalance {rid}: mode={self.mode} network={self.network} url={self.client.base_url}"
        if self.network == "mainnet":
            banner = "*** MAINNET: REAL MONEY *** " + banner
            log.warning(banner)
        self._emit(banner)
        ctx = RunContext(self.cfg, self.client, self.db_path, self.dagster_run_id, self._emit, self._sleep,
                         rid=rid, window_ts=window_ts, target_weights=dict(targets))
        with rebalance_lock(self.db_path):
            with ctx.db() as conn:
                ledger.ensure(conn)
                existing = ledger.get_rebalance(conn, rid)
            if existing is not None and existing["status"] in ("complete", "partial"):
                self._emit(f"{rid} already {existing['status']}; nothing to do")
                return RebalanceResult(rid, existing["status"], existing["reason"], self.mode, self.network,
                                       account_value=existing["capital_usd"], resumed=True)
            ctx.resumed = existing is not None
            try:
                with dead_man_switch(self.client, self.cfg.execution.dead_man_s, self._emit) as ctx.dead_man:
                    result = self._run_locked(ctx, adv_usd or {})
                result.dead_man_armed = ctx.dead_man.ever_armed
                result.dead_man_failures = list(ctx.dead_man.failures)
                return result
            except Exception as err:
                log.exception("rebalance %s failed", rid)
                return failed(ctx, err)

    def _run_locked(self, ctx: RunContext, adv_usd: dict[str, float]) -> RebalanceResult:
        with ctx.db() as conn:
            halted = trading_halt(conn)
        # Reconcile first: whatever an earlier process sent is resolved before anything new can go out.
        try:
            resume(ctx)
            ingest_fills(ctx)
            state = ctx.venue.account_state()
            now = ctx.venue.server_time()
        except Exception as err:
            if not halted:
                raise
            # halted: nothing would be sent anyway, so an unreadable venue does not make this a failure
            ensure_started(ctx)
            return finish(ctx, "refused", f"trading halted: {halted} (nothing sent; the account could not "
                          f"be read: {type(err).__name__})", None, None)
        with ctx.db() as conn:
            row = ledger.start_rebalance(conn, ctx.rid, ctx.window_ts, ctx.mode, ctx.network,
                                         ctx.venue.account_address, state.account_value, ctx.dagster_run_id)
            ledger.snapshot(conn, now, "rebalance_start", ctx.rid, state.account_value, state.total_ntl_pos,
                            state.positions, ctx.target_weights)
        if halted:
            return finish(ctx, "refused", f"trading halted: {halted}", state, None)
        # The capital is frozen at the first run that *knew* it.
        capital = frozen_capital(ctx, row["capital_usd"], state)
        return trade_rounds(ctx, state, capital, ctx.target_weights, adv_usd, halted)


def load_targets(conn, window_ts) -> tuple[dict[str, float], dict[str, float]]:
    """(coin → weight, coin → adv_usd) of the targets computed for the window opening at `window_ts`."""
    df = conn.execute("SELECT coin, weight, adv_usd FROM target_weights WHERE ts = ?", [utc_naive(window_ts)]).df()
    return (dict(zip(df["coin"], df["weight"].astype(float))),
            {c: float(a) for c, a in zip(df["coin"], df["adv_usd"]) if pd.notna(a)})
