"""`rebalance_job` in Dagster: refuses stale or unchecked targets, trades checked ones, skips visibly when busy,
and never lets the private key into logs, Dagster event records, DuckDB or CLI output.

The upstream here is a small partitioned `target_weights` asset with a blocking check the test can make fail:
the real strategy needs months of history, and what is under test is the job's gate and trading path, which are
the real ones (real job, real Dagster instance, real local exchange, real SDK signing).
"""


import logging
import subprocess
import sys

import dagster as dg
import pandas as pd
import pytest

from gradient_pipeline.defs.execution.definitions import defs as execution_defs
from gradient_pipeline.defs.execution.jobs import rebalance_run_config
from gradient_pipeline.defs.partitions import four_hourly
from gradient_pipeline.defs.resources import GradientResource
from gradient_pipeline.signals import tables as signal_tables
from gradient_pipeline.execution.runner import rebalance_lock
from gradient_pipeline import book
from gradient_pipeline.book import ledger
from gradient_pipeline.book.schema import OPERATIONAL_TABLES
from gradient_pipeline.storage.db import connect, replace_rows
from gradient_pipeline_tests.execution.conftest import ADV, TARGETS
from gradient_pipeline_tests.execution.test_runner_paper import exchange_orders_per_coin

LATEST = "2025-02-28-20:00"
OLDER = "2025-02-28-16:00"


class TargetsConfig(dg.Config):
    check_passes: bool = True


@dg.asset(partitions_def=four_hourly, name="target_weights")
def target_weights_standin(context: dg.AssetExecutionContext, gradient: GradientResource) -> None:
    ts = pd.Timestamp(context.partition_time_window.start).tz_localize(None)
    rows = pd.DataFrame([
        {"rebalance_time": ts + pd.Timedelta(hours=4), "ts": ts, "coin": c, "weight": w, "score": w, "sigma": 0.01,
         "adv_usd": ADV[c], "side": "long" if w > 0 else "short", "rank": i}
        for i, (c, w) in enumerate(TARGETS.items())
    ])
    window = {"rebalance_time": ts + pd.Timedelta(hours=4), "ts": ts, "is_rebalance": True, "n_eligible": 5, "k": 2,
              "n_long": 2, "n_short": 3, "long_gross": 0.16, "short_gross": 0.16, "net": 0.0, "turnover": 0.0,
              "n_capped": 0, "shrunk": False, "vol_scale": 1.0, "config_key": "test", "computed_at": ts}
    with gradient.db() as conn:
        signal_tables.ensure(conn)
        replace_rows(conn, "target_weights", rows, "ts = ?", [ts])
        cols = [r[0] for r in conn.execute("DESCRIBE target_windows").fetchall()]
        frame = pd.DataFrame([{c: window.get(c) for c in cols}])
        replace_rows(conn, "target_windows", frame, "ts = ?", [ts])


@dg.asset_check(asset="target_weights", blocking=True)
def standin_invariants(config: TargetsConfig) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=config.check_passes)


@pytest.fixture
def dagster_env(paper, tmp_path, monkeypatch):
    cfg_path = tmp_path / "gradient.json"
    cfg_path.write_text(paper.cfg.model_dump_json())
    monkeypatch.setenv("GRADIENT_CONFIG", str(cfg_path))
    defs = dg.Definitions.merge(
        execution_defs,
        dg.Definitions(assets=[target_weights_standin], asset_checks=[standin_invariants],
                       resources={"gradient": GradientResource(config_path=str(cfg_path))}),
    )
    instance = dg.DagsterInstance.ephemeral()
    return paper, defs, instance


def materialize(defs, instance, key, passes=True):
    job = defs.get_implicit_global_asset_job_def()
    return job.execute_in_process(
        instance=instance, partition_key=key, raise_on_error=False,
        asset_selection=[dg.AssetKey("target_weights")],
        run_config={"ops": {"target_weights_standin_invariants": {"config": {"check_passes": passes}}}},
    )


