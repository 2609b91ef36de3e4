"""`gradient-pipeline status`: one screen with everything an operator checks first.

Mode and network, halt state, account value, high-water mark and drawdown, positions next to the last rebalance's
targets (weight, target USD, still to trade), exposure and the last
rebalance. Live figures come from the exchange (master address, read-only: no key needed); the ledger and halt
state come from the operations book, whose reads never wait for a writer (a rebalance or backfill may be
running), and status works while the Dagster daemon is down.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field

from gradient_pipeline.config import GradientConfig
from gradient_pipeline.monitoring.halt import HaltStatus


@dataclass
class PositionRow:
    coin: str
    szi: float
    value_usd: float  # signed: + long, − short
    unrealized_pnl_usd: float
    entry_px: float | None


@dataclass
class TargetBook:
    """The target weights the newest complete/partial rebalance traded to, and the capital it was sized from."""
    rebalance_id: str
    capital_usd: float | None
    weights: dict[str, float]  # coin → signed weight

    def notional(self, coin: str) -> float | None:
        return None if self.capital_usd is None else self.weights.get(coin, 0.0) * self.capital_usd


@dataclass
class StatusReport:
    mode: str
    network: str
    base_url: str
    sends_orders: bool
    db_path: str
    halt: HaltStatus | None = None
    account_value: float | None = None
    account_value_source: str = ""  # exchange | ledger <ts>
    hwm: float | None = None
    drawdown_pct: float | None = None
    drawdown_level: str = ""
    positions: list[PositionRow] = field(default_factory=list)
    last_rebalance: dict | None = None
    targets: TargetBook | None = None
    notes: list[str] = field(default_factory=list)
    drawdown_reason: str = ""  # the drawdown decision's own words (monitoring/drawdown.py)
    last_check: dict | None = None  # the drawdown sensor's last evaluation (heartbeat), if any
    undelivered_alerts: list[dict] = field(default_factory=list)  # destinations still missing an alert (by label)

    @property
    def exit_code(self) -> int:
        """0 ok, 1 warning, 2 halted or at the stop level, 3 the drawdown cannot be evaluated (blind)."""
        return exit_code_for(self.drawdown_level, self.halt.halted if self.halt else None)

    @property
    def exposure(self) -> dict[str, float]:
        longs = sum(p.value_usd for p in self.positions if p.value_usd > 0)
        shorts = -sum(p.value_usd for p in self.positions if p.value_usd < 0)
        out = {"long_usd": longs, "short_usd": shorts, "gross_usd": longs + shorts, "net_usd": longs - shorts}
        out["leverage"] = (longs + shorts) / self.account_value if self.account_value else 0.0
        return out

    def as_dict(self) -> dict:
        d = asdict(self)
        d["halt"] = asdict(self.halt) if self.halt else None
        d["exposure"] = self.exposure
        d["targets"] = asdict(self.targets) if self.targets else None
        return d


EXIT_OK, EXIT_WARN, EXIT_STOP, EXIT_BLIND = 0, 1, 2, 3


def exit_code_for(level: str, halted: bool | None) -> int:
    """`status` exit code from the drawdown decision's level (`ok`, `warn`, `stop`, `pending_stop`,
    `cannot_evaluate`) and the halt. Blind beats everything: an operator must look."""
    if level == "cannot_evaluate":
        return EXIT_BLIND
    if halted or level in ("stop", "pending_stop"):
        return EXIT_STOP
    if level == "warn":
        return EXIT_WARN
    return EXIT_OK


def _usd(x: float | None) -> str:
    if x is None:
        return "unknown"
    return f"-${abs(x):,.2f}" if x < 0 else f"${x:,.2f}"


def render(r: StatusReport) -> str:
    """The text `gradient-pipeline status` prints."""
    lines = [
        f"mode:           {r.mode} ({'sends orders' if r.sends_orders else 'never sends orders'})",
        f"network:        {r.network} ({r.base_url})",
        f"halt:           {r.halt.describe() if r.halt else 'unknown (ledger unavailable)'}",
        f"account value:  {_usd(r.account_value)}" + (f"  [{r.account_value_source}]" if r.account_value_source else ""),
        f"high-water:     {_usd(r.hwm)}",
        "drawdown:       " + ("unknown" if r.drawdown_pct is None else f"{r.drawdown_pct:.2f}% ({r.drawdown_level})")
        + (f" — {r.drawdown_reason}" if r.drawdown_reason else ""),
    ]
    if r.last_check:
        lines.append(f"drawdown check: last evaluated {r.last_check['evaluated_at']} UTC: {r.last_check['level']}"
                     f" ({r.last_check['reason']})")
    else:
        lines.append("drawdown check: never evaluated by the sensor (is the Dagster daemon running?)")
    e = r.exposure
    lines.append(
        f"exposure:       long {_usd(e['long_usd'])}, short {_usd(e['short_usd'])}, gross {_usd(e['gross_usd'])}, "
        f"net {_usd(e['net_usd'])}, leverage {e['leverage']:.2f}x"
    )
    lines.append(f"positions:      {len(r.positions)}")
    lines += _positions_vs_targets(r)
    lr = r.last_rebalance
    if lr:
        when = lr.get("finished_at") or lr.get("started_at")
        lines.append(
            f"last rebalance: {lr['rebalance_id']} window {lr.get('window_ts')} status {lr['status']}"
            + (f" at {when}" if when is not None else "")
            + (f" — {lr['reason']}" if lr.get("reason") else "")
        )
    else:
        lines.append("last rebalance: none recorded")
    for d in r.undelivered_alerts:
        when = (f"next try {d['next_attempt_at']:%Y-%m-%d %H:%M:%S} UTC" if d.get("next_attempt_at") is not None
                else "no more tries")
        lines.append(f"ALERT NOT DELIVERED: {d['alert_key']} to {d['destination']}: {d['status']} after "
                     f"{d['attempts']} attempt(s), {when}" + (f" — {d['last_error']}" if d.get("last_error") else ""))
    for note in r.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def _positions_vs_targets(r: StatusReport) -> list[str]:
    """Held positions next to the last rebalance's targets (weight of the account value; target USD = weight ×
    the capital that rebalance was sized from); coins targeted but not held show size 0."""
    t = r.targets
    held = {p.coin: p for p in r.positions}
    coins = sorted(set(held) | set(t.weights if t else {}),
                   key=lambda c: -max(abs(held[c].value_usd) if c in held else 0.0,
                                      abs(t.notional(c) or 0.0) if t else 0.0))
    if not coins:
        return []
    out = []
    if t:
        cap = f"sized from {_usd(t.capital_usd)}" if t.capital_usd is not None else "capital unknown"
        out.append(f"targets:        rebalance {t.rebalance_id} ({len(t.weights)} coins, {cap})")
    else:
        out.append("targets:        none recorded (no complete rebalance in the book)")
    out.append(f"  {'coin':<10} {'size':>14} {'value':>14} {'weight':>8} {'target':>8} {'target $':>14} "
               f"{'to trade $':>12} {'uPnL':>12}")
    av = r.account_value
    for c in coins:
        p = held.get(c)
        value = p.value_usd if p else 0.0
        weight = f"{value / av:+.3f}" if av else "?"
        tw = f"{t.weights.get(c, 0.0):+.3f}" if t else "—"
        tn = t.notional(c) if t else None
        gap = _usd(tn - value) if tn is not None else "—"
        out.append(f"  {c:<10} {(p.szi if p else 0.0):>14g} {_usd(value):>14} {weight:>8} {tw:>8} "
                   f"{_usd(tn) if tn is not None else '—':>14} {gap:>12} "
                   f"{_usd(p.unrealized_pnl_usd) if p else '—':>12}")
    return out


def _read_targets(conn) -> TargetBook | None:
    from gradient_pipeline.book.ledger import last_rebalance_targets
    from gradient_pipeline.book.trades import targets_of

    last = last_rebalance_targets(conn)
    if last is None:
        return None
    capital, weights = targets_of(conn, last[0])
    return TargetBook(last[0], capital, weights)


def _read_ledger(report: StatusReport, cfg: GradientConfig) -> None:
    from gradient_pipeline import book
    from gradient_pipeline.book.ledger import last_rebalance
    from gradient_pipeline.monitoring.equity import equity_state, high_water_mark
    from gradient_pipeline.monitoring.halt import halt_status

    try:
        with book.connect(report.db_path) as conn:
            report.halt = halt_status(conn)
            st = equity_state(conn)  # the mark as the drawdown check reads it: the table and every snapshot since
            hwm = high_water_mark(conn)
            report.hwm = st.hwm if st.hwm is not None else (hwm[0] if hwm else None)
            if report.account_value is None:
                if st.account_value is not None:
                    report.account_value = st.account_value
                    report.account_value_source = f"ledger, {st.source} snapshot at {st.ts}"
                    report.positions = _ledger_positions(conn)
            report.last_rebalance = last_rebalance(conn)
            report.targets = _read_targets(conn)
            from gradient_pipeline.monitoring.alerts import undelivered

            report.undelivered_alerts = undelivered(conn, cfg)
    except Exception as err:  # noqa: BLE001 - status must still show what it has, and say what it could not read
        report.notes.append(f"the operations book could not be read ({type(err).__name__}: {str(err)[:200]}); "
                            "halt state and history not shown")


def _ledger_positions(conn) -> list[PositionRow]:
    from gradient_pipeline.monitoring.equity import latest_positions

    df = latest_positions(conn)
    return [PositionRow(r.coin, r.szi, r.position_value_usd if r.szi > 0 else -r.position_value_usd,
                        r.unrealized_pnl_usd, r.entry_px) for r in df.itertuples()]


def gather_status(cfg: GradientConfig, db_path: str, live: bool = True, trading=None) -> StatusReport:
    """Collect the status; `live=False` (or an unreachable exchange) falls back to the ledger's last snapshot."""
    report = StatusReport(cfg.mode, cfg.network, cfg.base_url, cfg.sends_orders, str(db_path))
    live_read_ok = False
    if live:
        try:
            if trading is None:
                from gradient_pipeline.monitoring.account import open_trading

                trading = open_trading(cfg, signer=False)
            state = trading.account_state()
            report.account_value = state.account_value
            report.account_value_source = f"exchange, account {trading.account_address}"
            report.positions = [
                PositionRow(c, p.szi, p.position_value if p.szi > 0 else -p.position_value, p.unrealized_pnl,
                            p.entry_px)
                for c, p in state.positions.items()
            ]
            live_read_ok = True
        except Exception as err:  # noqa: BLE001 - status must still show the ledger
            report.notes.append(f"exchange not reachable ({type(err).__name__}: {err}); figures from the ledger")
    _read_ledger(report, cfg)
    _decide(report, cfg, live_read_ok)
    return report


