"""`gradient-pipeline research track`: paper trading vs the backtest over the same 4h windows, and why they differ.

One run does two things over N consecutive 4h windows of real recorded data:

* **paper**: the real rebalance loop — `execution.runner.Rebalancer.run`, the code `rebalance_job` runs, through
  `venue.registry.open_venue` and `hyperliquid-python-sdk` — against the project's local exchange started
  in-process on a free port (`localexchange.server.run_in_background`) on the same data. Its replay clock is
  stepped window by window: set to the window's close (when the live schedule would trade it), one rebalance,
  next window. With ``execution="passive"`` the runner's post-only wait is a step of the replay clock by
  ``backtest.passive_wait_hours`` (the runner's ``sleep`` hook), so a resting order fills when a later 1h candle
  trades through it, exactly as the backtest assumes. The targets are the strategy's weights for each window
  (`core.strategy.run_strategy`, the functions the `target_weights` asset calls), with the ADV the pre-trade
  risk check uses. The run has its own temporary operations book (SQLite) and a fresh funded account whose key
  lives only in this process's environment for the run.
* **backtest**: the as-live backtest (`research.live_backtest.run_as_live`: the live planner, the live pre-trade
  risk check, the cost model) over the same bars with the same capital, the same costs — the exchange is started
  with the configuration's fees and a half-spread of ``costs.slippage_base_bps`` — and the exchange's lot sizes.
  Its drawdown stop is off: the rebalance loop alone has none (the stop is the monitor's job).

Per window k (decision at the close c_k of bar k, held to the next decision) the P&L is the change of the
account value between two decisions (paper: `clearinghouseState`; backtest: its equity), and

    difference = paper − backtest = fees + slippage + timing + skipped_small + rounding + funding
                                    + sizing + unfilled + residual

each term being (paper's effect − backtest's effect) on the window's P&L in USD:

* ``fees``: fees paid (−).
* ``slippage``: price paid beyond the mid at the moment each order was sent (paper: fill vs the order's
  ``mid_px``; backtest: half-spread + impact). Price-tick rounding of the fill is moved to ``rounding``.
* ``timing``: the mid at sending vs the bar close the backtest decides at (paper: e.g. the passive remainder sent
  an hour later; backtest: its passive drift), plus the exchange's mark vs the bar close at the two decisions.
* ``skipped_small``: the P&L of the position changes not made because an order was below the exchange minimum
  (+ buffer), or a target was dust (the planner's rule, applied by both sides to their own inputs).
* ``rounding``: lot-size rounding of the target size (held over the window) and tick rounding of fill prices
  (the paper fill vs the same level of the local exchange's book before rounding).
* ``funding``: funding paid (−) (paper: the exchange's ``userFunding``; backtest: the recorded rates).
* ``sizing``: the two sides size from their own account value (equity base) — the difference compounds.
* ``unfilled``: what the plan intended but the position did not reach (partial fills, risk refusal or scaling,
  the backtest's participation cap; passive: the runner re-plans the IOC remainder at the mid an hour later,
  while the backtest crosses the original size).
* ``residual``: whatever is left (should be cents; it is reported, not hidden).

The tracking error is the standard deviation of the per-window difference (USD and bp of the starting
capital), annualised with √(windows per year). `write_latest` stores the summary as ``tracking_error.json``
beside the DuckDB file (the data directory), where the daily underperformance check reads its σ
(`monitoring.performance.underperformance_sigma`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gradient_pipeline.timegrid import BAR, utc_naive
from gradient_pipeline.venue.model import InstrumentSpec

DEFAULT_COINS = ("AAVE", "ADA", "ARB", "AVAX", "BNB", "BTC", "CRV", "DOGE", "ENA", "ETH", "LINK", "LTC", "ONDO",
                 "SEI", "SOL", "SUI", "UNI", "WIF", "XRP", "kPEPE")
DEFAULT_START = "2025-06-01 00:00"
COMPONENTS = ("fees", "slippage", "timing", "skipped_small", "rounding", "funding", "sizing", "unfilled",
              "residual")
BARS_PER_YEAR = 365.25 * 6
ENV_KEYS = ("GRADIENT_PRIVATE_KEY", "GRADIENT_ACCOUNT_ADDRESS", "GRADIENT_BOOK_URL")
EXECUTIONS = {"ioc": "taker", "passive": "passive_first"}


@dataclass
class TrackingResult:
    windows: pd.DataFrame  # one row per window (see `COMPONENTS` and the module doc)
    summary: dict


def latest_path(cfg) -> Path:
    """Where the latest tracking summary lives: ``tracking_error.json`` beside the configured DuckDB file (one
    definition: `Config.tracking_error_path`, read by `monitoring.performance.underperformance_sigma`)."""
    return cfg.tracking_error_path


def write_latest(cfg, summary: dict) -> Path:
    """Store the summary where the underperformance check finds it (atomic replace)."""
    path = latest_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary, indent=2, default=str))
    tmp.replace(path)
    return path


# ------------------------------------------------------------------------------------------- decomposition


def intent_split(targets: dict[str, float], before: dict[str, float], mids: dict[str, float],
                 szd: Mapping[str, InstrumentSpec], equity: float, params) -> dict[str, tuple[float, float, float, float]]:
    """Per coin, the position one side *meant* to hold after a decision, split (base units) as
    ``(ideal, rounding, skipped, intended)``: ideal = weight × equity / mid; rounding = lot-size rounding of that;
    skipped = what the minimum-order rules leave out (a dust target set flat, a delta below minimum + buffer, a
    flip's skipped opening leg); intended = ideal + rounding + skipped = position + Σ the planned orders (the
    same `execution.planner.plan_orders` call the runner and the as-live backtest make)."""
    from gradient_pipeline.execution.planner import plan_orders

    plan = plan_orders(targets, before, mids, szd, equity, params)
    out = {}
    for c in sorted(set(targets) | {c for c, s in before.items() if s}):
        ideal = targets.get(c, 0.0) * equity / mids[c]
        rounded = szd[c].round_size(ideal)
        intended = before.get(c, 0.0) + sum(o.signed_sz for o in plan.orders if o.coin == c)
        out[c] = (ideal, rounded - ideal, intended - rounded, intended)
    return out


def _holding(split: dict, after: dict[str, float], dc: dict[str, float]) -> dict[str, float]:
    """P&L over the window (USD) of each part of the held position: Σ units × (c_{k+1} − c_k)."""
    ideal = sum(v[0] * dc.get(c, 0.0) for c, v in split.items())
    rnd = sum(v[1] * dc.get(c, 0.0) for c, v in split.items())
    skip = sum(v[2] * dc.get(c, 0.0) for c, v in split.items())
    coins = set(split) | set(after)
    unfilled = sum((after.get(c, 0.0) - (split[c][3] if c in split else 0.0)) * dc.get(c, 0.0) for c in coins)
    return {"ideal": ideal, "rounding": rnd, "skipped_small": skip, "unfilled": unfilled}


def _unrounded_level(px: float, mid: float, away: bool, half_bps: float, step_bps: float) -> float:
    """The local exchange's book level a fill came from, before tick rounding: mid × (1 ± (half + j·step) bp);
    ``away`` = the level is above the mid (a taker buy lifts asks; a maker sell rests on the ask side)."""
    bps = (px / mid - 1.0) * 1e4 * (1 if away else -1)
    j = max(0, round((bps - half_bps) / step_bps))
    return mid * (1 + (half_bps + j * step_bps) / 1e4 * (1 if away else -1))


# ------------------------------------------------------------------------------------------------- the run


@contextlib.contextmanager
def _env(values: dict[str, str | None]):
    saved = {k: os.environ.get(k) for k in ENV_KEYS}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _paper_config(cfg, base_url: str, workdir: Path, style: str):
    # passive_timeout_s is wall time; the wait itself is a replay-clock step (see run_tracking's step_clock)
    ex = cfg.execution.model_copy(update={"style": style, "passive_timeout_s": 0.3})
    rl = cfg.rate_limit.model_copy(update={"budget_per_minute": 1_000_000, "shared_ledger": False})
    bt = cfg.backtest.model_copy(update={"drawdown_stop": False})
    return cfg.model_copy(update={"mode": "paper", "exchange_base_url": base_url, "allow_mainnet": False,
                                  "duckdb_path": str(workdir / "track.duckdb"), "execution": ex, "rate_limit": rl,
                                  "backtest": bt})


def run_tracking(data_dir, cfg, start=DEFAULT_START, windows: int = 60, coins=None, execution: str = "ioc",
                 exchange_fees_bps: tuple[float, float] | None = None, say=print) -> TrackingResult:
    """Paper (real rebalance loop on the local exchange) vs the as-live backtest over ``windows`` consecutive 4h
    windows from ``start`` (the first window's open time); see the module doc. ``exchange_fees_bps`` = (taker,
    maker) charged by the exchange instead of the configuration's (to show a mismatch: the backtest keeps the
    configured fees)."""
    import eth_account

    from gradient_pipeline import book
    from gradient_pipeline.book.ledger import table_frame
    from gradient_pipeline.core.strategy import StrategyParams, run_strategy
    from gradient_pipeline.execution.planner import PlanParams
    from gradient_pipeline.execution.runner import Rebalancer
    from gradient_pipeline.venue.registry import open_venue
    from gradient_pipeline.localexchange.server import run_in_background
    from gradient_pipeline.research.data import load_panel_freqtrade
    from gradient_pipeline.research.live_backtest import load_hourly, run_as_live
    from gradient_pipeline.timegrid import to_ms

    if execution not in EXECUTIONS:
        raise ValueError(f"execution {execution!r}: expected one of {sorted(EXECUTIONS)}")
    if windows < 2:
        raise ValueError(f"windows must be >= 2, got {windows}")
    style = EXECUTIONS[execution]
    coins = sorted(coins or DEFAULT_COINS)
    t0 = utc_naive(start)
    if t0 != t0.floor("4h"):
        raise ValueError(f"start {start}: must be on the 4h grid (00:00, 04:00, … UTC)")
    opens = [t0 + k * BAR for k in range(windows + 1)]  # window k trades at opens[k] + 4h; the last only marks
    clock0 = time.perf_counter()

    panel = load_panel_freqtrade(data_dir, end=opens[-1] + BAR, coins=coins)
    if panel.times[-1] < opens[-1]:
        raise ValueError(f"{data_dir}: data end at {panel.times[-1] + BAR}; {windows} windows from {t0} need bars "
                         f"up to {opens[-1] + BAR}")
    run = run_strategy(panel, StrategyParams.from_config(cfg), start=t0)
    rows = run.times.get_indexer(pd.DatetimeIndex(opens))
    if (rows < 0).any():
        raise ValueError(f"bars missing from the strategy run at {[str(t) for t, r in zip(opens, rows) if r < 0][:3]}")
    o = run.offset
    W, adv = run.weights.weights, run.signals.adv[o:]
    close = panel.close[o:]
    col = {c: i for i, c in enumerate(panel.coins)}

    taker, maker = exchange_fees_bps or (cfg.costs.taker_fee_bps, cfg.costs.maker_fee_bps)
    # the per-IP weight budget is not under test here: lifted on both sides, so a window costs its work only
    handle = run_in_background(data_dir, opens[0] + BAR, coins=coins, rate_limit_per_minute=1e9,
                               spread_bps=2 * cfg.costs.slippage_base_bps,
                               engine_config={"taker_fee": taker / 1e4, "maker_fee": maker / 1e4})
    workdir = Path(tempfile.mkdtemp(prefix="gradient-track-"))
    capital = float(cfg.capital_usd)
    pcfg = _paper_config(cfg, handle.base_url, workdir, style)
    db = f"sqlite:///{workdir / 'track.book.sqlite'}"  # never the operator's book, whatever GRADIENT_BOOK_URL says
    acct = eth_account.Account.create()  # a throw-away paper key: only in this process's environment, never shown
    params = PlanParams(pcfg.execution.min_order_usd, pcfg.execution.min_order_buffer_usd,
                        pcfg.execution.slippage_cap_bps)
    bookcfg = handle.market.book_config
    half_bps, step_bps = bookcfg.spread_bps / 2, bookcfg.level_step_bps
    wait = pd.Timedelta(hours=pcfg.backtest.passive_wait_hours)
    paper: list[dict] = []
    statuses: list[str] = []
    try:
        handle.fund(acct.address, capital)
        with _env({"GRADIENT_PRIVATE_KEY": acct.key.hex(), "GRADIENT_ACCOUNT_ADDRESS": acct.address,
                   "GRADIENT_BOOK_URL": None}):
            client = open_venue(pcfg)
            szd_ex = dict(client.instruments())
            for k, ts in enumerate(opens):
                decision = ts + BAR
                handle.set_time(decision)
                state = client.account_state()
                mids = client.all_mids()
                rec = {"equity": float(state.account_value), "mids": mids,
                       "before": {c: p.szi for c, p in state.positions.items()}}
                paper.append(rec)
                if k == len(opens) - 1:
                    break
                r = rows[k]
                targets = {panel.coins[i]: float(W[r, i]) for i in np.flatnonzero(W[r])}
                advs = {c: float(adv[r, col[c]]) for c in targets if np.isfinite(adv[r, col[c]])}

                def step_clock(seconds, _until=decision + wait):
                    # the post-only wait: on the local exchange replay time passes only when stepped
                    if handle.now() < _until:
                        handle.set_time(_until)
                    time.sleep(min(seconds, 0.05))

                result = Rebalancer(pcfg, client, db, on_event=lambda m: None, sleep=step_clock).run(
                    ts, targets, advs)
                statuses.append(result.status)
                # the runner sized from the account value it read at this same instant (nothing moved since)
                rec.update(targets=targets, rid=result.rebalance_id, status=result.status,
                           plan_equity=float(state.account_value))
            with book.connect(db) as conn:
                fills = table_frame(conn, "fills")
                orders = table_frame(conn, "orders")
                rebs = table_frame(conn, "rebalances")
            funding_rows = client.funding_payments(to_ms(opens[0]), to_ms(opens[-1] + 2 * BAR))
    finally:
        handle.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    paper_s = time.perf_counter() - clock0
    say(f"paper: {windows} rebalances through the runner in {paper_s:.1f} s "
        f"({', '.join(f'{s} {statuses.count(s)}' for s in sorted(set(statuses)))})")

    # ----------------------------------------------------------------------------- the backtest, same windows
    bcfg = pcfg.model_copy(update={"capital_usd": capital})
    hourly = load_hourly(data_dir, panel.coins, start=opens[0], end=opens[-1] + 2 * BAR) if style == "passive_first" else None
    trace: dict = {}
    bt = run_as_live(panel, bcfg, start=opens[0], end=opens[-1] + BAR, style=style, hourly=hourly,
                     instruments=szd_ex, trace=trace)
    tbars, tfills = trace["bars"], pd.DataFrame(trace["fills"])
    if len(tbars) != len(opens):
        raise RuntimeError(f"backtest covered {len(tbars)} bars, expected {len(opens)}")

    # ----------------------------------------------------------------------------- per-window decomposition
    cap_cloid = orders.set_index("cloid")
    fills = fills.copy()
    fills["mid_px"] = fills["cloid"].map(cap_cloid["mid_px"]) if len(fills) else []
    fills["sign"] = np.where(fills["side"].astype(str).str.lower().isin(["buy", "b"]), 1.0, -1.0) if len(fills) else []
    fund_t = pd.to_datetime(pd.Series([p.time_ms for p in funding_rows], dtype="int64"), unit="ms")
    fund_usd = np.array([p.usdc for p in funding_rows], dtype=float)
    out = []
    for k in range(windows):
        p0, p1 = paper[k], paper[k + 1]
        b0, b1 = tbars[k], tbars[k + 1]
        r0 = rows[k]
        ck = {c: float(close[r0, col[c]]) for c in panel.coins if np.isfinite(close[r0, col[c]])}
        ck1 = {c: float(close[rows[k + 1], col[c]]) for c in panel.coins if np.isfinite(close[rows[k + 1], col[c]])}
        dc = {c: ck1[c] - ck[c] for c in ck if c in ck1}
        # paper
        pf = fills[fills["rebalance_id"] == p0["rid"]] if len(fills) else fills
        f_p = float(pf["fee_usd"].sum()) if len(pf) else 0.0
        slip_p = timing_p = round_px_p = 0.0
        for row in pf.itertuples():
            buy = row.sign > 0
            level = _unrounded_level(row.px, row.mid_px, buy == (row.liquidity == "taker"), half_bps, step_bps)
            slip_p += row.sign * row.sz * (level - row.mid_px)
            round_px_p += row.sign * row.sz * (row.px - level)
            timing_p += row.sign * row.sz * (row.mid_px - ck[row.coin])
        mark_p = (sum(q * (p1["mids"].get(c, ck1.get(c, 0.0)) - ck1.get(c, 0.0)) for c, q in p1["before"].items())
                  - sum(q * (p0["mids"].get(c, ck.get(c, 0.0)) - ck.get(c, 0.0)) for c, q in p0["before"].items()))
        d0, d1 = p0["equity"], p1["equity"]
        in_w = (fund_t > opens[k] + BAR) & (fund_t <= opens[k + 1] + BAR)
        fund_p = -float(fund_usd[np.asarray(in_w)].sum()) if len(fund_usd) else 0.0  # paid (+)
        mids_p = {c: p0["mids"][c] for c in set(p0["targets"]) | set(p0["before"])}
        split_p = intent_split(p0["targets"], p0["before"], mids_p, {c: szd_ex[c] for c in mids_p},
                               p0["plan_equity"], params)
        hold_p = _holding(split_p, p1["before"], dc)
        # backtest
        bf = tfills[tfills["bar"] == k] if len(tfills) else tfills
        f_b = float(bf["fee"].sum()) if len(bf) else 0.0
        timing_b = float(bf["drift"].sum()) if len(bf) else 0.0
        slip_b = float(bf["pcost"].sum()) - timing_b if len(bf) else 0.0
        fund_b = b1["funding_usd"]
        if b0["plan_equity"] is not None and (b0["targets"] or b0["before"]):
            split_b = intent_split(b0["targets"], b0["before"], b0["mids"], b0["szd"], b0["plan_equity"], params)
        else:
            split_b = {}
        hold_b = _holding(split_b, b0.get("after", b0["before"]), dc)
        pnl_p, pnl_b = d1 - d0, b1["equity"] - b0["equity"]
        comp = {
            "fees": -(f_p - f_b),
            "slippage": -(slip_p - slip_b),
            "timing": -(timing_p - timing_b) + mark_p,
            "skipped_small": hold_p["skipped_small"] - hold_b["skipped_small"],
            "rounding": hold_p["rounding"] - hold_b["rounding"] - round_px_p,
            "funding": -(fund_p - fund_b),
            "sizing": hold_p["ideal"] - hold_b["ideal"],
            "unfilled": hold_p["unfilled"] - hold_b["unfilled"],
        }
        diff = pnl_p - pnl_b
        comp["residual"] = diff - sum(comp.values())
        traded_p = float((pf["sz"] * pf["px"]).sum()) if len(pf) else 0.0
        traded_b = float((bf["units"].abs() * bf["px"]).sum()) if len(bf) else 0.0
        out.append({"window": opens[k], "decision": opens[k] + BAR, "status": p0["status"],
                    "paper_pnl_usd": pnl_p, "backtest_pnl_usd": pnl_b, "diff_usd": diff,
                    "diff_bp": diff / capital * 1e4, **comp,
                    "paper_equity_usd": d0, "backtest_equity_usd": b0["equity"],
                    "paper_fees_usd": f_p, "backtest_fees_usd": f_b,
                    "paper_funding_usd": fund_p, "backtest_funding_usd": fund_b,
                    "paper_traded_usd": traded_p, "backtest_traded_usd": traded_b,
                    "paper_fills": int(len(pf)), "backtest_fills": int(len(bf))})
    table = pd.DataFrame(out)
    summary = summarise(table, capital, coins, execution, exchange_fees_bps or (taker, maker),
                        (cfg.costs.taker_fee_bps, cfg.costs.maker_fee_bps))
    summary["seconds"] = round(time.perf_counter() - clock0, 1)
    summary["backtest_metrics"] = {k: bt.metrics.get(k) for k in ("shortfall_bps", "maker_share", "traded_usd")}
    return TrackingResult(table, summary)


def summarise(table: pd.DataFrame, capital: float, coins, execution: str, exchange_fees_bps, config_fees_bps) -> dict:
    """Totals, the tracking error (std of the per-window difference, ddof=1) and the decomposition's totals."""
    d = table["diff_usd"].to_numpy(float)
    te_usd = float(np.std(d, ddof=1)) if len(d) > 1 else float("nan")
    te = te_usd / capital
    comp = {c: float(table[c].sum()) for c in COMPONENTS}
    return {
        "created_at": str(pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")),
        "start": str(table["window"].iloc[0]), "end": str(table["window"].iloc[-1] + BAR), "windows": len(table),
        "coins": list(coins), "execution": execution, "capital_usd": capital,
        "exchange_fees_bps": list(exchange_fees_bps), "config_fees_bps": list(config_fees_bps),
        "paper_pnl_usd": float(table["paper_pnl_usd"].sum()), "backtest_pnl_usd": float(table["backtest_pnl_usd"].sum()),
        "diff_usd": float(d.sum()), "diff_bp": float(d.sum() / capital * 1e4),
        "mean_diff_bp": float(d.mean() / capital * 1e4),
        "tracking_error_usd": te_usd,
        "tracking_error_bp": te * 1e4,  # per 4h window, bp of capital: the σ the underperformance check uses
        "tracking_error_annual_pct": te * math.sqrt(BARS_PER_YEAR) * 100,
        "components_usd": comp,
        "max_abs_residual_usd": float(table["residual"].abs().max()),
        "statuses": {s: int(n) for s, n in table["status"].value_counts().items()},
    }


def _rows(s: dict) -> list[tuple[str, str, str]]:
    cap = s["capital_usd"]
    rows = [("paper P&L", f"{s['paper_pnl_usd']:,.2f}", f"{s['paper_pnl_usd'] / cap * 1e4:.1f}"),
            ("backtest P&L", f"{s['backtest_pnl_usd']:,.2f}", f"{s['backtest_pnl_usd'] / cap * 1e4:.1f}"),
            ("difference (paper − backtest)", f"{s['diff_usd']:,.2f}", f"{s['diff_bp']:.1f}")]
    rows += [(c, f"{v:,.2f}", f"{v / cap * 1e4:.2f}") for c, v in s["components_usd"].items()]
    rows += [("tracking error per 4h window (σ)", f"{s['tracking_error_usd']:,.2f}", f"{s['tracking_error_bp']:.2f}"),
             ("tracking error, annualised", "", f"{s['tracking_error_annual_pct']:.2f}%")]
    return rows


def title(s: dict) -> str:
    return (f"paper vs backtest: {s['windows']} windows {s['start']} → {s['end']} UTC, {len(s['coins'])} coins, "
            f"{s['execution']}, ${s['capital_usd']:,.0f}")


def markdown(summary: dict) -> list[str]:
    """The summary as the README's markdown table (what `research report` writes)."""
    return ["| figure | USD | bp of capital |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in _rows(summary)]


def render(summary: dict, console=None) -> None:
    """The summary as a rich table."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    t = Table(title=title(summary))
    t.add_column("figure")
    t.add_column("USD", justify="right")
    t.add_column("bp of capital", justify="right")
    for a, b, c in _rows(summary):
        t.add_row(("  " + a) if a in summary["components_usd"] else a, b, c)
    console.print(t)
