"""What every step of one rebalance shares: the configuration, the venue, the operations book, the event sink, and
the run's own state (its id, targets, the risk note, orders that never reached the venue, the dead-man switch).

The steps (`resume`, `reconcile`, `routing`, `rounds`, `terminal`) are functions of a `RunContext`; `runner.py`
builds one per run and takes the lock around them."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from gradient_pipeline import book
from gradient_pipeline.config import GradientConfig
from gradient_pipeline.execution.dead_man import DeadManSwitch
from gradient_pipeline.venue.protocol import ExecutionVenue

log = logging.getLogger("gradient_pipeline.execution.runner")


@dataclass
class RunContext:
    cfg: GradientConfig
    venue: ExecutionVenue
    db_path: str
    dagster_run_id: str | None = None
    say: Callable[[str], None] = log.info
    sleep: Callable[[float], None] = time.sleep
    # --- the run's own state (set by the runner for one rebalance) ---
    rid: str = ""
    window_ts: pd.Timestamp | None = None
    target_weights: dict[str, float] = field(default_factory=dict)
    resumed: bool = False
    risk_note: str | None = None  # a scaled book says so in the ledger
    unreached: list[tuple[str, str]] = field(default_factory=list)  # (coin, error) never reached the venue
    dead_man: DeadManSwitch = field(default_factory=DeadManSwitch.off)

    @property
    def ex(self):
        return self.cfg.execution

    @property
    def mode(self) -> str:
        return self.cfg.mode

    @property
    def network(self) -> str:
        return self.cfg.network

    @property
    def sends(self) -> bool:
        return self.mode != "dry_run"

    def db(self):
        return book.connect(os.fspath(self.db_path))
