"""Dashboard assets publish the live book as numeric metadata; performance_report renders HTML + PNG."""

from __future__ import annotations

import base64

import dagster as dg
import duckdb

from gradient_pipeline.defs.monitoring import defs as monitoring_defs
from gradient_pipeline.defs.resources import GradientResource
from gradient_pipeline import book
from gradient_pipeline.book import ledger
from gradient_pipeline_tests.monitoring.conftest import BOOK, open_book, store_backtest


def _defs(gradient):
    return dg.Definitions.merge(monitoring_defs, dg.Definitions(resources={"gradient": gradient}))


def test_dashboard_metadata_and_performance_report(paper_account):
    trading = paper_account.trading()
    open_book(trading, BOOK)
    gradient = GradientResource(config_path=str(paper_account.config_path), duckdb_path=str(paper_account.db_path))
    defs = _defs(gradient)
    ex = paper_account.exchange
    with book.connect(paper_account.db_path) as conn:
        ledger.ingest_fills(conn, trading.fills_since())  # as a rebalance records its fills
        ledger.start_rebalance(conn, "rb-1", "2025-04-30 20:00", "paper", "local", paper_account.address, 10_000.0)
        ledger.finish_rebalance(conn, "rb-1", "complete", None)
        ledger.start_rebalance(conn, "rb-2", "2025-05-01 00:00", "paper", "local", paper_account.address, 10_000.0)
        ledger.finish_rebalance(conn, "rb-2", "refused", "risk: net_exposure")
    with dg.instance_for_test() as instance:
        for i in range(8):  # eight 4h snapshots
            if i:
                ex.advance(4)
            r = defs.resolve_job_def("monitor_job").execute_in_process(instance=instance)
            assert r.success
        md = {a: r.asset_materializations_for_node(a)[0].metadata
              for a in ("equity_snapshot", "live_positions", "live_exposure", "pnl_and_drawdown", "fills",
                        "recent_rebalances")}
        # numbers the UI plots (FloatMetadataValue / IntMetadataValue), consistent with the exchange
        state = trading.account_state()
        assert isinstance(md["equity_snapshot"]["account_value_usd"], dg.FloatMetadataValue)
        assert abs(md["equity_snapshot"]["account_value_usd"].value - state.account_value) <= 0.005
        exp = md["live_exposure"]
        longs = sum(p.position_value for p in state.positions.values() if p.szi > 0)
        shorts = sum(p.position_value for p in state.positions.values() if p.szi < 0)
        assert abs(exp["long_usd"].value - longs) <= 0.005 and abs(exp["short_usd"].value - shorts) <= 0.005
        assert abs(exp["gross_usd"].value - (longs + shorts)) <= 0.005
        assert abs(exp["net_usd"].value - (longs - shorts)) <= 0.005
        assert 0.3 < exp["leverage_x"].value < 0.4
        # rounded for display: USD to cents, percent to 3 dp (no 0.35000000000000003 / -3.47e-17)
        for asset in ("equity_snapshot", "live_exposure", "pnl_and_drawdown", "fills"):
            for key, v in md[asset].items():
                if key.endswith("_usd"):
                    assert round(v.value, 2) == v.value, (asset, key, v.value)
                if key.endswith("_pct"):
                    assert round(v.value, 3) == v.value, (asset, key, v.value)
        pos = md["live_positions"]
        assert pos["n_positions"].value == 4 and pos["n_long"].value == 2 and pos["n_short"].value == 2
        assert sorted(rec.data["coin"] for rec in pos["positions"].value.records) == sorted(BOOK)
        pnl = md["pnl_and_drawdown"]
        assert isinstance(pnl["drawdown_pct"], dg.FloatMetadataValue) and pnl["drawdown_pct"].value >= 0
        # funding: 28 hours of hourly payments on the four open positions, fetched from userFunding into the book
        paid = trading.funding_payments(0)
        assert len(paid) >= 4 * 27
        total = sum(p.usdc for p in paid)
        assert total != 0.0
        assert abs(pnl["funding_usd"].value - total) <= 0.01
        fl = md["fills"]
        assert abs(fl["funding_usd"].value - total) <= 0.01
        rows = {rec.data["coin"]: rec.data for rec in fl["pnl_by_coin"].value.records}
        assert set(rows) == set(BOOK)
        for coin, r in rows.items():
            coin_paid = sum(p.usdc for p in paid if p.coin == coin)
            assert abs(r["funding_usd"] - coin_paid) <= 0.01
            assert abs(r["net_usd"] - (r["realised_usd"] + r["unrealised_usd"] + r["funding_usd"] - r["fees_usd"])) <= 0.02
        assert fl["n_fills"].value == len(trading.fills_since()) == len(fl["recent_fills"].value.records)
        # one equity_snapshot materialisation per snapshot: the Plots tab's series
        events = instance.fetch_materializations(dg.AssetKey("equity_snapshot"), limit=100).records
        assert len(events) == 8
        assert len(pnl["equity_history"].value.records) == 8
        reb = md["recent_rebalances"]
        assert reb["n_complete_last20"].value == 1 and reb["n_refused_last20"].value == 1
        assert reb["last_status"].value == "refused"

        # a stored backtest for the same bars gives the live-vs-backtest band and z
        with duckdb.connect(str(paper_account.db_path)) as conn:
            store_backtest(conn, "2025-04-25", 120, lambda i: 0.001 * (1 if i % 3 else -1))
        r = defs.resolve_job_def("performance_report_job").execute_in_process(instance=instance)
        assert r.success
        rep = r.asset_materializations_for_node("performance_report")[0].metadata
    html = paper_account.db_path.parent / "reports" / "performance_report.html"
    png = paper_account.db_path.parent / "reports" / "performance_report.png"
    assert rep["report_html"].value == str(html.resolve()) and html.exists() and png.exists()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    chart = rep["chart"].value
    assert chart.startswith("![performance](data:image/png;base64,")
    assert base64.b64decode(chart.split(",", 1)[1].rstrip(")"))[:4] == b"\x89PNG"
    text = html.read_text()
    assert "data:image/png;base64," in text
    # tables with units, the band's σ source said
    for heading in ("Daily P&amp;L (UTC days)", "Weekly P&amp;L", "funding (USD)", "fees (USD)", "max drawdown (%)",
                    "gross exposure (% of equity)", "2025-05-01"):
        assert heading in text, heading
    assert "no paper-vs-backtest tracking run is stored" in text
    assert "no paper-vs-backtest tracking run is stored" in rep["expectation_band"].value
    assert rep["n_snapshots"].value == 8 and rep["backtest_available"].value is True
    assert rep["compared_bars"].value >= 6 and isinstance(rep["z_vs_backtest"], dg.FloatMetadataValue)
