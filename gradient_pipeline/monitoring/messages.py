"""The text of every alert (pure functions: figures in, `Alert` out). Each says what happened and what to do.

Kinds and keys (see `alerts.py` for the once-only rules):

=================  ==============================  ==========  =========================================
kind               key                             severity    raised by
=================  ==============================  ==========  =========================================
run_failure        run_failure:<run id>            failure     run_failure_sensor → send_alert_job
drawdown_warning   drawdown_warn                   warning     drawdown sensor (cleared below the level)
drawdown_stop      emergency_stop                  failure     drawdown emergency stop (cleared by resume)
emergency_stop     emergency_stop                  failure     `emergency-stop` command (cleared by resume)
daily_summary      daily_summary:<YYYY-MM-DD>      info        daily summary schedule
slippage           slippage:<rebalance id>         warning     rebalance review after each rebalance
position_drift     position_drift                  warning     equity snapshot (cleared when back in band)
underperformance   underperformance                warning     performance check (cleared when back)
=================  ==============================  ==========  =========================================
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from gradient_pipeline.monitoring.alerts import Alert


def _usd(x: float) -> str:
    return f"-${abs(x):,.2f}" if x < 0 else f"${x:,.2f}"


def run_failure(job_name: str, run_id: str, error: str, partition: str | None = None, mode: str = "") -> Alert:
    where = f" (partition {partition})" if partition else ""
    body = (
        f"Dagster run {run_id} of job {job_name}{where} failed{f' in {mode} mode' if mode else ''}.\n"
        f"Error: {error.strip()[:1200]}\n"
        "What to do: open the run in the Dagster UI, read the failed step's logs, fix the cause and re-run. "
        "A failed rebalance sends no further orders; the next scheduled run reconciles from the exchange."
    )
    return Alert("run_failure", f"run_failure:{run_id}", "failure", f"[gradient] run failed: {job_name}{where}", body)


def drawdown_warning(drawdown_pct: float, equity: float, hwm: float, warn_pct: float, stop_pct: float) -> Alert:
    body = (
        f"Drawdown {drawdown_pct:.2f}% from the high-water mark (account value {_usd(equity)}, "
        f"high-water mark {_usd(hwm)}) has crossed the warning level {warn_pct:g}%.\n"
        f"At {stop_pct:g}% the emergency stop flattens every position and halts trading.\n"
        "What to do: check positions and recent fills (`gradient-pipeline status`); if something is wrong, "
        "stop now with `gradient-pipeline emergency-stop --flatten-all`."
    )
    return Alert("drawdown_warning", "drawdown_warn", "warning",
                 f"[gradient] drawdown warning: {drawdown_pct:.1f}% (warn at {warn_pct:g}%)", body)


def drawdown_stop(drawdown_pct: float, equity: float, hwm: float, stop_pct: float, flatten_summary: str) -> Alert:
    body = (
        f"EMERGENCY STOP. Drawdown {drawdown_pct:.2f}% from the high-water mark (account value {_usd(equity)}, "
        f"high-water mark {_usd(hwm)}) reached the stop level {stop_pct:g}%.\n"
        f"Flatten: {flatten_summary}\n"
        "Trading is HALTED: scheduled rebalances end as refused until an operator runs `gradient-pipeline resume`.\n"
        "What to do: confirm the account is flat (`gradient-pipeline status`), find the cause, then resume."
    )
    return Alert("drawdown_stop", "emergency_stop", "failure",
                 f"[gradient] EMERGENCY STOP at {drawdown_pct:.1f}% drawdown — trading halted", body)


def emergency_stop_manual(reason: str, flatten_summary: str) -> Alert:
    body = (
        f"EMERGENCY STOP requested: {reason}.\nFlatten: {flatten_summary}\n"
        "Trading is HALTED until `gradient-pipeline resume`."
    )
    return Alert("emergency_stop", "emergency_stop", "failure", "[gradient] EMERGENCY STOP — trading halted", body)


def daily_summary(
    day: dt.date,
    pnl_usd: float,
    equity_usd: float,
    long_usd: float,
    short_usd: float,
    n_fills: int,
    fees_usd: float,
    funding_usd: float,
    n_rebalances: int,
    drawdown_pct: float,
    halted: bool,
    mode: str,
    notes: Iterable[str] = (),
) -> Alert:
    """``notes``: lines the operator must see every day (e.g. the underperformance check's σ fallback)."""
    gross, net = long_usd + short_usd, long_usd - short_usd
    body = (
        f"Daily summary for {day:%Y-%m-%d} (UTC), {mode} mode{' — HALTED' if halted else ''}.\n"
        f"PnL {_usd(pnl_usd)}; account value {_usd(equity_usd)}; drawdown {drawdown_pct:.2f}%.\n"
        f"Exposure: long {_usd(long_usd)}, short {_usd(short_usd)}, gross {_usd(gross)}, net {_usd(net)}.\n"
        f"Fills {n_fills}; fees {_usd(fees_usd)}; funding {_usd(funding_usd)} (+ received); rebalances {n_rebalances}."
    )
    for note in notes:
        body += f"\n{note}"
    return Alert("daily_summary", f"daily_summary:{day:%Y-%m-%d}", "info",
                 f"[gradient] daily summary {day:%Y-%m-%d}: PnL {_usd(pnl_usd)}", body)


def slippage(rebalance_id: str, rows: Iterable[Mapping], threshold_pct: float) -> Alert:
    """rows: coin, side, px (fill), ref_px (mid when planned), slippage_pct (adverse, positive = worse)."""
    rows = list(rows)
    lines = [
        f"  {r['coin']} {r['side']}: filled at {r['px']:g} vs reference {r['ref_px']:g} → {r['slippage_pct']:.2f}%"
        for r in rows
    ]
    body = (
        f"Rebalance {rebalance_id}: {len(rows)} fill(s) slipped more than {threshold_pct:g}% against the mid "
        "at planning time:\n" + "\n".join(lines) + "\n"
        "What to do: check those coins' books and ADV; consider a tighter execution.slippage_cap_bps, "
        "passive_first execution, or a higher liquidity threshold."
    )
    return Alert("slippage", f"slippage:{rebalance_id}", "warning",
                 f"[gradient] slippage above {threshold_pct:g}% on {len(rows)} fill(s)", body)


def position_drift(rows: Iterable[Mapping], threshold_pct: float, since: str) -> Alert:
    """rows: coin, target_usd, actual_usd, drift_pct (of account value)."""
    rows = list(rows)
    lines = [
        f"  {r['coin']}: target {_usd(r['target_usd'])}, held {_usd(r['actual_usd'])} → drift {r['drift_pct']:.2f}%"
        for r in rows
    ]
    body = (
        f"Positions drifted more than {threshold_pct:g}% of account value from the targets of the last "
        f"rebalance ({since}):\n" + "\n".join(lines) + "\n"
        "What to do: a large move since the rebalance is expected to drift; a position that nobody traded "
        "(manual trade, liquidation, partial fill left behind) is not — compare with the exchange UI."
    )
    return Alert("position_drift", "position_drift", "warning",
                 f"[gradient] position drift on {len(rows)} coin(s)", body)


def underperformance(period: str, live_return_pct: float, expected_pct: float, sd_pct: float, z: float,
                     sigma_limit: float, sigma_note: str = "") -> Alert:
    body = (
        f"Live performance over {period} is {live_return_pct:.2f}% against the backtest's {expected_pct:.2f}% for the "
        f"same period (one standard deviation {sd_pct:.2f}%): z = {z:.2f}, below −{sigma_limit:g}σ.\n"
        + (f"{sigma_note}\n" if sigma_note else "") +
        "What to do: compare fills and fees with the backtest's cost model (slippage alerts, maker/taker mix) and "
        "check that live targets match the backtest's weights for the same windows."
    )
    return Alert("underperformance", "underperformance", "warning",
                 f"[gradient] live {z:.1f}σ below backtest over {period}", body)