def _decide(report: StatusReport, cfg: GradientConfig, live_read_ok: bool) -> None:
    """The drawdown level from the same decision function as the sensor (monitoring/drawdown.py), with the
    sensor's high-water mark and breaching streak from its heartbeat. Nothing is recorded."""
    from gradient_pipeline.monitoring.drawdown import DrawdownLimits, EquityReading, evaluate
    from gradient_pipeline.monitoring.drawdown_check import account_address
    from gradient_pipeline.monitoring.heartbeat import read_heartbeat

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    try:
        hb = read_heartbeat(report.db_path)
    except ValueError as err:
        hb = None
        report.notes.append(str(err))
    report.last_check = hb.as_dict() if hb else None
    try:
        configured = account_address() is not None
    except Exception:  # noqa: BLE001 - an invalid key: no account to read
        configured = False
    if cfg.mode == "dry_run" and not configured:
        report.drawdown_level = "not evaluated (dry_run, no account)"
        return
    reading = None
    if live_read_ok and report.account_value is not None:
        reading = EquityReading(report.account_value, now)
    elif hb is not None and hb.equity is not None and hb.equity_at is not None:
        reading = EquityReading(hb.equity, hb.equity_at)  # offline / unreachable: the check's last reading, aged
        report.notes.append(f"drawdown from the drawdown check's last equity reading at {hb.equity_at} UTC")
    marks = [x for x in (report.hwm, hb.hwm if hb else None) if x is not None]
    # the book counts as available while a writer locks it if the check's heartbeat has the mark (as the sensor)
    no_file = any(n.startswith("no DuckDB file") for n in report.notes)
    book_ok = not no_file and (report.halt is not None or hb is not None)
    d = evaluate(reading, max(marks) if marks else None, hb.breaching_ticks - 1 if hb and hb.breaching_ticks else 0,
                 DrawdownLimits.from_config(cfg), now, account_configured=configured, book_available=book_ok,
                 last_success_at=(now if live_read_ok else (hb.last_success_at if hb else None)),
                 read_error=None if live_read_ok else "exchange not reached by status")
    report.hwm = d.hwm if d.hwm is not None else report.hwm
    report.drawdown_pct = d.drawdown_pct
    report.drawdown_level = "pending_stop" if d.pending_stop else d.level
    report.drawdown_reason = d.reason
    if d.drawdown_pct is None and not live_read_ok and report.account_value is not None and marks:
        # offline (e.g. `status --demo`): say what the book's last snapshot implies, clearly not a live judgement
        from gradient_pipeline.monitoring.drawdown import drawdown_pct

        report.drawdown_pct = drawdown_pct(report.account_value, max(marks))
        report.drawdown_reason = f"from the book's last snapshot, not live ({d.reason})"

