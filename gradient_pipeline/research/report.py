"""`gradient-pipeline research report`: every research figure the README and docs show, from one command.

Writes ``report.md`` (the tables, as pasted into the README) and ``report.json`` (the same numbers) to the
output directory, plus the sweep's ``sweep_results.csv``. Sections:

1. **Strategy backtests** (`core.backtest`, every weight change traded at modelled cost): the default
   configuration and the 24h / 1% band / smoothing 0.5 variant over ``[start, end)``, with gross Sharpe before
   and after funding and geometric and arithmetic annual returns; and the 24h / 1% / 0.5 variant's average
   gross exposure over 2025-01-01 → 2025-07-01.
2. **Capital scaling** (`research.live_backtest`, trading what live trades) at $5k, $50k, $500k and $5M, with
   ``risk.breach_action`` as configured and with ``scale``.
3. **Execution**: IOC vs passive-first (1h candles; only where the shared data has them) — implementation
   shortfall per unit traded and the default strategy's net result under each.
4. **Sweep**: the grid with every rebalance phase, the in-sample winner, its phase spread, IS/OOS rank
   correlations, deflated Sharpe ratio and PBO, and the plain verdict.
5. **Paper vs backtest tracking** (`research.tracking.run_tracking`, what `research track` runs with its
   defaults: 60 windows from 2025-06-01, 20 coins, IOC): the real rebalance loop on the local exchange against
   the as-live backtest, the difference's decomposition and the tracking error. Needs the freqtrade directory
   (``track_dir``); it does not replace the stored σ of the underperformance check (`research track` does).

``quick=True`` shortens every period (for tests and a first look); the README's figures come from the full run.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pandas as pd

from gradient_pipeline.core.backtest import run_backtest
from gradient_pipeline.core.costs import CostParams
from gradient_pipeline.core.strategy import StrategyParams, run_strategy
from gradient_pipeline.research import runner
from gradient_pipeline.research.live_backtest import load_hourly, run_as_live
from gradient_pipeline.timegrid import BAR, utc_naive

CAPITALS = (5_000.0, 50_000.0, 500_000.0, 5_000_000.0)


def _fmt(x, spec):
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def _strategy_backtest(panel, cfg, start, end) -> dict:
    p = runner.trim_to_data(panel.truncate(utc_naive(end) - BAR))
    run = run_strategy(p, StrategyParams.from_config(cfg), start=utc_naive(start))
    o = run.offset
    res = run_backtest(run.times, run.weights.weights, p.close[o:], p.funding[o:], run.signals.adv[o:],
                       CostParams.from_config(cfg), cfg.capital_usd)
    return res.metrics


def build_report(panel, cfg, out: Path, hourly_dir=None, start="2023-06-01", end="2025-07-27",
                 split="2024-10-01", exposure_window=("2025-01-01", "2025-07-01"), quick=False, workers=2,
                 log=print, capitals=CAPITALS, track_dir=None) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    panel = runner.trim_to_data(panel)
    end = min(pd.Timestamp(end), panel.times[-1] + BAR)
    if quick:
        start = max(pd.Timestamp(start), end - pd.Timedelta(days=120))
        split = start + (end - start) / 2
        exposure_window = (str(end - pd.Timedelta(days=60)), str(end))
    rep: dict = {"start": str(start), "end": str(end), "split": str(split), "quick": quick}
    md: list[str] = [f"# Research report ({start} → {end}{', QUICK' if quick else ''})", ""]
    t0 = time.perf_counter()

    # 1. strategy backtests
    variants = {
        "defaults (4h, no band, no smoothing)": cfg,
        "24h rebalance, 1% band, smoothing 0.5": cfg.model_copy(update={"rebalance_freq_hours": 24,
                                                                       "no_trade_band_pct": 1.0,
                                                                       "weight_smoothing": 0.5}),
    }
    rows = {}
    md += ["## Strategy backtests (every weight change traded; net of fees, slippage, funding)", "",
           "| configuration | Sharpe net | gross before funding | gross after funding | annual return net, geometric "
           "(arithmetic) | gross, geometric | max DD | turnover / bar | avg gross exposure | fees / slippage / funding "
           "(× capital) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, c in variants.items():
        m = _strategy_backtest(panel, c, start, end)
        rows[name] = m
        md.append(f"| {name} | **{m['sharpe']:.2f}** | {m['sharpe_gross']:.2f} | {m['sharpe_gross_after_funding']:.2f} | "
                  f"{m['annual_return']:+.1%} ({m['annual_return_arithmetic']:+.1%}) | {m['annual_return_gross']:+.1%} | "
                  f"{m['max_drawdown']:.1%} | {m['turnover_per_bar']:.3f} | {m['avg_gross_exposure']:.2f} | "
                  f"{m['fees_paid']:.2f} / {m['slippage_paid']:.2f} / {m['funding_paid']:.2f} |")
    rep["strategy_backtests"] = rows
    ew = _strategy_backtest(panel, variants["24h rebalance, 1% band, smoothing 0.5"], *exposure_window)
    nominal = 2 * cfg.side_gross_pct / 100
    rep["exposure_check"] = {"window": list(exposure_window), "avg_gross_exposure": ew["avg_gross_exposure"],
                             "nominal": nominal, "share_of_nominal": ew["avg_gross_exposure"] / nominal}
    md += ["", f"24h / 1% band / smoothing 0.5 over {exposure_window[0]} → {exposure_window[1]}: average gross "
               f"exposure {ew['avg_gross_exposure']:.3f} = {ew['avg_gross_exposure'] / nominal:.0%} of the nominal "
               f"{nominal:.2f}.", ""]
    log(f"[report] strategy backtests done ({time.perf_counter() - t0:.0f} s)")

    # 2. capital scaling, as live trades
    live_start = start
    md += ["## Capital scaling (as-live backtest: live planner, pre-trade risk, drawdown stop, capacity)", "",
           "| capital | breach action | Sharpe net | annual return (geom.) | max DD | halted at | refused rebalances | "
           "orders skipped < min | avg gross exposure | shortfall bp / traded | traded (× capital) |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    scaling = []
    actions = [cfg.risk.breach_action] + [a for a in ("scale",) if a != cfg.risk.breach_action]
    for action in actions:
        c = cfg.model_copy(update={"risk": cfg.risk.model_copy(update={"breach_action": action})})
        for cap in capitals:
            r = run_as_live(panel, c, live_start, end, capital_usd=cap)
            m = r.metrics
            scaling.append({"breach_action": action, **{k: v for k, v in m.items() if not isinstance(v, pd.Timestamp)}})
            md.append(f"| ${cap:,.0f} | {action} | {_fmt(m.get('sharpe'), '.2f')} | {_fmt(m.get('annual_return'), '+.1%')} | "
                      f"{_fmt(m.get('max_drawdown'), '.1%')} | {m['halted_at'] or '—'} | {m['refused_share']:.0%} | "
                      f"{m['skipped_small_share']:.0%} | {m['avg_gross_exposure']:.2f} | {_fmt(m['shortfall_bps'], '.1f')} | "
                      f"{m['traded_usd'] / cap:.1f} |")
            log(f"[report] as-live ${cap:,.0f} {action} done ({time.perf_counter() - t0:.0f} s)")
    rep["capital_scaling"] = scaling
    md += ["", "Drawdown stop at " f"{cfg.emergency_stop_drawdown_pct:g}% from the equity peak (checked at each bar close); "
           f"risk limits from the configuration (max order ${cfg.risk.max_order_notional_usd:,.0f}, "
           f"{cfg.risk.max_order_adv_pct:g}% of ADV); participation cap {cfg.backtest.participation_cap_pct:g}% of the "
           "bar's volume; impact = Y·σ_daily·sqrt(order/ADV) with Y = " f"{cfg.backtest.impact_y:g}.", ""]

    # 3. execution styles
    if hourly_dir is not None:
        h = load_hourly(hourly_dir, panel.coins)
        ex_start = max(pd.Timestamp(start), h.times[0].ceil("1D") + pd.Timedelta(days=1))
        no_stop = cfg.model_copy(update={"backtest": cfg.backtest.model_copy(update={"drawdown_stop": False})})
        md += [f"## Execution: IOC vs passive-first ({ex_start:%Y-%m-%d} → {end:%Y-%m-%d}, where 1h candles exist; "
               f"${cfg.capital_usd:,.0f}, drawdown stop off to compare the whole period)", "",
               "| style | shortfall bp per unit traded | maker share | Sharpe net | annual return (geom.) | "
               "fees + price cost (× capital) |", "|---|---|---|---|---|---|"]
        ex = {}
        for style in ("taker", "passive_first"):
            m = run_as_live(panel, no_stop, ex_start, end, style=style, hourly=h).metrics
            ex[style] = m
            md.append(f"| {'IOC (taker)' if style == 'taker' else 'passive-first'} | {m['shortfall_bps']:.2f} | "
                      f"{m['maker_share']:.0%} | {m['sharpe']:.2f} | {m['annual_return']:+.1%} | "
                      f"{m['fees_paid'] + m['slippage_paid']:.2f} |")
            log(f"[report] execution {style} done ({time.perf_counter() - t0:.0f} s)")
        rep["execution"] = ex
        md += ["", f"Passive-first: post-only at the touch (close ∓ {cfg.costs.slippage_base_bps:g} bp), filled at "
                   f"{cfg.costs.maker_fee_bps:g} bp maker fee only if a 1h candle within "
                   f"{cfg.backtest.passive_wait_hours} h trades through; the rest crosses as IOC at the last waited "
                   f"hour's close ({cfg.costs.taker_fee_bps:g} bp + spread + impact).", ""]

    # 4. sweep
    grid = runner.GRIDS["small" if quick else "full"]
    sw = runner.sweep(panel, cfg, grid, split, start=start, end=end, folds=4, workers=workers)
    res = sw.result
    res.table.to_csv(out / "sweep_results.csv", index=False)
    rep["sweep"] = {"statement": res.statement(), "overfit": res.overfit, "seconds": sw.seconds,
                    "winner": {k: (v.item() if hasattr(v, "item") else v) for k, v in res.winner().items()}}
    md += [f"## Sweep ({len(res.table)} configurations, split {pd.Timestamp(split):%Y-%m-%d})", "", "```",
           res.statement(), "```", ""]
    log(f"[report] sweep done ({time.perf_counter() - t0:.0f} s)")

    # 5. paper vs backtest tracking
    if track_dir is not None:
        from gradient_pipeline.research import tracking

        tr = tracking.run_tracking(track_dir, cfg, windows=6 if quick else 60, say=log)
        tr.windows.to_csv(out / "tracking_windows.csv", index=False)
        rep["tracking"] = tr.summary
        md += [f"## Paper vs backtest tracking ({tracking.title(tr.summary)})", ""] + tracking.markdown(tr.summary) + [""]
        log(f"[report] tracking done ({time.perf_counter() - t0:.0f} s)")
    else:
        md += ["## Paper vs backtest tracking: NOT RUN (it needs the recorded data as a freqtrade directory: "
               "`--source freqtrade --path DIR` or `data.freqtrade_dir`)", ""]
        log("[report] tracking NOT RUN: no freqtrade directory")
    (out / "report.md").write_text("\n".join(md) + "\n")
    (out / "report.json").write_text(json.dumps(rep, indent=2, default=str))
    return rep
