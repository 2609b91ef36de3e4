"""`gradient-pipeline preflight` against a real local exchange: a correctly set-up paper account passes every
check it can pass offline, and a key that is not an approved agent fails, naming the agent."""

from __future__ import annotations

import eth_account

from gradient_pipeline.app.preflight import DRILL_HEARTBEAT, FAIL, PASS, WARN
from gradient_pipeline.cli import main


def _status_lines(out: str) -> dict[str, str]:
    """item → status, from the printed lines `STATUS  item: found → todo`."""
    lines = {}
    for line in out.splitlines():
        status, _, rest = line.partition("  ")
        if status in (PASS, WARN, FAIL):
            lines[rest.split(":", 1)[0]] = status
    return lines


def _use_agent(paper_account, monkeypatch, approve: bool) -> str:
    agent = eth_account.Account.create()
    if approve:
        paper_account.exchange.approve_agent(agent.address, paper_account.address)
    monkeypatch.setenv("GRADIENT_PRIVATE_KEY", agent.key.hex())
    monkeypatch.setenv("GRADIENT_ACCOUNT_ADDRESS", paper_account.address)
    return agent.address


def test_preflight_passes_a_correctly_set_up_paper_account(paper_account, alert_receiver, monkeypatch, capsys):
    from gradient_pipeline.book import connect
    from gradient_pipeline.book.heartbeats import beat

    _use_agent(paper_account, monkeypatch, approve=True)
    with connect() as conn:
        beat(conn, DRILL_HEARTBEAT, "drill ended flat and halted")

    code = main(["preflight"])
    out = capsys.readouterr().out
    status = _status_lines(out)
    assert status["configuration"] == PASS
    assert status["mode and network"] == PASS
    assert status["signing key is an approved agent"] == PASS, out
    assert status["account mode"] == PASS, out
    assert status["no builder fee on orders"] == PASS
    assert status["exchange clock vs local clock"] == PASS, out
    assert status["rate-limit headroom"] == PASS, out
    assert status["alert destinations"] == PASS, out
    assert status["drawdown drill"] == PASS, out
    # no market data stored in this fresh DuckDB: the backtest item warns and says what to run
    assert status["backtest, last 6 months"] == WARN and "warm-up" in out
    assert code == 1
    assert alert_receiver.titles() == ["[gradient] preflight test message"]
    assert paper_account.key_hex not in out


def test_preflight_fails_naming_an_agent_that_is_not_approved(paper_account, monkeypatch, capsys):
    agent = _use_agent(paper_account, monkeypatch, approve=False)
    code = main(["preflight", "--no-test-alerts"])
    out = capsys.readouterr().out
    assert code == 2
    line = next(ln for ln in out.splitlines() if "approved agent" in ln)
    assert line.startswith(FAIL)
    assert f"agent {agent} is NOT approved by account {paper_account.address}" in line


def test_preflight_fails_on_a_bad_configuration(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"mode": "paper", "capital_usd": -5}')
    code = main(["preflight", "--config", str(bad)])
    out = capsys.readouterr().out
    assert code == 2
    assert out.splitlines()[0].startswith("FAIL  configuration:") and "capital_usd" in out
