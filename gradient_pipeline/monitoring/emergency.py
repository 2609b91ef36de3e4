"""Emergency stop: halt trading, cancel every open order, close every position, report what is left.

Works without Dagster (the CLI `gradient-pipeline emergency-stop --flatten-all` and
`scripts/gradient_emergency_stop.sh` call `emergency_stop` directly; the Dagster `emergency_stop_job` is a thin
wrapper). Order of work, and why:

1. **halt first** (`halt_state` in the operations book), so no scheduled rebalance starts while we flatten and a
   running one stops before its next batch. The book never waits for a rebalance; if it cannot be written at all
   (database down), we do not wait before touching the exchange: we flatten, then retry the halt and flatten once
   more (anything a running rebalance opened meanwhile is closed too);
2. **cancel** every open order of the master account (resting orders could re-open exposure);
3. **flatten**: per round, read positions from the exchange (the truth), send one batch of reduce-only IOC orders
   closing each whole position, then re-read. The IOC limit starts at mid ± `execution.slippage_cap_bps` and
   doubles each round (capped at `MAX_FLATTEN_SLIPPAGE_BPS`): in an emergency getting out beats price. Reduce-only
   orders cannot overshoot, so a lost response is harmless: the next round re-reads positions. Every failed step
   (read, cancel, order batch) is retried with capped exponential backoff **until flat** — it never gives up; after
   `risk.flatten_deadline_s` it alerts "STILL OPEN: …" every `risk.flatten_still_open_alert_interval_s`, and
   Ctrl-C stops it with the open positions reported (`monitoring/flatten.py`).

In `dry_run` mode nothing is sent: the report lists what would have been closed (the halt is still set).
Client order ids are deterministic per (stop id, coin, round) and every order is written to the `orders` ledger
(rebalance_id = the stop id, e.g. ``emergency-20250301T120500``) before it is sent. Afterwards the fills are
ingested and the post-flatten account is snapshotted (`equity`/`positions`, source ``emergency_stop``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from gradient_pipeline.config import GradientConfig
from gradient_pipeline.venue.model import InstrumentSpec, OpenOrder, OrderRequest, client_order_id
from gradient_pipeline.venue.protocol import ExecutionVenue
from gradient_pipeline.monitoring import halt as halt_mod
from gradient_pipeline import book
from gradient_pipeline.book import ledger

BookUnavailable = Exception  # any failure to write the book (server down, disk full): the flatten goes on

log = logging.getLogger(__name__)

MAX_FLATTEN_SLIPPAGE_BPS = 1000.0  # 10%: beyond this an IOC is not an order but a donation
DUST_USD = 0.01


@dataclass
class FlattenReport:
    stop_id: str
    mode: str
    halted: bool = False
    halt_note: str = ""
    cancelled: int = 0
    cancel_errors: list[str] = field(default_factory=list)
    rounds: int = 0
    orders_sent: int = 0
    closed: dict[str, float] = field(default_factory=dict)  # coin -> size closed (signed, as held)
    remaining: dict[str, float] = field(default_factory=dict)  # coin -> signed size still open
    errors: list[str] = field(default_factory=list)
    account_value: float | None = None
    error_count: int = 0  # every failure seen (errors keeps the first few)
    still_open_alerts: int = 0  # "STILL OPEN" alerts raised after the deadline
    interrupted: bool = False  # stopped by Ctrl-C / run termination before flat
    positions_read: bool = False  # at least one account read succeeded (else `remaining` is unknown)

    @property
    def flat(self) -> bool:
        return not self.remaining and not self.interrupted

    def summary(self) -> str:
        sent = "would send (dry_run)" if self.mode == "dry_run" else "sent"
        parts = [
            f"{self.cancelled} open order(s) cancelled",
            f"{self.orders_sent} reduce-only IOC order(s) {sent} in {self.rounds} round(s)",
        ]
        if self.closed:
            parts.append("closed " + ", ".join(f"{c} {s:+g}" for c, s in sorted(self.closed.items())))
        if self.interrupted:
            left = ", ".join(f"{c} {s:+g}" for c, s in sorted(self.remaining.items())) or "nothing"
            parts.append("INTERRUPTED before flat; STILL OPEN (last read): "
                         + (left if self.positions_read else "unknown (no successful account read)"))
        elif self.flat:
            parts.append("account is FLAT" if self.mode != "dry_run" else "positions left open (dry_run)")
        else:
            parts.append("STILL OPEN: " + ", ".join(f"{c} {s:+g}" for c, s in sorted(self.remaining.items())))
        if self.errors:
            parts.append("errors: " + "; ".join(self.errors[:5]))
        parts.append("halt set" if self.halted else f"HALT NOT SET ({self.halt_note})")
        return "; ".join(parts)


def _cancel(trading: ExecutionVenue, order: OpenOrder) -> bool:
    """Cancel one open order by client id when it has one, else by exchange id."""
    if order.cloid:
        return trading.cancel_by_cloid(order.coin, order.cloid)
    return trading.cancel(order.coin, order.oid)


def cancel_all(trading: ExecutionVenue, report: FlattenReport) -> None:
    for order in trading.open_orders():
        try:
            if _cancel(trading, order):
                report.cancelled += 1
        except Exception as err:  # noqa: BLE001 - keep going: one stuck order must not stop the flatten
            report.cancel_errors.append(f"{order.coin} oid {order.oid}: {type(err).__name__}: {err}")


def flatten_orders(positions: dict, mids: dict[str, float], instruments: Mapping[str, InstrumentSpec],
                   slippage_bps: float, stop_id: str, round_no: int) -> list[OrderRequest]:
    """Reduce-only IOC orders closing every position in full (pure). A coin the venue lists no instrument for
    gets no order (the caller reports it as one it cannot price, and retries)."""
    out = []
    for coin, p in sorted(positions.items()):
        if p.szi == 0:
            continue
        is_buy = p.szi < 0
        mid = mids.get(coin) or (p.position_value / abs(p.szi) if p.position_value else None)
        spec = instruments.get(coin)
        if not mid or spec is None:
            continue
        factor = 1 + slippage_bps / 1e4 if is_buy else 1 - slippage_bps / 1e4
        px = spec.round_price(mid * factor, is_buy)
        cloid = client_order_id(stop_id, coin, "flatten", round_no)
        out.append(OrderRequest(coin, is_buy, abs(p.szi), px, True, cloid, "Ioc"))
    return out


def _record_orders(db_path: str | None, stop_id: str, orders: list[OrderRequest], mids: dict[str, float],
                   round_no: int, status: str) -> None:
    if not db_path:
        return
    try:
        with book.connect(db_path) as conn:
            ledger.record_orders(conn, [
                {"cloid": o.cloid, "rebalance_id": stop_id, "coin": o.coin, "leg": "close", "attempt": round_no,
                 "side": "buy" if o.is_buy else "sell", "sz": o.sz, "limit_px": o.limit_px,
                 "mid_px": mids.get(o.coin), "reduce_only": True, "tif": "Ioc",
                 "notional_usd": o.sz * (mids.get(o.coin) or o.limit_px), "status": status}
                for o in orders
            ])
    except BookUnavailable as err:
        log.warning("orders of %s round %d not written to the ledger: %s", stop_id, round_no, type(err).__name__)


def _record_outcomes(db_path: str | None, outcomes) -> None:
    if not db_path:
        return
    try:
        with book.connect(db_path) as conn:
            for o in outcomes:
                ledger.update_order(conn, o.cloid, o.kind, oid=o.oid, filled_sz=o.filled_sz, avg_px=o.avg_px,
                                    error=o.error)
    except BookUnavailable as err:
        log.warning("order outcomes not written to the ledger: %s", type(err).__name__)


def flatten_all(trading: ExecutionVenue, cfg: GradientConfig, report: FlattenReport, db_path: str | None = None,
                sleep: Callable[[float], None] = time.sleep, say: Callable[[str], None] | None = None,
                on_still_open: Callable[[FlattenReport, float], None] | None = None,
                try_halt: Callable[[], None] | None = None,
                clock: Callable[[], float] = time.monotonic) -> None:
    """Cancel and close everything, retrying until flat (see the module docstring and `monitoring/flatten.py`).
    `sleep`/`clock`: the backoff's waits and the clock its deadline and STILL OPEN interval are measured on."""
    from gradient_pipeline.monitoring.flatten import retry_until_flat

    retry_until_flat(trading, cfg, report, db_path, say=say, on_still_open=on_still_open, try_halt=try_halt,
                     sleep=sleep, clock=clock)


