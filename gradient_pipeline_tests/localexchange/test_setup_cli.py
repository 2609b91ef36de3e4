"""Setting the local exchange up: data-directory errors, meta overrides, the accounts file and `exchange serve`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
import requests

from gradient_pipeline.localexchange.cli import read_accounts_file
from gradient_pipeline.localexchange.replay import DataError
from gradient_pipeline.localexchange.server import run_in_background
from gradient_pipeline_tests.localexchange._helpers import sdk_info


def _link(src_dir, dst_dir, coins):
    for coin in coins:
        for suffix in ("4h-futures", "1h-futures", "1h-funding_rate"):
            name = f"{coin}_USDC_USDC-{suffix}.feather"
            os.symlink(src_dir / name, dst_dir / name)


def test_data_errors_name_the_problem(freqtrade_dir, tmp_path):
    with pytest.raises(DataError, match="NOPE"):
        run_in_background(freqtrade_dir, "2025-05-01", coins=["BTC", "NOPE"])
    with pytest.raises(DataError, match="does not exist"):
        run_in_background(tmp_path / "missing", "2025-05-01")
    with pytest.raises(DataError, match="no '<COIN>_USDC_USDC-4h-futures.feather' files"):
        run_in_background(tmp_path, "2025-05-01")


def test_meta_overrides_file(local_exchange_factory, freqtrade_dir, tmp_path):
    _link(freqtrade_dir, tmp_path, ["BTC", "ETH"])
    (tmp_path / "meta_overrides.json").write_text(json.dumps({"BTC": {"maxLeverage": 40, "szDecimals": 4},
                                                              "ETH": {"onlyIsolated": True}}))
    ex = local_exchange_factory(data_dir=tmp_path, start_time="2025-05-01 02:30")
    uni = {u["name"]: u for u in sdk_info(ex).meta()["universe"]}
    assert (uni["BTC"]["maxLeverage"], uni["BTC"]["szDecimals"]) == (40, 4)
    assert uni["ETH"]["onlyIsolated"] is True and uni["ETH"]["maxLeverage"] == 50
    assert ex.market.coin("BTC").max_leverage == 40

    (tmp_path / "meta_overrides.json").write_text(json.dumps({"BTC": {"leverage": 3}}))
    with pytest.raises(DataError, match="coin BTC: unsupported field"):
        run_in_background(tmp_path, "2025-05-01")


def test_accounts_file(tmp_path):
    good = tmp_path / "accounts.json"
    good.write_text(json.dumps({"accounts": {"0xabc": 10000}, "agents": {"0xdef": "0xabc"}}))
    assert read_accounts_file(good) == ({"0xabc": 10000.0}, {"0xdef": "0xabc"})
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"accounts": {"0xabc": "lots"}}))
    with pytest.raises(ValueError, match=r"bad.json: accounts\['0xabc'\] must be a non-negative number"):
        read_accounts_file(bad)
    with pytest.raises(ValueError, match="missing.json"):
        read_accounts_file(tmp_path / "missing.json")


def test_exchange_serve_command(freqtrade_dir, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    accounts = tmp_path / "accounts.json"
    master = "0x" + "11" * 20
    accounts.write_text(json.dumps({"accounts": {master: 5000}}))
    cmd = [sys.executable, "-m", "gradient_pipeline.cli", "exchange", "serve", "--data", str(freqtrade_dir),
           "--port", str(port), "--start-time", "2025-05-01 02:30", "--speed", "0", "--coins", "BTC,ETH",
           "--accounts", str(accounts), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(base + "/_local/clock", timeout=1)
                break
            except requests.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"exchange serve did not start: {proc.stdout.read() if proc.poll() is not None else ''}")
                time.sleep(0.2)
        info = sdk_info(type("H", (), {"base_url": base})())
        assert info.post("/info", {"type": "exchangeStatus"})["time"] == 1746066600000  # frozen at --start-time
        assert set(info.all_mids()) == {"BTC", "ETH"}
        state = info.user_state(master)
        assert float(state["marginSummary"]["accountValue"]) == 5000.0
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_without_a_trading_engine_exchange_answers_trading_not_available(freqtrade_dir, monkeypatch):
    from gradient_pipeline.localexchange import app

    monkeypatch.setattr(app, "load_engine_class", lambda: None)  # the state before engine.py existed
    with run_in_background(freqtrade_dir, "2025-05-01 02:30", coins=["BTC"]) as ex:
        assert ex.engine is None
        body = {"action": {"type": "order", "orders": [], "grouping": "na"}, "nonce": 1, "signature": {}}
        r = requests.post(ex.base_url + "/exchange", json=body, timeout=5)
        assert r.json() == {"status": "err", "response": "trading not available"}
        r = requests.post(ex.base_url + "/info", json={"type": "clearinghouseState", "user": "0x" + "0" * 40},
                          timeout=5)
        assert r.status_code == 422  # account types are unknown without the engine
        assert sdk_info(ex).all_mids() == {"BTC": "94671.0"}
