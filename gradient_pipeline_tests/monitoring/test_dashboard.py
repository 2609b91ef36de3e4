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
              for a in ("equity_snapshot", "live_positions", "live_exposure", "pnl_and_drawdown", "recent_rebalances")}
        # numbers the UI plots (FloatMetadataValue / IntMetadataValue), consistent with the exchange
        state = trading.account_state()
        assert isinstance(md["equity_snapshot"]["account_value_usd"], dg.FloatMetadataValue)
        assert abs(md["equity_snapshot"]["account_value_usd"].value - state.account_value) < 1e-6
        exp = md["live_exposure"]
        longs = sum(p.position_value for p in state.positions.values() if p.szi > 0)
        shorts = sum(p.position_value for p in state.positions.values() if p.szi < 0)
        assert abs(exp["long_usd"].value - longs) < 1e-6 and abs(exp["short_usd"].value - shorts) < 1e-6
        assert abs(exp["gross_usd"].value - (longs + shorts)) < 1e-6 and abs(exp["net_usd"].value - (longs - shorts)) < 1e-6
        assert 0.3 < exp["leverage"].value < 0.4
        pos = md["live_positions"]
        assert pos["n_positions"].value == 4 and pos["n_long"].value == 2 and pos["n_short"].value == 2
        assert sorted(rec.data["coin"] for rec in pos["positions"].value.records) == sorted(BOOK)
        pnl = md["pnl_and_drawdown"]
        assert isinstance(pnl["drawdown_pct"], dg.FloatMetadataValue) and pnl["drawdown_pct"].value >= 0
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
    assert "data:image/png;base64," in html.read_text()
    assert rep["n_snapshots"].value == 8 and rep["backtest_available"].value is True
    assert rep["compared_bars"].value >= 6 and isinstance(rep["z_vs_backtest"], dg.FloatMetadataValue)
