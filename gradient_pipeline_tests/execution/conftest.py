"""A funded paper account on a real local exchange, its API wallet in the environment, and a config pointing at it."""

from __future__ import annotations

from dataclasses import dataclass

import eth_account
import pytest

from gradient_pipeline.config import GradientConfig, parse_config

COINS = ["BTC", "ETH", "SOL", "kPEPE", "DOGE", "AVAX"]
START = "2025-03-01 00:05"
WINDOW = "2025-02-28 20:00"  # latest complete window at START
TARGETS = {"BTC": 0.08, "ETH": 0.08, "SOL": -0.08, "kPEPE": -0.05, "DOGE": -0.03}
ADV = {c: 5e8 for c in COINS}


@dataclass
class Paper:
    handle: object
    master: object
    agent: object
    cfg: GradientConfig
    db_path: str

    def config(self, **overrides) -> GradientConfig:
        data = self.cfg.model_dump()
        for key, value in overrides.items():
            if isinstance(value, dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        return parse_config(data)


def make_config(base_url: str, db_path: str, **extra) -> GradientConfig:
    data = {
        "mode": "paper",
        "exchange_base_url": base_url,
        "duckdb_path": db_path,
        "rate_limit": {"request_timeout_s": 2.0, "backoff_base_s": 0.05, "backoff_max_s": 0.2, "max_retries": 3},
    }
    data.update(extra)
    return parse_config(data)


@pytest.fixture
def paper_factory(local_exchange_factory, monkeypatch, tmp_path):
    """`paper_factory(**local_exchange_kwargs)` → a fresh funded account on its own local exchange."""

    def make(**exchange_kwargs) -> Paper:
        master, agent = eth_account.Account.create(), eth_account.Account.create()
        handle = local_exchange_factory(start_time=START, accounts={master.address: 10_000.0},
                                        agents={agent.address: master.address}, coins=COINS, **exchange_kwargs)
        monkeypatch.setenv("GRADIENT_PRIVATE_KEY", agent.key.hex())
        monkeypatch.setenv("GRADIENT_ACCOUNT_ADDRESS", master.address)
        db_path = str(tmp_path / "ledger.duckdb")
        return Paper(handle, master, agent, make_config(handle.base_url, db_path), db_path)

    return make


@pytest.fixture
def paper(paper_factory) -> Paper:
    return paper_factory()
