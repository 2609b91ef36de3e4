"""`gradient-pipeline trades` over a book written by real paper rebalances (real SDK, real local exchange)."""

from __future__ import annotations

import json

import pytest

from gradient_pipeline.cli import main
from gradient_pipeline.execution.runner import Rebalancer
from gradient_pipeline.exchange.hyperliquid.factory import trading_client
from gradient_pipeline_tests.conftest import book_frame
from gradient_pipeline_tests.execution.conftest import ADV, TARGETS, WINDOW

FLIPPED = {"BTC": -0.06, "ETH": 0.04, "AVAX": 0.02}  # BTC flips, ETH shrinks, the rest close: realised P&L


def _two_rebalances(paper):
    Rebalancer(paper.cfg, trading_client(paper.cfg), paper.db_path).run(WINDOW, TARGETS, ADV)
    paper.handle.advance(4)
    second = Rebalancer(paper.cfg, trading_client(paper.cfg), paper.db_path).run("2025-03-01 00:00", FLIPPED, ADV)
    assert second.status == "complete", second.reason
    return second


def test_trades_lists_every_fill_and_pnl_per_coin(paper, monkeypatch, capsys):
    _two_rebalances(paper)
    monkeypatch.setenv("GRADIENT_DUCKDB_PATH", paper.db_path)
    fills = book_frame(paper.db_path, "SELECT * FROM fills")
    exchange_fills = trading_client(paper.cfg).fills_since()
    assert len(fills) == len(exchange_fills) > len(TARGETS)

    assert main(["trades", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["fills"]) == len(fills)
    assert {f["rebalance_id"] for f in out["fills"]} == set(fills["rebalance_id"])
    pnl = {r["coin"]: r for r in out["pnl_by_coin"]}
    assert set(pnl) == set(TARGETS) | set(FLIPPED)
    for coin, r in pnl.items():  # realised and fees are the exchange's own figures, summed per coin
        ex = [f for f in exchange_fills if f.coin == coin]
        assert r["realised_usd"] == pytest.approx(sum(f.closed_pnl_usd for f in ex), abs=1e-9)
        assert r["fees_usd"] == pytest.approx(sum(f.fee_usd for f in ex), abs=1e-9)
        assert r["n_fills"] == len(ex)
    # unrealised from the last snapshot (the second rebalance's end): closed coins are flat with 0
    end = book_frame(paper.db_path, "SELECT coin, unrealized_pnl_usd, szi FROM positions WHERE source = "
                                    "'rebalance_end' AND ts = (SELECT max(ts) FROM positions)")
    assert set(end["coin"]) == set(FLIPPED)
    for r in end.itertuples():
        assert pnl[r.coin]["unrealised_usd"] == pytest.approx(r.unrealized_pnl_usd)
        assert pnl[r.coin]["szi"] == pytest.approx(r.szi)
    assert pnl["SOL"]["unrealised_usd"] == 0.0 and pnl["SOL"]["szi"] == 0.0 and pnl["SOL"]["realised_usd"] != 0.0
    assert out["funding_recorded"] is False and out["funding_usd"] is None
    assert any("funding: never fetched" in n for n in out["notes"])

    # the table: every coin, the rebalance ids, the funding caveat (not a 0)
    assert main(["trades"]) == 0
    text = capsys.readouterr().out
    assert "fills (%d)" % len(fills) in text and "TOTAL" in text and "n/a" in text
    assert "funding: never fetched" in text
    for rid in set(fills["rebalance_id"]):
        assert rid in text

    # filters: one coin; since after the first rebalance leaves only the second one's fills
    assert main(["trades", "--coin", "BTC", "--json"]) == 0
    btc = json.loads(capsys.readouterr().out)
    assert {f["coin"] for f in btc["fills"]} == {"BTC"} and [r["coin"] for r in btc["pnl_by_coin"]] == ["BTC"]
    cut = fills["time"].max()
    assert main(["trades", "--since", str(cut), "--json"]) == 0
    late = json.loads(capsys.readouterr().out)
    assert 0 < len(late["fills"]) < len(fills)


def test_trades_show_funding_fetched_into_the_book(paper, monkeypatch, capsys):
    from gradient_pipeline import book
    from gradient_pipeline.book.funding import sync_account_funding, sync_funding
    from gradient_pipeline.exchange.hyperliquid import trading as hl_trading

    _two_rebalances(paper)
    paper.handle.advance(8)  # eight hourly funding payments on the held positions
    client = trading_client(paper.cfg)
    with book.connect(paper.db_path) as conn:
        # the adapter follows pages (shrunk to 5 here, the venue's are 500) from the last stored time
        monkeypatch.setattr(hl_trading, "FUNDING_PAGE", 5)
        monkeypatch.setitem(paper.handle.engine.config, "max_funding_rows", 5)
        first = sync_funding(conn, client.account_address, client.funding_payments)
        monkeypatch.undo()
        again = sync_account_funding(conn, client)  # nothing new: keyed by (account, coin, time)
        monkeypatch.setenv("GRADIENT_DUCKDB_PATH", paper.db_path)
    paid = client.funding_payments(0)
    assert first == len(paid) >= 8 * len(FLIPPED) and again == 0
    assert main(["trades", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["funding_recorded"] is True and not any("funding" in n for n in out["notes"])
    pnl = {r["coin"]: r for r in out["pnl_by_coin"]}
    for coin in FLIPPED:
        want = sum(p.usdc for p in paid if p.coin == coin)
        assert want != 0.0 and pnl[coin]["funding_usd"] == pytest.approx(want, abs=1e-9)
    t = out["totals"]
    assert out["funding_usd"] == pytest.approx(sum(p.usdc for p in paid), abs=1e-9)
    assert t["net_usd"] == pytest.approx(t["realised_usd"] + t["unrealised_usd"] + t["funding_usd"] - t["fees_usd"])
    assert main(["trades"]) == 0
    text = capsys.readouterr().out
    assert "n/a" not in text and "net = realised + unrealised + funding" in text


def test_trades_rejects_a_bad_since(paper, monkeypatch, capsys):
    monkeypatch.setenv("GRADIENT_DUCKDB_PATH", paper.db_path)
    assert main(["trades", "--since", "yesterday-ish"]) == 2
    assert "--since 'yesterday-ish' is not an ISO date" in capsys.readouterr().err


def test_dry_run_orders_are_listed_as_not_sent(paper_factory, monkeypatch, capsys):
    p = paper_factory()
    cfg = p.config(mode="dry_run")
    said: list[str] = []
    result = Rebalancer(cfg, trading_client(cfg), p.db_path, on_event=said.append).run(WINDOW, TARGETS, ADV)
    assert result.status == "complete" and "none sent" in result.reason
    assert "orders planned and recorded, none sent" in result.summary() and "orders sent" not in result.summary()
    would = [m for m in said if m.startswith("dry run, NOT sent:")]
    assert sorted(m.split()[6] for m in would) == sorted(TARGETS)  # one line per order: side, size, coin, limit
    assert trading_client(cfg).fills_since() == []
    monkeypatch.setenv("GRADIENT_DUCKDB_PATH", p.db_path)
    assert main(["trades", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fills"] == [] and {o["coin"] for o in out["dry_run_orders"]} == set(TARGETS)
    assert main(["trades"]) == 0
    assert "NOT sent" in capsys.readouterr().out


def test_demo_views_without_a_demo_say_how_to_make_one(tmp_path, capsys):
    for cmd in ("trades", "status"):  # (status: 2 error here, 3 "cannot evaluate" on the safety branch)
        assert main([cmd, "--demo", "--demo-dir", str(tmp_path / "nothing")]) in (2, 3)
        err = capsys.readouterr().err
        assert f"no demo found in {tmp_path / 'nothing'}" in err and "gradient-pipeline demo" in err
