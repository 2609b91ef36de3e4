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
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from gradient_pipeline.config import GradientConfig
from gradient_pipeline.exchange.trading import (
    ACTION_REFUSED,
    AccountState,
    OrderOutcome,
    OrderRequest,
    TradingClient,
    make_cloid,
    round_price,
)
from gradient_pipeline import book
from gradient_pipeline.book import ledger
from gradient_pipeline.book.locks import RebalanceBusy, rebalance_lock
from gradient_pipeline.execution.dead_man import DeadManSwitch, dead_man_switch
from gradient_pipeline.execution.planner import (
    Plan,
    PlannedOrder,
    PlanParams,
    PlanValidationError,
    plan_orders,
    validate_plan,
)
from gradient_pipeline.execution.risk_gate import pre_trade_risk, trading_halt
from gradient_pipeline.timegrid import utc_naive

log = logging.getLogger(__name__)


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


def rebalance_id_for(window_ts, mode: str, account: str) -> str:
    """Deterministic id of the rebalance for one target window, mode and account (resumable)."""
    t = utc_naive(window_ts)
    acct = hashlib.sha256(account.lower().encode()).hexdigest()[:8]
    return f"{mode}-{t:%Y%m%dT%H%M}-{acct}"


RESOLVE_TRIES = 3  # lookup/cancel attempts for a resting post-only order before leaving it to the next run