def run_rebalance(defs, instance, window=""):
    return defs.get_job_def("rebalance_job").execute_in_process(
        instance=instance, run_config=rebalance_run_config(window) if window else None, raise_on_error=False)


def rebalances(paper):
    with book.connect(paper.db_path) as conn:
        return ledger.table_frame(conn, "rebalances")


def test_trades_the_latest_checked_window(dagster_env):
    paper, defs, instance = dagster_env
    assert materialize(defs, instance, LATEST).success
    result = run_rebalance(defs, instance)
    assert result.success, result.get_failed_step_keys() if hasattr(result, "get_failed_step_keys") else ""
    out = result.output_for_node("rebalance")
    assert out["status"] == "complete" and out["orders"] == len(TARGETS)
    mats = instance.fetch_materializations(dg.AssetKey("executed_orders"), limit=5).records
    assert len(mats) == 1 and mats[0].asset_materialization.metadata["status"].value == "complete"
    md = mats[0].asset_materialization.metadata  # the cycle's latency, measured every run (hand-launched: no tick)
    assert md["latency/trading_s"].value > 0 and md["latency/total_s"].value >= md["latency/trading_s"].value
    assert "close_to_tick" in md["latency/missing"].value
    # a second run of the same window trades nothing, and says so: skipped, not an ordinary success
    again = run_rebalance(defs, instance, LATEST)
    assert again.success and again.output_for_node("rebalance")["status"] == "skipped"
    tags = instance.get_run_by_id(again.run_id).tags
    assert tags["gradient/outcome"] == "skipped" and "already rebalanced" in tags["gradient/skip_reason"]
    assert len(instance.fetch_materializations(dg.AssetKey("executed_orders"), limit=5).records) == 1
    assert set(exchange_orders_per_coin(paper.cfg).values()) == {1}


def test_halted_window_is_a_skip_recorded_as_refused(dagster_env):
    from gradient_pipeline.monitoring.halt import set_halt

    paper, defs, instance = dagster_env
    assert materialize(defs, instance, LATEST).success
    with book.connect(paper.db_path) as conn:
        set_halt(conn, "drawdown 21% ≥ 20%", source="test")
    result = run_rebalance(defs, instance, LATEST)
    assert result.success and result.output_for_node("rebalance")["status"] == "skipped"
    tags = instance.get_run_by_id(result.run_id).tags
    assert tags["gradient/outcome"] == "skipped" and "trading halted" in tags["gradient/skip_reason"] and "drawdown 21%" in tags["gradient/skip_reason"]
    row = rebalances(paper).iloc[0]
    assert row["status"] == "refused" and row["reason"].startswith("trading halted")
    assert exchange_orders_per_coin(paper.cfg) == {}


def test_refuses_stale_window(dagster_env):
    paper, defs, instance = dagster_env
    assert materialize(defs, instance, OLDER).success
    result = run_rebalance(defs, instance, OLDER)
    assert not result.success
    reb = rebalances(paper)
    assert list(reb["status"]) == ["refused"] and "stale targets" in reb["reason"][0]
    assert exchange_orders_per_coin(paper.cfg) == {}


def test_refuses_targets_older_than_the_configured_age(dagster_env):
    from gradient_pipeline.defs.execution.gate import window_refusal

    # exchange clock 00:05, window 2025-02-28-20:00 closed at 00:00: 5 minutes old
    now = pd.Timestamp("2025-03-01 00:05")
    assert window_refusal(LATEST, now, 4.0) is None
    assert "target_max_age_hours=0.05" in window_refusal(LATEST, now, 0.05)
    assert "not the latest complete window" in window_refusal(OLDER, now, 4.0)
    paper, defs, instance = dagster_env
    assert materialize(defs, instance, LATEST).success
    paper.handle.advance(3.5)  # still the latest window, but 3h35m old
    cfg_path = __import__("os").environ["GRADIENT_CONFIG"]
    stricter = paper.config(execution={"target_max_age_hours": 1.0})
    __import__("pathlib").Path(cfg_path).write_text(stricter.model_dump_json())
    result = run_rebalance(defs, instance)
    assert not result.success
    assert "target_max_age_hours=1" in rebalances(paper)["reason"][0]
    assert exchange_orders_per_coin(paper.cfg) == {}


