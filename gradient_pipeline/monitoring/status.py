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
from gradient_pipeline.monitoring.equity import drawdown_level, drawdown_pct
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
        "drawdown:       " + ("unknown" if r.drawdown_pct is None else f"{r.drawdown_pct:.2f}% ({r.drawdown_level})"),
    ]
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
            hwm = high_water_mark(conn)
            report.hwm = hwm[0] if hwm else None
            if report.account_value is None:
                st = equity_state(conn)
                if st.account_value is not None:
                    report.account_value = st.account_value
                    report.account_value_source = f"ledger, {st.source} snapshot at {st.ts}"
                    report.positions = _ledger_positions(conn)
            report.last_rebalance = last_rebalance(conn)
            report.targets = _read_targets(conn)
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
        except Exception as err:  # noqa: BLE001 - status must still show the ledger
            report.notes.append(f"exchange not reachable ({type(err).__name__}: {err}); figures from the ledger")
    _read_ledger(report, cfg)
    if report.account_value is not None:
        mark = max(report.hwm or 0.0, report.account_value)
        report.hwm = mark
        report.drawdown_pct = drawdown_pct(report.account_value, mark)
        report.drawdown_level = drawdown_level(report.drawdown_pct, cfg)
    return report


def now_text() -> str:
    return f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"
