"""Monitoring jobs: the monitor snapshot, drawdown warning, emergency stop, alert delivery, daily summary.

The monitor snapshot, the drawdown warning, alert delivery and the emergency stop touch only the operations book
(gradient_pipeline/book), never DuckDB, so they carry no `gradient/duckdb` tag and never queue behind a backfill or
a rebalance. Jobs that still open the DuckDB file (the daily summary and the performance report read the stored
backtest) keep `gradient/duckdb: writer` (one DuckDB process at a time, dagster.yaml).
"""


import datetime as dt

import dagster as dg
from pydantic import Field

from gradient_pipeline.defs.monitoring.assets import DASHBOARD_ASSETS, performance_report
from gradient_pipeline.defs.resources import GradientResource
from gradient_pipeline import runtags

WRITER = runtags.DUCKDB_WRITER

monitor_job = dg.define_asset_job(
    "monitor_job",
    selection=dg.AssetSelection.assets(*DASHBOARD_ASSETS),
    tags={runtags.KIND: "monitor"},
    description="Equity snapshot from the exchange + dashboard assets (positions, exposure, PnL/drawdown, rebalances).",
)

performance_report_job = dg.define_asset_job(
    "performance_report_job",
    selection=dg.AssetSelection.assets(performance_report),
    tags=WRITER,
    description="Render the performance report (equity, drawdown, exposure, live vs backtest).",
)


# ------------------------------------------------------------------------------------------- drawdown warning
class DrawdownConfig(dg.Config):
    drawdown_pct: float = Field(description="drawdown from the high-water mark, percent")
    account_value_usd: float
    hwm_usd: float


@dg.op(tags={"kind": "apprise"})
def send_drawdown_warning(context: dg.OpExecutionContext, config: DrawdownConfig, gradient: GradientResource) -> None:
    """Alert the drawdown warning (once until the drawdown falls back below the warning level)."""
    from gradient_pipeline.monitoring import messages
    from gradient_pipeline.monitoring.alerts import raise_alert

    cfg = gradient.config
    alert = messages.drawdown_warning(config.drawdown_pct, config.account_value_usd, config.hwm_usd,
                                      cfg.risk.drawdown_warn_pct, cfg.emergency_stop_drawdown_pct)
    with gradient.book() as conn:
        d = raise_alert(conn, alert, cfg)
    context.log.warning(f"drawdown {config.drawdown_pct:.2f}%: alert {d.status}")


@dg.job(description="Send the drawdown warning alert (launched by drawdown_sensor).")
def drawdown_warning_job():
    send_drawdown_warning()


# ------------------------------------------------------------------------------------------- emergency stop
@dg.op(tags={"kind": "hyperliquid"})
def emergency_flatten(context: dg.OpExecutionContext, config: DrawdownConfig, gradient: GradientResource) -> None:
    """Halt trading, cancel every open order, close every position with reduce-only IOC orders, alert."""
    from gradient_pipeline.monitoring import messages
    from gradient_pipeline.monitoring.alerts import raise_alert
    from gradient_pipeline.monitoring.emergency import emergency_stop

    cfg = gradient.config
    reason = (f"drawdown {config.drawdown_pct:.2f}% ≥ emergency_stop_drawdown_pct {cfg.emergency_stop_drawdown_pct:g}% "
              f"(account ${config.account_value_usd:,.2f}, high-water ${config.hwm_usd:,.2f})")
    context.log.error(f"EMERGENCY STOP: {reason}")
    # retries until flat (alerting STILL OPEN after risk.flatten_deadline_s); progress goes to the run's log
    report = emergency_stop(cfg, gradient.db_path, reason, source="drawdown_sensor", say=context.log.warning)
    context.log.warning(report.summary())
    with gradient.book() as conn:
        d = raise_alert(conn, messages.drawdown_stop(config.drawdown_pct, config.account_value_usd, config.hwm_usd,
                                                     cfg.emergency_stop_drawdown_pct, report.summary()), cfg)
    context.log_event(dg.AssetObservation(
        dg.AssetKey("equity_snapshot"),
        metadata={"emergency_stop": report.stop_id, "flat": report.flat, "halted": report.halted,
                  "orders_sent": report.orders_sent, "alert": d.status},
    ))
    if cfg.sends_orders and not report.flat:
        raise dg.Failure(f"emergency stop left positions open: {report.remaining}", allow_retries=False)
    if not report.halted:
        raise dg.Failure(f"emergency stop could not set the halt: {report.halt_note}", allow_retries=False)


@dg.job(tags={runtags.KIND: "emergency"},
        description="Emergency stop: halt, cancel, flatten (launched by drawdown_sensor at the stop level).")
def emergency_stop_job():
    emergency_flatten()


# ------------------------------------------------------------------------------------------- generic alert
class AlertConfig(dg.Config):
    job_name: str
    run_id: str
    error: str = ""
    partition: str = ""


@dg.op(tags={"kind": "apprise"})
def send_run_failure_alert(context: dg.OpExecutionContext, config: AlertConfig, gradient: GradientResource) -> None:
    """Alert one failed run (once per run id)."""
    from gradient_pipeline.monitoring import messages
    from gradient_pipeline.monitoring.alerts import raise_alert

    cfg = gradient.config
    alert = messages.run_failure(config.job_name, config.run_id, config.error, config.partition or None, cfg.mode)
    with gradient.book() as conn:
        d = raise_alert(conn, alert, cfg)
    context.log.info(f"run failure alert for {config.run_id}: {d.status}")


@dg.job(description="Deliver a run-failure alert (launched by run_failure_alert_sensor).")
def send_alert_job():
    send_run_failure_alert()