def test_refuses_missing_targets(dagster_env):
    paper, defs, instance = dagster_env
    result = run_rebalance(defs, instance)  # latest window never materialised
    assert not result.success
    assert "no materialisation" in rebalances(paper)["reason"][0]
    assert exchange_orders_per_coin(paper.cfg) == {}


def test_refuses_failed_blocking_check(dagster_env):
    paper, defs, instance = dagster_env
    r = materialize(defs, instance, LATEST, passes=False)
    assert not r.success  # the blocking check failed the run, but its rows are in DuckDB …
    with connect(paper.db_path) as conn:
        assert conn.execute("SELECT count(*) FROM target_weights").fetchall()[0][0] == len(TARGETS)
    result = run_rebalance(defs, instance)  # … so the job must ask Dagster, and refuse
    assert not result.success
    reb = rebalances(paper)
    assert list(reb["status"]) == ["refused"] and "did not pass" in reb["reason"][0]
    assert exchange_orders_per_coin(paper.cfg) == {}


def test_concurrent_rebalance_is_skipped_visibly(dagster_env):
    paper, defs, instance = dagster_env
    assert materialize(defs, instance, LATEST).success
    with rebalance_lock(paper.db_path):
        result = run_rebalance(defs, instance)
    assert result.success and result.output_for_node("rebalance")["status"] == "skipped"
    assert instance.get_run_by_id(result.run_id).tags["gradient/skipped"] == "another rebalance is running"
    assert exchange_orders_per_coin(paper.cfg) == {}


def test_private_key_never_leaks(dagster_env, caplog, capfd, tmp_path):
    paper, defs, instance = dagster_env
    key = paper.agent.key.hex()
    needles = {key.lower(), key.lower().removeprefix("0x")}
    caplog.set_level(logging.DEBUG)  # the SDK logs whole /exchange payloads at DEBUG
    assert materialize(defs, instance, LATEST).success
    result = run_rebalance(defs, instance)
    assert result.success

    def clean(text: str, where: str):
        low = text.lower()
        assert not any(n in low for n in needles), f"private key found in {where}"

    clean(caplog.text, "logs")
    out, err = capfd.readouterr()
    clean(out + err, "stdout/stderr")
    for run in instance.get_runs():
        clean("\n".join(str(e) for e in instance.all_logs(run.run_id)), f"Dagster events of {run.job_name}")
        clean(str(run.tags) + str(run.run_config), "run tags/config")
    with connect(paper.db_path) as conn:
        for (table,) in conn.execute("SELECT table_name FROM information_schema.tables").fetchall():
            clean(conn.execute(f"SELECT * FROM {table}").df().to_csv(), f"DuckDB table {table}")
    with book.connect(paper.db_path) as conn:
        for table in OPERATIONAL_TABLES:
            clean(ledger.table_frame(conn, table).to_csv(), f"book table {table}")
    # CLI: a rebalance from the command line (the window is done, or no targets in its instance) prints no key
    env = {**__import__("os").environ, "DAGSTER_HOME": str(tmp_path / "dh"), "GRADIENT_DEBUG": ""}
    cli = subprocess.run([sys.executable, "-m", "gradient_pipeline.cli", "rebalance"], env=env,
                         capture_output=True, text=True, timeout=300, check=False)
    assert "rebalance did not trade" in cli.stdout or "rebalance skipped: window" in cli.stdout, cli.stdout + cli.stderr
    clean(cli.stdout + cli.stderr, "CLI output")
