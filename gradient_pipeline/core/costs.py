"""The cost model shared by the backtest, the sweep and live slippage checks.

* **Fees**: every trade pays the taker fee (``costs.taker_fee_bps``, 4.5 bp) on its notional.
* **Slippage**: ``bps = slippage_base_bps + slippage_impact_coef × 1e4 × sqrt(min(1, trade_usd / ADV_usd))``
  (half-spread plus a square-root-law impact; ADV = the strategy's trailing 24h USD volume). A trade in a coin
  with no known ADV pays the capped impact.
* **Funding**: a position held over a bar pays ``weight × Σ rate`` over the funding hours in that bar
  (``Panel.funding``; hourly since 2023-06-08, 8-hourly before — summing per bar handles both). Positive rate:
  longs pay, shorts receive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit


@dataclass(frozen=True)
class CostParams:
    taker_fee_bps: float = 4.5
    slippage_base_bps: float = 1.0
    slippage_impact_coef: float = 0.02
    funding: bool = True

    @classmethod
    def from_config(cls, cfg) -> "CostParams":
        c = cfg.costs
        return cls(c.taker_fee_bps, c.slippage_base_bps, c.slippage_impact_coef)

    @classmethod
    def zero(cls) -> "CostParams":
        return cls(0.0, 0.0, 0.0, False)


@njit(cache=True, nogil=True)
def inv_adv_scalar(adv_usd):
    """1/ADV, inf where ADV is unknown or ≤ 0 (the impact ratio then saturates at 1)."""
    return 1.0 / adv_usd if adv_usd > 0.0 else math.inf


@njit(cache=True, nogil=True)
def slippage_bps_inv(trade_usd, inv_adv, base_bps, coef):
    """The slippage rule, once for every kernel: ``base + coef·1e4·sqrt(min(1, trade·(1/ADV)))`` (no square
    root when the model has no impact term). The backtest and the sweep both call this with the same 1/ADV."""
    if coef == 0.0:
        return base_bps
    ratio = trade_usd * inv_adv
    if not ratio < 1.0:
        ratio = 1.0
    return base_bps + coef * 1e4 * math.sqrt(ratio)


@njit(cache=True, nogil=True)
def slippage_bps_scalar(trade_usd, adv_usd, base_bps, coef):
    return slippage_bps_inv(trade_usd, inv_adv_scalar(adv_usd), base_bps, coef)


def slippage_bps(trade_usd, adv_usd, costs: CostParams) -> np.ndarray:
    """Expected slippage in bp for trades of ``trade_usd`` in coins with trailing volume ``adv_usd`` (vectorised)."""
    trade = np.abs(np.asarray(trade_usd, dtype=np.float64))
    adv = np.asarray(adv_usd, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((adv > 0) & np.isfinite(adv), np.minimum(1.0, trade / adv), 1.0)
    return costs.slippage_base_bps + costs.slippage_impact_coef * 1e4 * np.sqrt(ratio)
