"""Stop and resume from the Dagster UI: the manual emergency-stop job runs with no config at all, the resume job
refuses anything but `confirm: RESUME`; both go to the halt history with source `ui` (real local exchange)."""

from __future__ import annotations

import dagster as dg

from gradient_pipeline import book
from gradient_pipeline.book.halt import halt_history
from gradient_pipeline.defs.monitoring import defs as monitoring_defs
from gradient_pipeline.defs.resources import GradientResource
from gradient_pipeline.monitoring.halt import is_halted
from gradient_pipeline_tests.monitoring.conftest import BOOK, open_book


def _job(name, gradient):
    return dg.Definitions.merge(monitoring_defs, dg.Definitions(resources={"gradient": gradient})).resolve_job_def(name)


def _failure(result) -> str:
    return next(e.step_failure_data.error.message for e in result.all_events if e.is_step_failure)


def test_manual_stop_needs_no_config_and_resume_needs_the_word(paper_account, alert_receiver):
    trading = paper_account.trading()
    open_book(trading, BOOK)
    gradient = GradientResource(config_path=str(paper_account.config_path), duckdb_path=str(paper_account.db_path))

    with dg.instance_for_test() as instance:
        # launched as from the UI's launchpad with nothing filled in
        stop = _job("manual_emergency_stop_job", gradient).execute_in_process(instance=instance)
        assert stop.success
        assert trading.account_state().positions == {} and trading.open_orders() == []
        with book.connect(paper_account.db_path) as conn:
            assert is_halted(conn)
            newest = halt_history(conn)[0]
        assert newest.halted and newest.source == "ui" and newest.reason == "emergency stop from the Dagster UI"
        assert len(alert_receiver.posts) == 1 and "EMERGENCY STOP" in alert_receiver.posts[0]["json"]["title"]

        resume = _job("resume_trading_job", gradient)
        # no confirmation, or a near miss: the run fails, says why, and the halt stays
        for cfg in ({}, {"confirm": "resume"}, {"confirm": "RESUME "}):
            r = resume.execute_in_process(instance=instance, raise_on_error=False,
                                          run_config={"ops": {"resume_trading": {"config": cfg}}} if cfg else None)
            assert not r.success and "type RESUME exactly" in _failure(r)
            with book.connect(paper_account.db_path) as conn:
                assert is_halted(conn)

        r = resume.execute_in_process(instance=instance, run_config={"ops": {"resume_trading": {"config": {
            "confirm": "RESUME", "reason": "checked the book after the stop"}}}})
        assert r.success
        with book.connect(paper_account.db_path) as conn:
            assert not is_halted(conn)
            newest = halt_history(conn)[0]
            from gradient_pipeline.book.ledger import table_frame

            hwm = table_frame(conn, "high_water_mark").iloc[0]
        assert not newest.halted and newest.source == "ui" and newest.reason == "checked the book after the stop"
        assert hwm["reason"].startswith("rebase") and abs(hwm["hwm_usd"] - trading.account_state().account_value) < 1e-6

        # resuming when not halted changes nothing
        with book.connect(paper_account.db_path) as conn:
            before = len(halt_history(conn))
        again = resume.execute_in_process(instance=instance, run_config={"ops": {"resume_trading": {"config": {
            "confirm": "RESUME"}}}})
        assert again.success
        with book.connect(paper_account.db_path) as conn:
            assert len(halt_history(conn)) == before
