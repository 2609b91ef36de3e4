"""The sweep's parameter grid: which configurations a sensitivity sweep runs (`SweepGrid`), and how one of them
maps onto the strategy's portfolio parameters (`config_params`)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

from gradient_pipeline.core.portfolio import PortfolioParams

ALL_SPANS = (2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
DEFAULT_SPAN_SETS = {
    "all": ALL_SPANS,
    "fast": (2, 4, 8, 16, 32),
    "mid": (16, 32, 64, 128, 256),
    "slow": (64, 128, 256, 512, 1024),
}


@dataclass(frozen=True)
class SweepGrid:
    concentration_pct: tuple = (10.0, 20.0, 35.0, 50.0)
    rebalance_hours: tuple = (4, 8, 12, 24)
    weight_scheme: tuple = ("inverse_vol", "equal")
    span_sets: dict = field(default_factory=lambda: dict(DEFAULT_SPAN_SETS))
    band_pct: tuple = (0.0, 0.5, 1.0)
    smoothing: tuple = (1.0, 0.5)
    phases: bool = True  # every rebalance phase (window end ≡ 0, 4, … h mod interval) for intervals above 4h

    def configs(self) -> list[dict]:
        keys = ("span_set", "concentration_pct", "rebalance_hours", "weight_scheme", "band_pct", "smoothing")
        vals = (tuple(self.span_sets), self.concentration_pct, self.rebalance_hours, self.weight_scheme,
                self.band_pct, self.smoothing)
        out = []
        for v in itertools.product(*vals):
            c = dict(zip(keys, v))
            for ph in (range(0, int(c["rebalance_hours"]), 4) if self.phases else (0,)):
                out.append({**c, "phase_hours": ph})
        return out

    @property
    def size(self) -> int:
        return len(self.configs())


def config_params(base: PortfolioParams, c: dict) -> PortfolioParams:
    """``base`` with one grid configuration's choices (a `SweepGrid.configs` dict) applied."""
    return replace(base, concentration_pct=float(c["concentration_pct"]), rebalance_hours=int(c["rebalance_hours"]),
                   weight_scheme=c["weight_scheme"], band=float(c["band_pct"]) / 100, smoothing=float(c["smoothing"]),
                   rebalance_phase_hours=int(c.get("phase_hours", 0)))
