"""One factory of trading clients (`venue.registry.open_venue`): the Dagster `venue` resource, monitoring's
`open_trading` and the CLI paths get the same client — one timeout, one expiry, signing only when asked."""

from __future__ import annotations

import eth_account
import pytest

from gradient_pipeline.config import ConfigError, parse_config
from gradient_pipeline.defs.resources import VenueResource
from gradient_pipeline.monitoring.account import open_trading
from gradient_pipeline.venue import ExecutionVenue
from gradient_pipeline.venue.registry import open_venue


def test_the_older_execution_timeout_is_the_one_timeout_and_a_conflict_is_an_error(tmp_path):
    cfg = parse_config({"duckdb_path": str(tmp_path / "g.duckdb"), "execution": {"request_timeout_s": 3.5}})
    assert cfg.rate_limit.request_timeout_s == 3.5
    assert "request_timeout_s" not in cfg.execution.model_dump()
    with pytest.raises(ConfigError, match=r"execution.request_timeout_s \(3.5\) and rate_limit.request_timeout_s \(7"):
        parse_config({"execution": {"request_timeout_s": 3.5}, "rate_limit": {"request_timeout_s": 7.0}})


def test_resource_monitoring_and_cli_share_one_factory(local_exchange_factory, monkeypatch, tmp_path):
    master, agent = eth_account.Account.create(), eth_account.Account.create()
    ex = local_exchange_factory(start_time="2025-03-01 00:05", coins=["BTC", "ETH"], accounts={master.address: 1000.0},
                                agents={agent.address: master.address})
    monkeypatch.setenv("GRADIENT_PRIVATE_KEY", agent.key.hex())
    monkeypatch.setenv("GRADIENT_ACCOUNT_ADDRESS", master.address)
    cfg = parse_config({"mode": "paper", "exchange_base_url": ex.base_url, "duckdb_path": str(tmp_path / "g.duckdb"),
                        "rate_limit": {"request_timeout_s": 4.25}, "execution": {"expires_after_s": 12.0}})
    job = VenueResource().open(cfg)  # what rebalance_job's ops use
    cli = open_venue(cfg)  # what the CLI paths use
    reader, signer = open_trading(cfg), open_trading(cfg, signer=True)  # monitoring, the emergency flatten
    for client in (job, cli, reader, signer):
        assert isinstance(client, ExecutionVenue)
        assert client.client.timeout_s == 4.25 and client.expires_after_s == 12.0
        assert client.account_address == master.address
    assert job.can_sign and cli.can_sign and signer.can_sign and not reader.can_sign
    assert set(job.instruments()) == {"BTC", "ETH"} and job.instruments()["BTC"].min_notional_usd == 10.0
