"""The operator surface for the venue features: account modes in the accounts file and `/_local/fund`, builder
approvals and the venue clock under `/_local/`, with errors that name what is wrong."""

from __future__ import annotations

import json

import eth_account
import pytest
import requests

from gradient_pipeline.localexchange.cli import read_accounts_file
from gradient_pipeline_tests.localexchange._helpers import sdk_info

START = "2025-03-01 00:05"


def test_accounts_file_accepts_account_modes_and_names_a_bad_one(tmp_path):
    good = tmp_path / "accounts.json"
    good.write_text(json.dumps({"accounts": {"0xabc": {"usdc": 500, "mode": "portfolio-margin"}, "0xdef": 7}}))
    assert read_accounts_file(good) == ({"0xabc": {"usdc": 500.0, "mode": "portfolio-margin"}, "0xdef": 7.0}, {})
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"accounts": {"0xabc": {"usdc": 500, "mode": "cross"}}}))
    with pytest.raises(ValueError, match=r"bad.json: accounts\['0xabc'\].mode 'cross' is not one of standard"):
        read_accounts_file(bad)
    bad.write_text(json.dumps({"accounts": {"0xabc": {"usd": 500}}}))
    with pytest.raises(ValueError, match=r"bad.json: accounts\['0xabc'\]: expected"):
        read_accounts_file(bad)


def test_operator_endpoints_for_modes_builders_and_the_venue_clock(local_exchange_factory):
    handle = local_exchange_factory(start_time=START, coins=["BTC", "ETH"])
    base = handle.base_url + "/_local"
    user, builder = eth_account.Account.create().address, eth_account.Account.create().address
    assert requests.post(f"{base}/fund", json={"address": user, "usdc": 250, "mode": "unified-account"},
                         timeout=5).json() == {"ok": True}
    info = sdk_info(handle)
    assert info.query_user_abstraction_state(user) == "unifiedAccount"
    assert info.spot_user_state(user)["balances"][0]["total"] == "250.0"
    bad = requests.post(f"{base}/fund", json={"address": user, "usdc": 1, "mode": "isolated"}, timeout=5)
    assert bad.status_code == 400 and "unknown account mode 'isolated'" in bad.json()["error"]

    assert requests.post(f"{base}/builders", json={"master": user, "builder": builder, "max_fee_rate": "0.05%"},
                         timeout=5).json() == {"ok": True}
    assert info.post("/info", {"type": "maxBuilderFee", "user": user, "builder": builder}) == 50

    replay_before = handle.now_ms()
    before = requests.get(f"{base}/venue_clock", timeout=5).json()
    assert before["source"] == "wall" and before["offset_ms"] == 0
    after = requests.post(f"{base}/venue_clock/advance", json={"seconds": 90}, timeout=5).json()
    assert after["offset_ms"] == 90_000 and after["now_ms"] >= before["now_ms"] + 90_000
    assert requests.post(f"{base}/venue_clock/advance", json={"seconds": -1}, timeout=5).status_code == 400
    assert requests.post(f"{base}/venue_clock/advance", json={}, timeout=5).status_code == 400
    assert handle.now_ms() == replay_before  # the replay (market) clock did not move
