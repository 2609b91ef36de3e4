"""Alert conditions computed from the ledger: slippage per rebalance, position drift, daily summary figures.

Pure functions take frames and return rows; the readers (`fills_with_reference`, `recent_rebalance_ids`,
`last_rebalance_targets`, `daily_figures`) live in the operations book and are re-exported here (book connection).
Raising and clearing alerts is done by the caller through `alerts.raise_alert` / `alerts.clear_alert`.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from gradient_pipeline.book.ledger import (  # noqa: F401 - re-exported readers
    fills_with_reference,
    last_rebalance_targets,
    recent_rebalance_ids,
)
from gradient_pipeline.book.reports import DailyFigures, daily_figures  # noqa: F401 - re-exported

# ------------------------------------------------------------------------------------------------ slippage


def slippage_rows(fills: pd.DataFrame, threshold_pct: float) -> list[dict]:
    """Fills whose price was worse than the mid at planning time by more than `threshold_pct` percent.

    `fills` needs coin, side (buy|sell), px, mid_px. Slippage is adverse-positive: a buy above the mid or a sell
    below it. Fills without a reference mid are ignored.
    """
    if fills.empty:
        return []
    f = fills.dropna(subset=["mid_px"])
    f = f[f["mid_px"] > 0]
    sign = f["side"].map({"buy": 1.0, "sell": -1.0})
    pct = (f["px"] - f["mid_px"]) / f["mid_px"] * 100.0 * sign
    out = f.assign(slippage_pct=pct)
    out = out[out["slippage_pct"] > threshold_pct]
    return [
        {"coin": r.coin, "side": r.side, "px": float(r.px), "ref_px": float(r.mid_px), "slippage_pct": float(r.slippage_pct)}
        for r in out.sort_values("slippage_pct", ascending=False).itertuples()
    ]


# ------------------------------------------------------------------------------------------------ drift


def drift_rows(actual_usd: dict[str, float], target_usd: dict[str, float], account_value: float,
               threshold_pct: float) -> list[dict]:
    """Coins whose held notional differs from the target by more than `threshold_pct` % of account value."""
    if not account_value or account_value <= 0:
        return []
    out = []
    for coin in sorted(set(actual_usd) | set(target_usd)):
        a, t = actual_usd.get(coin, 0.0), target_usd.get(coin, 0.0)
        d = abs(a - t) / account_value * 100.0
        if d > threshold_pct:
            out.append({"coin": coin, "target_usd": t, "actual_usd": a, "drift_pct": d})
    return sorted(out, key=lambda r: -r["drift_pct"])


# ------------------------------------------------------------------------------------------------ daily summary


def funding_usd(trading, day: dt.date) -> float:
    """Funding received (+) or paid (−) over the UTC day, from the venue (`ExecutionVenue.funding_usd`)."""
    from gradient_pipeline.timegrid import to_ms

    start = pd.Timestamp(day)
    return float(trading.funding_usd(to_ms(start), to_ms(start + pd.Timedelta(days=1))))