# ------------------------------------------------------------------------------------------- daily summary
class DailyConfig(dg.Config):
    day: str = Field("", description="UTC day YYYY-MM-DD to summarise; empty: yesterday by the exchange clock")


@dg.op(tags={"kind": "apprise"})
def send_daily_summary(context: dg.OpExecutionContext, config: DailyConfig, gradient: GradientResource) -> None:
    """Daily summary (PnL, exposure, fills, fees, funding) and the live-vs-backtest check."""
    from gradient_pipeline.monitoring.daily import run_daily

    cfg = gradient.config
    day = dt.date.fromisoformat(config.day) if config.day else None
    for d in run_daily(cfg, gradient.db_path, day):
        context.log.info(f"alert {d.key}: {d.status}")


@dg.job(tags=WRITER, description="Daily summary alert and live-vs-backtest underperformance check.")
def daily_summary_job():
    send_daily_summary()


# ------------------------------------------------------------------------------------------- stop / resume from the UI
class ManualStopConfig(dg.Config):
    reason: str = Field("emergency stop from the Dagster UI", description="recorded with the halt and in the alert")


@dg.op(tags={"kind": "hyperliquid"})
def manual_emergency_flatten(context: dg.OpExecutionContext, config: ManualStopConfig,
                             gradient: GradientResource) -> None:
    """The operator's emergency stop, like `gradient-pipeline emergency-stop --flatten-all`: set the persistent
    halt (history source `ui`), cancel every open order, close every position with reduce-only IOC orders, alert.
    Fails loudly when positions are left open or the halt could not be set."""
    from gradient_pipeline.monitoring import messages
    from gradient_pipeline.monitoring.alerts import raise_alert
    from gradient_pipeline.monitoring.emergency import emergency_stop

    cfg = gradient.config
    reason = config.reason.strip() or ManualStopConfig().reason
    context.log.error(f"EMERGENCY STOP from the UI on {cfg.network} ({cfg.mode}): {reason}")
    report = emergency_stop(cfg, gradient.db_path, reason, source="ui")
    context.log.warning(report.summary())
    with gradient.book() as conn:
        d = raise_alert(conn, messages.emergency_stop_manual(reason, report.summary()), cfg)
    context.log_event(dg.AssetObservation(
        dg.AssetKey("equity_snapshot"),
        metadata={"emergency_stop": report.stop_id, "source": "ui", "reason": reason, "flat": report.flat,
                  "halted": report.halted, "orders_sent": report.orders_sent, "alert": d.status},
    ))
    if cfg.sends_orders and not report.flat:
        raise dg.Failure(f"emergency stop left positions open: {report.remaining} — close them in the exchange UI "
                         "now", allow_retries=False)
    if not report.halted:
        raise dg.Failure(f"emergency stop could not set the halt: {report.halt_note}", allow_retries=False)


@dg.job(tags={runtags.KIND: "emergency"},
        description="Manual emergency stop from the UI: halt trading, cancel every open order, close every position "
        "(reduce-only IOC), alert. Needs no config (optional: reason). Same as `gradient-pipeline emergency-stop "
        "--flatten-all`; recorded in the halt history with source `ui`. Undo with resume_trading_job.")
def manual_emergency_stop_job():
    manual_emergency_flatten()


RESUME_WORD = "RESUME"


class ResumeConfig(dg.Config):
    confirm: str = Field("", description=f'type {RESUME_WORD} (exactly, capitals) to clear the halt; anything else '
                         "fails the run and changes nothing")
    reason: str = Field("resumed from the Dagster UI", description="recorded in the halt history")


@dg.op
def resume_trading(context: dg.OpExecutionContext, config: ResumeConfig, gradient: GradientResource) -> None:
    """Clear the halt (history source `ui`) and re-base the drawdown high-water mark to the current account value,
    like `gradient-pipeline resume`; only with `confirm: RESUME`."""
    from gradient_pipeline.monitoring.alerts import clear_alert
    from gradient_pipeline.monitoring.equity import rebase_high_water_mark
    from gradient_pipeline.monitoring.halt import clear_halt, halt_status
    from gradient_pipeline.monitoring.status import gather_status

    if config.confirm != RESUME_WORD:
        raise dg.Failure(f"NOT resumed: the confirm field is {config.confirm!r}; type {RESUME_WORD} exactly to clear "
                         "the halt. Trading stays as it was.", allow_retries=False)
    cfg = gradient.config
    report = gather_status(cfg, gradient.db_path, live=True)
    if report.halt is None:
        raise dg.Failure(f"NOT resumed: cannot read the halt state ({'; '.join(report.notes)})", allow_retries=False)
    if not report.halt.halted:
        context.log.info("trading is not halted; nothing to resume")
        return
    if report.account_value is None:
        raise dg.Failure("NOT resumed: account value unknown (exchange unreachable and no snapshot in the book)",
                         allow_retries=False)
    reason = config.reason.strip() or ResumeConfig().reason
    with gradient.book() as conn:
        if halt_status(conn).halted:
            clear_halt(conn, reason, "ui")
        rebase_high_water_mark(conn, report.account_value, reason)
        for key in ("emergency_stop", "drawdown_warn"):
            clear_alert(conn, key)
    context.log.warning(f"resumed on {cfg.network} ({cfg.mode}): halt cleared ({reason}); high-water mark re-based "
                        f"to ${report.account_value:,.2f}")


@dg.job(tags={runtags.KIND: "resume"},
        description=f"Resume trading after a stop, from the UI: set confirm to {RESUME_WORD} (exactly) or the run "
        "fails and nothing changes. Clears the halt (source `ui`) and re-bases the drawdown high-water mark to the "
        "current account value, like `gradient-pipeline resume`.")
def resume_trading_job():
    resume_trading()