def _try_halt(db_path: str, reason: str, source: str, wait_s: float) -> tuple[bool, str]:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            with book.connect(db_path) as conn:
                halt_mod.set_halt(conn, reason, source)
            return True, ""
        except BookUnavailable as err:
            if time.monotonic() >= deadline:
                return False, f"operations book not writable for {wait_s:g}s ({type(err).__name__}: {str(err)[:200]})"
            time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))


def emergency_stop(
    cfg: GradientConfig,
    db_path: str,
    reason: str,
    source: str = "operator",
    trading: ExecutionVenue | None = None,
    stop_id: str | None = None,
    lock_wait_s: float = 5.0,
    second_lock_wait_s: float = 120.0,
    say: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> FlattenReport:
    """Halt, cancel, flatten until flat (see module docstring). Returns the report when flat, or when interrupted
    (Ctrl-C: `report.interrupted`, what is still open in `report.remaining`). `say` receives the progress lines;
    `sleep`/`clock` are the flatten's backoff waits and its deadline clock."""
    say = say or (lambda msg: log.warning("%s", msg))
    stop_id = stop_id or f"emergency-{halt_mod.utcnow():%Y%m%dT%H%M%S}"
    report = FlattenReport(stop_id=stop_id, mode=cfg.mode)
    report.halted, report.halt_note = _try_halt(db_path, reason, source, lock_wait_s)
    say(f"EMERGENCY STOP {stop_id} ({reason}): {'halt set' if report.halted else 'HALT NOT SET yet: ' + report.halt_note}")

    def retry_halt() -> None:
        report.halted, report.halt_note = _try_halt(db_path, reason, source, 0.5)
        if report.halted:
            say(f"{stop_id}: halt set")

    def still_open(rep: FlattenReport, elapsed: float) -> None:
        _alert_still_open(cfg, db_path, rep, elapsed)

    try:
        if trading is None:
            trading = _open_trading_retrying(cfg, report, say)
        flatten_all(trading, cfg, report, db_path if report.halted else None, say=say, on_still_open=still_open,
                    try_halt=retry_halt, sleep=sleep, clock=clock)
        if not report.halted:
            report.halted, report.halt_note = _try_halt(db_path, reason, source, second_lock_wait_s)
            if report.halted:  # a rebalance that held the lock may have traded meanwhile: flatten again
                again = FlattenReport(stop_id=stop_id + "-2", mode=cfg.mode, halted=True)
                flatten_all(trading, cfg, again, db_path, say=say, on_still_open=still_open, sleep=sleep, clock=clock)
                report.cancelled += again.cancelled
                report.rounds += again.rounds
                report.orders_sent += again.orders_sent
                report.errors += again.errors
                report.error_count += again.error_count
                report.remaining = again.remaining
    except KeyboardInterrupt:
        report.interrupted = True
        return report  # the caller prints what is still open; no bookkeeping reads that could hang again
    try:  # bookkeeping only: the flatten is done; a ledger problem must not hide the report
        _ingest_fills(trading, db_path)
        _snapshot(trading, db_path)
    except Exception as err:  # noqa: BLE001
        log.warning("ledger not updated after %s: %s: %s", stop_id, type(err).__name__, err)
    return report


def _open_trading_retrying(cfg: GradientConfig, report: FlattenReport, say: Callable[[str], None]) -> ExecutionVenue:
    """Connect (the client reads `meta` on construction) with the flatten's backoff; configuration errors (no key,
    mainnet not allowed) are not retried."""
    from gradient_pipeline.venue.errors import TradingConfigError
    from gradient_pipeline.monitoring.account import open_trading
    from gradient_pipeline.backoff import Backoff
    from gradient_pipeline.monitoring.flatten import halt_text

    policy = Backoff.from_config(cfg)
    failures = 0
    while True:
        try:
            return open_trading(cfg, signer=cfg.sends_orders)
        except TradingConfigError:
            raise
        except Exception as err:  # noqa: BLE001 - the exchange is unreachable: keep trying
            failures += 1
            report.error_count += 1
            delay = policy.delay(failures)
            say(f"{report.stop_id}: cannot reach the exchange ({type(err).__name__}: {str(err)[:200]}); "
                f"{halt_text(report)}; retry {failures} in {delay:.1f}s (Ctrl-C stops)")
            time.sleep(delay)


def _alert_still_open(cfg: GradientConfig, db_path: str, report: FlattenReport, elapsed_s: float) -> None:
    """Alert "STILL OPEN"; if the alert store is locked, deliver without recording (the alert matters more)."""
    from gradient_pipeline.monitoring.alerts import deliver_unrecorded, raise_alert
    from gradient_pipeline.monitoring.flatten import still_open_alert

    alert = still_open_alert(report, elapsed_s)
    log.error("%s", alert.title)
    try:
        with book.connect(db_path) as conn:
            raise_alert(conn, alert, cfg)
    except Exception as err:  # noqa: BLE001 - the book is unreachable: the alert matters more than its record
        log.error("STILL OPEN alert not recorded (%s); delivering without a record", type(err).__name__)
        deliver_unrecorded(alert, cfg)


def _snapshot(trading: ExecutionVenue, db_path: str) -> None:
    """Record the post-flatten account (source `emergency_stop`), so sensors and status see the flat book."""
    from gradient_pipeline.monitoring.equity import record_equity
    from gradient_pipeline.timegrid import from_ms

    state = trading.account_state()
    ts = from_ms(state.time_ms) if state.time_ms else trading.server_time()
    with book.connect(db_path) as conn:
        record_equity(conn, state, ts, "emergency_stop")


def _ingest_fills(trading: ExecutionVenue, db_path: str) -> None:
    fills = trading.fills_since()
    with book.connect(db_path) as conn:
        ledger.ingest_fills(conn, fills)
