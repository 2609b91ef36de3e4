"""Capped exponential backoff, shared by the emergency flatten loop (`monitoring/flatten.py`) and the rebalance's
order look-up retries (`execution/runner.py`). It lives below both so neither imports the other."""

from __future__ import annotations

from dataclasses import dataclass

from gradient_pipeline.config import GradientConfig


MAX_EXPONENT = 200  # 2 ** 200 ≈ 1.6e60: past any cap, far below float overflow


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff (pure): delay after `failures` consecutive failed passes."""

    initial_s: float = 0.5
    max_s: float = 30.0
    factor: float = 2.0

    def delay(self, failures: int) -> float:
        if failures <= 0:
            return 0.0
        # The exponent is capped: a loop that keeps trying through a long outage reaches failure ~1,025, where
        # factor ** n overflows a float (OverflowError) — the delay is max_s long before that.
        return min(self.max_s, self.initial_s * self.factor ** min(failures - 1, MAX_EXPONENT))

    @classmethod
    def from_config(cls, cfg: GradientConfig) -> Backoff:
        """The emergency flatten's policy (`risk.flatten_backoff_*`)."""
        return cls(cfg.risk.flatten_backoff_initial_s, cfg.risk.flatten_backoff_max_s)