def known_capital(value) -> float | None:
    """A capital figure that can size a rebalance: finite and positive; None (unknown) otherwise — NULL read back
    as NaN included."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def never_reached(out: OrderOutcome) -> bool:
    """A rejection that is the transport's, not the exchange's verdict on the order: refused before processing
    (HTTP 429 after retries, 5xx/connection failure known not to have executed)."""
    if out.kind != "rejected" or out.oid is not None:
        return False
    err = (out.error or "").lower()
    return err.startswith("http 429") or "rate limit" in err or "429" in err[:40] or "unavailable" in err


LOOKUP_TO_STATUS = {"open": "resting", "filled": "filled", "canceled": "canceled", "unknown": "not_placed"}


def _status_from_lookup(exchange_status: str, filled_sz: float) -> str:
    if exchange_status in LOOKUP_TO_STATUS and not (exchange_status == "canceled" and filled_sz > 0):
        return LOOKUP_TO_STATUS[exchange_status]
    if filled_sz > 0:
        return "partial"
    if exchange_status.endswith("Rejected"):
        return "rejected"
    return "canceled"  # marginCanceled, reduceOnlyCanceled, … : gone without (more) fills


class Rebalancer:
    """Runs one rebalance for a target window. Construct per run; `run()` does everything and never raises for
    trading trouble (it records `failed`), only for `RebalanceBusy` and programming errors after recording."""

    _dead_man: DeadManSwitch = DeadManSwitch.off()  # the venue's scheduleCancel, armed per order round (dead_man.py)

    def __init__(
        self,
        cfg: GradientConfig,
        client: TradingClient,
        db_path: str | os.PathLike,
        dagster_run_id: str | None = None,
        on_event: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.cfg = cfg
        self.ex = cfg.execution
        self.client = client
        self.db_path = str(db_path)
        self.mode = cfg.mode
        self.network = cfg.network
        self.dagster_run_id = dagster_run_id
        self._emit = on_event or (lambda msg: log.info(msg))
        self._sleep = sleep
        self.params = PlanParams(self.ex.min_order_usd, self.ex.min_order_buffer_usd, self.ex.slippage_cap_bps)
        if self.mode != "dry_run" and not client.can_sign:
            raise ValueError(f"mode {self.mode} sends orders but the trading client has no key")

    # ------------------------------------------------------------------ helpers
    def _db(self):
        return book.connect(self.db_path)

    def _say(self, msg: str) -> None:
        self._emit(msg)

    def _positions(self, state: AccountState) -> dict[str, float]:
        return {c: p.szi for c, p in state.positions.items()}

    def _ingest_fills(self) -> int:
        if self.mode == "dry_run":
            return 0
        fills = self.client.user_fills()
        with self._db() as conn:
            new = ledger.ingest_fills(conn, fills)
            ledger.refresh_order_fills(conn)
        return new

    def _resolve(self, cloid: str, coin: str) -> str:
        """Find out what happened to an order by client id; cancel it if it still rests. Returns the ledger status."""
        look = self.client.order_status(cloid)
        if look.is_open and self.client.can_sign:
            self.client.cancel_by_cloid(coin, cloid)
            look = self.client.order_status(cloid)
        filled = (look.orig_sz - look.remaining_sz) if (look.orig_sz is not None and look.remaining_sz is not None) else 0.0
        status = _status_from_lookup(look.status, filled)
        with self._db() as conn:
            ledger.update_order(conn, cloid, status, oid=look.oid,
                                error=None if look.exists else "not found by orderStatus: never placed")
        return status

    def _resolve_unresolved(self, rebalance_id: str) -> int:
        with self._db() as conn:
            pending = ledger.unresolved_orders(conn, rebalance_id)
        for row in pending.itertuples():
            status = self._resolve(row.cloid, row.coin)
            self._say(f"resolved {row.coin} {row.cloid} (was {row.status}) -> {status}")
        return len(pending)

    def _resolve_interrupted(self, rid: str) -> None:
        """Orders left unresolved by an older rebalance (a crashed run whose window has passed)."""
        account = self.client.account_address
        with self._db() as conn:
            stale = ledger.interrupted(conn, self.mode, account, rid)
        for row in stale.itertuples():
            status = self._resolve(row.cloid, row.coin)
            self._say(f"resolved {row.coin} {row.cloid} of interrupted {row.rebalance_id} -> {status}")
        with self._db() as conn:
            for old in ledger.supersede(conn, self.mode, account, rid):
                self._say(f"{old} was left running by a dead process; closed as failed (superseded by {rid})")

    # ------------------------------------------------------------------ the run
    def run(self, window_ts, targets: dict[str, float], adv_usd: dict[str, float] | None = None) -> RebalanceResult:
        window_ts = utc_naive(window_ts)
        rid = rebalance_id_for(window_ts, self.mode, self.client.account_address)
        banner = f"rebalance {rid}: mode={self.mode} network={self.network} url={self.client.base_url}"
        if self.network == "mainnet":
            banner = "*** MAINNET: REAL MONEY *** " + banner
            log.warning(banner)
        self._say(banner)
        with rebalance_lock(self.db_path):
            with self._db() as conn:
                ledger.ensure(conn)
                existing = ledger.get_rebalance(conn, rid)
            if existing is not None and existing["status"] in ("complete", "partial"):
                self._say(f"{rid} already {existing['status']}; nothing to do")
                return RebalanceResult(rid, existing["status"], existing["reason"], self.mode, self.network,
                                       account_value=existing["capital_usd"], resumed=True)
            try:
                with dead_man_switch(self.client, self.ex.dead_man_s, self._say) as self._dead_man:
                    result = self._run_locked(rid, window_ts, targets, adv_usd or {}, resumed=existing is not None)
                result.dead_man_armed = self._dead_man.ever_armed
                result.dead_man_failures = list(self._dead_man.failures)
                return result
            except Exception as err:
                msg = f"{type(err).__name__}: {err}"[:500]
                log.exception("rebalance %s failed", rid)
                with self._db() as conn:
                    if ledger.get_rebalance(conn, rid) is None:
                        ledger.start_rebalance(conn, rid, window_ts, self.mode, self.network,
                                               self.client.account_address, None, self.dagster_run_id)
                    ledger.finish_rebalance(conn, rid, "failed", msg)
                return RebalanceResult(rid, "failed", msg, self.mode, self.network, resumed=existing is not None)

    def _finish(self, rid, status, reason, state: AccountState | None, plan: Plan | None, resumed, mids=None):
        if getattr(self, "_risk_note", None):  # a scaled book says so in the ledger
            reason = f"{reason}; {self._risk_note}" if reason else self._risk_note
        residual = {}
        if state is not None:
            now = self.client.server_time()
            with self._db() as conn:
                ledger.snapshot(conn, now, "rebalance_end", rid, state.account_value, state.total_ntl_pos,
                                state.positions, self._target_weights)
        if plan is not None and status == "partial" and state is not None and mids:
            residual = {c: v for c, v in plan.residual_usd(self._positions(state), mids).items() if v > 0}
        with self._db() as conn:
            ledger.finish_rebalance(conn, rid, status, reason)
            row = ledger.get_rebalance(conn, rid)
        result = RebalanceResult(rid, status, reason, self.mode, self.network, orders_sent=int(row["n_orders"]),
                                 fills=int(row["n_fills"]), account_value=state.account_value if state else None,
                                 residual_usd=residual, resumed=resumed)
        self._say(result.summary())
        return result

    def _run_locked(self, rid, window_ts, targets, adv_usd, resumed) -> RebalanceResult:
        self._target_weights = dict(targets)
        self._risk_note = None
        self._unreached: list[tuple[str, str]] = []  # (coin, error) of orders that never reached the exchange
        with self._db() as conn:
            halted = trading_halt(conn)
        # Reconcile first: whatever an earlier process sent is resolved before anything new can go out.
        try:
            if resumed and self.mode != "dry_run":
                n = self._resolve_unresolved(rid)
                if n:
                    self._say(f"resumed {rid}: {n} order(s) of an interrupted run resolved by client id")
            if self.mode != "dry_run":
                self._resolve_interrupted(rid)
            self._ingest_fills()
            state = self.client.account_state()
            now = self.client.server_time()
        except Exception as err:
            if not halted:
                raise
            # halted: nothing would be sent anyway, so an unreadable exchange does not make this a failure
            with self._db() as conn:
                if ledger.get_rebalance(conn, rid) is None:
                    ledger.start_rebalance(conn, rid, window_ts, self.mode, self.network,
                                           self.client.account_address, None, self.dagster_run_id)
            return self._finish(rid, "refused", f"trading halted: {halted} (nothing sent; the account could not "
                                f"be read: {type(err).__name__})", None, None, resumed)
        with self._db() as conn:
            row = ledger.start_rebalance(conn, rid, window_ts, self.mode, self.network, self.client.account_address,
                                         state.account_value, self.dagster_run_id)
            ledger.snapshot(conn, now, "rebalance_start", rid, state.account_value, state.total_ntl_pos,
                            state.positions, targets)
        if halted:
            return self._finish(rid, "refused", f"trading halted: {halted}", state, None, resumed)
        # The capital is frozen at the first run that *knew* it. A failed read before it was known stored NULL
        # (read back as NaN), which must never count as known: take the live value now and store it.
        capital = known_capital(row["capital_usd"])
        if capital is None:
            capital = known_capital(state.account_value)
            if capital is None:
                raise ValueError(f"account value unknown or not positive ({state.account_value!r}); the next run "
                                 "retries this window")
            with self._db() as conn:
                ledger.set_capital(conn, rid, capital)

        scale = 1.0
        plan: Plan | None = None
        mids: dict[str, float] = {}
        with self._db() as conn:
            first_attempt = ledger.max_attempt(conn, rid) + 1
        attempt = first_attempt
        while True:
            mids = self.client.all_mids()
            positions = self._positions(state)
            scaled_targets = {c: w * scale for c, w in targets.items()}
            try:
                plan = plan_orders(scaled_targets, positions, mids, self.client.sz_decimals, capital, self.params)
            except PlanValidationError as err:
                return self._finish(rid, "refused" if attempt == first_attempt else "failed", str(err), state, None,
                                    resumed)
            problems = validate_plan(plan, positions, self.client.sz_decimals, self.params)
            delisted = sorted({o.coin for o in plan.orders if o.coin in self.client.delisted and not o.reduce_only})
            problems += [f"{c}: delisted (only reduce-only orders allowed)" for c in delisted]
            if problems:
                sent_before = attempt > first_attempt
                return self._finish(rid, "failed" if sent_before else "refused",
                                    "order plan failed validation, nothing sent in this round: " + "; ".join(problems),
                                    state, plan, resumed)
            if not plan.orders:
                rounds = attempt - first_attempt
                note = (f"at target after {rounds} order round(s)" if rounds else "already at target, nothing sent")
                if plan.skipped:
                    note += f"; {len(plan.skipped)} delta(s) below the minimum left alone"
                return self._finish(rid, "complete", note, state, plan, resumed, mids)
            if attempt - first_attempt >= self.ex.max_attempts:  # a budget per run: a re-run trades again
                if self._unreached:  # not a market outcome: the orders never got there; the window is retried
                    coin, err = self._unreached[-1]
                    return self._finish(rid, "failed", f"{len(self._unreached)} order(s) never reached the exchange "
                                        f"(last: {coin}: {err}); {len(plan.orders)} order(s) left after "
                                        f"{self.ex.max_attempts} attempts; the next run retries this window",
                                        state, plan, resumed, mids)
                return self._finish(rid, "partial", f"{len(plan.orders)} order(s) left after "
                                    f"{self.ex.max_attempts} attempts", state, plan, resumed, mids)
            decision = pre_trade_risk(plan, state, mids, adv_usd, halted is not None, self.cfg)
            if not decision.approved:
                return self._finish(rid, "refused", decision.summary(), state, plan, resumed)
            if decision.scaled:
                if scale != 1.0:
                    return self._finish(rid, "refused", "risk scaled the book twice: " + decision.summary(),
                                        state, plan, resumed)
                scale = decision.scale
                self._risk_note = decision.summary()
                self._say(self._risk_note)
                continue
            if self.mode == "dry_run":
                self._record(rid, attempt, plan.orders, "Ioc", status="dry_run")
                for o in plan.orders:  # what would have gone out; `gradient-pipeline trades` lists them too
                    self._say(f"dry run, NOT sent: {o.side} {o.sz:g} {o.coin} limit {o.limit_px:g} "
                              f"(${o.notional_usd:,.0f}, {o.leg}{', reduce-only' if o.reduce_only else ''})")
                return self._finish(rid, "complete", f"dry run: {len(plan.orders)} order(s) planned and checked, "
                                    "none sent", state, plan, resumed, mids)

            if attempt == first_attempt:
                self._set_leverage(plan, state)
            passive = self.ex.style == "passive_first" and attempt == 0
            refused = self._send_round(rid, attempt, plan.orders, passive)
            attempt += 1
            if refused:
                with self._db() as conn:  # orders of batches never sent are not on the exchange
                    ledger.mark_not_placed(conn, rid)
                self._ingest_fills()
                return self._finish(rid, "failed", refused, self.client.account_state(), plan, resumed, mids)
            self._ingest_fills()
            with self._db() as conn:
                stuck = ledger.unresolved_orders(conn, rid)
            if len(stuck):
                return self._finish(rid, "failed", f"{len(stuck)} order(s) with unknown fate (e.g. "
                                    f"{stuck.iloc[0]['coin']} {stuck.iloc[0]['cloid']}); the next run resolves them "
                                    "by client id before sending", self.client.account_state(), plan, resumed, mids)
            state = self.client.account_state()

    # ------------------------------------------------------------------ sending
    def _set_leverage(self, plan: Plan, state: AccountState) -> None:
        for coin in sorted({o.coin for o in plan.orders if not o.reduce_only and o.coin not in state.positions}):
            lev = max(1, min(self.ex.leverage, self.client.max_leverage.get(coin, self.ex.leverage)))
            try:
                self.client.update_leverage(coin, lev)
            except Exception as err:  # noqa: BLE001 - leverage is a preference; margin checks still apply
                log.warning("updateLeverage %s x%d failed: %s", coin, lev, err)

    def _record(self, rid, attempt, orders: list[PlannedOrder], tif: str, status: str,
                prices: dict[str, float] | None = None) -> list[OrderRequest]:
        reqs, rows = [], []
        for o in orders:
            cloid = make_cloid(rid, o.coin, o.leg, attempt).to_raw()
            px = (prices or {}).get(o.coin + o.leg, o.limit_px)
            reqs.append(OrderRequest(o.coin, o.is_buy, o.sz, px, o.reduce_only, cloid, tif))
            rows.append({"cloid": cloid, "rebalance_id": rid, "coin": o.coin, "leg": o.leg, "attempt": attempt,
                         "side": o.side, "sz": o.sz, "limit_px": px, "mid_px": o.mid, "reduce_only": o.reduce_only,
                         "tif": tif, "notional_usd": o.notional_usd, "status": status})
        with self._db() as conn:
            ledger.record_orders(conn, rows)
            if status != "dry_run":
                ledger.set_attempts(conn, rid, attempt + 1)
        return reqs

    def _apply(self, outcomes: list[OrderOutcome], coins: dict[str, str]) -> None:
        with self._db() as conn:
            for out in outcomes:
                status = {"filled": "filled", "partial": "partial", "resting": "resting", "rejected": "rejected",
                          "ambiguous": "ambiguous"}[out.kind]
                ledger.update_order(conn, out.cloid, status, oid=out.oid, filled_sz=out.filled_sz or None,
                                    avg_px=out.avg_px, error=out.error)
        for out in outcomes:
            if out.kind == "ambiguous":
                self._say(f"{coins[out.cloid]} {out.cloid}: ambiguous ({out.error}); looking it up by client id")
                try:
                    status = self._resolve(out.cloid, coins[out.cloid])
                    self._say(f"{coins[out.cloid]} {out.cloid}: resolved -> {status}")
                    if status == "not_placed":
                        self._unreached.append((coins[out.cloid], out.error or "no answer"))
                except Exception as err:  # noqa: BLE001 - stays 'ambiguous'; the run ends failed, next run resolves
                    log.warning("lookup of %s failed: %s", out.cloid, err)
            elif out.kind == "rejected":
                self._say(f"{coins[out.cloid]} {out.cloid}: rejected: {out.error}")
                if never_reached(out):
                    self._unreached.append((coins[out.cloid], out.error or "refused unprocessed"))

    def _send_round(self, rid: str, attempt: int, orders: list[PlannedOrder], passive: bool) -> str | None:
        """Send one round; returns a whole-action refusal message (bad signer, nonce, …) if there was one."""
        self._dead_man.arm()  # resting orders of this round die on the venue if this process dies
        prices = None
        tif = "Ioc"
        if passive:
            tif, prices = "Alo", {}
            for o in orders:
                bid, ask = self.client.l2_touch(o.coin)
                touch = bid if o.is_buy else ask
                szd = self.client.sz_decimals[o.coin]
                # Post at the touch on our own side (never crossing); fall back to the IOC limit if the book is empty.
                prices[o.coin + o.leg] = round_price(touch, szd, not o.is_buy) if touch else o.limit_px
        reqs = self._record(rid, attempt, orders, tif, status="sending", prices=prices)
        coins = {r.cloid: r.coin for r in reqs}
        self._say(f"attempt {attempt}: sending {len(reqs)} {tif} order(s) in batches of {self.ex.batch_size}")
        refused = None
        for i in range(0, len(reqs), self.ex.batch_size):
            with self._db() as conn:  # a halt set meanwhile by another process stops sending before the next batch
                halted = trading_halt(conn)
            if halted:
                refused = f"trading halted during the rebalance, remaining orders not sent: {halted}"
                break
            batch = reqs[i : i + self.ex.batch_size]
            outcomes = self.client.bulk_orders(batch)
            self._apply(outcomes, coins)
            refused = refused or next((o.error for o in outcomes if (o.error or "").startswith(ACTION_REFUSED)), None)
            if refused:
                break  # the exchange refuses this signer/account: more batches would only be refused too
        if passive:
            deadline = time.monotonic() + self.ex.passive_timeout_s
            while time.monotonic() < deadline:
                with self._db() as conn:
                    ours = {int(o) for o in ledger.unresolved_orders(conn, rid)["oid"].dropna()}
                if not ours & {int(o["oid"]) for o in self.client.open_orders()}:
                    break
                self._sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            with self._db() as conn:
                resting = ledger.unresolved_orders(conn, rid)
            for row in resting.itertuples():
                self._resolve_retrying(row.cloid, row.coin)  # cancels what still rests; IOC rounds take the residual
        return refused

    def _resolve_retrying(self, cloid: str, coin: str) -> str | None:
        """`_resolve` (look up, cancel if resting) with a few backoff retries. If it still fails the order stays
        unresolved in the ledger: the round ends the run `failed` and the next run cancels it before sending."""
        from gradient_pipeline.monitoring.flatten import Backoff

        policy = Backoff(self.cfg.rate_limit.backoff_base_s, self.cfg.rate_limit.backoff_max_s)
        for failures in range(1, RESOLVE_TRIES + 1):
            try:
                return self._resolve(cloid, coin)
            except Exception as err:  # noqa: BLE001 - retried, then left for the next run (never raised mid-round)
                self._say(f"{coin} {cloid}: lookup/cancel failed ({type(err).__name__}: {str(err)[:200]}); "
                          f"try {failures}/{RESOLVE_TRIES}")
                if failures < RESOLVE_TRIES:
                    self._sleep(policy.delay(failures))
        return None


def load_targets(conn, window_ts) -> tuple[dict[str, float], dict[str, float]]:
    """(coin → weight, coin → adv_usd) of the targets computed for the window opening at `window_ts`."""
    df = conn.execute("SELECT coin, weight, adv_usd FROM target_weights WHERE ts = ?", [utc_naive(window_ts)]).df()
    return (dict(zip(df["coin"], df["weight"].astype(float))),
            {c: float(a) for c, a in zip(df["coin"], df["adv_usd"]) if pd.notna(a)})
