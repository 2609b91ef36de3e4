"""DAGSTER_HOME/dagster.yaml belongs to the operator: created from the dev template only when missing, never
overwritten; the shipped production file loads (dagster-postgres, credentials from the environment) and stays
byte-identical through `backfill`, `status` and `rebalance`."""

from __future__ import annotations

import os
import subprocess
import sys

import dagster as dg
import sqlalchemy as sa

from gradient_pipeline.app.dagster_home import DEV_TEMPLATE, ensure_dagster_home
from gradient_pipeline_tests.conftest import REPO_ROOT, pg_database

PRODUCTION = REPO_ROOT / "deploy" / "dagster.production.yaml"


def test_created_when_missing_and_never_overwritten(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    home = ensure_dagster_home()
    assert (home / "dagster.yaml").read_bytes() == DEV_TEMPLATE.read_bytes()
    mine = b"# the operator's own file\ntelemetry:\n  enabled: false\n"
    (home / "dagster.yaml").write_bytes(mine)
    with caplog.at_level("WARNING"):
        ensure_dagster_home()
    assert (home / "dagster.yaml").read_bytes() == mine
    assert "differs from the dev template" in caplog.text


def production_home(tmp_path, pg_url: str) -> tuple[dict, bytes]:
    """DAGSTER_HOME holding the shipped production file (its two local directories pointed into tmp_path) and the
    environment with the PostgreSQL credentials it reads."""
    home = tmp_path / "prod_home"
    home.mkdir()
    text = PRODUCTION.read_text().replace("/var/lib/gradient/dagster", str(tmp_path / "var"))
    (home / "dagster.yaml").write_text(text)
    url = sa.engine.make_url(pg_url)
    env = {"DAGSTER_HOME": str(home), "DAGSTER_PG_HOST": url.host or "127.0.0.1",
           "DAGSTER_PG_USERNAME": url.username or "postgres", "DAGSTER_PG_PASSWORD": url.password or "",
           "DAGSTER_PG_DB": url.database}
    return env, (home / "dagster.yaml").read_bytes()


def test_production_instance_loads_with_postgres_storage(tmp_path, monkeypatch):
    with pg_database("gradient_dagster") as url:
        env, _ = production_home(tmp_path, url)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        with dg.DagsterInstance.get() as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
            assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
            assert instance.get_runs() == []


def test_production_file_is_byte_identical_after_backfill_status_rebalance(tmp_path):
    from gradient_pipeline.demo_data import FUTURES_DIR

    with pg_database("gradient_dagster") as url:
        env_extra, before = production_home(tmp_path, url)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADIENT_", "DAGSTER_"))}
        env.update(env_extra, TZ="UTC", GRADIENT_DUCKDB_PATH=str(tmp_path / "g.duckdb"))

        def cli(*args):
            return subprocess.run([sys.executable, "-m", "gradient_pipeline.cli", *args], env=env,
                                  capture_output=True, text=True, timeout=600, check=False)

        back = cli("backfill", "--source", "freqtrade", "--path", str(FUTURES_DIR), "--start", "2025-04-01",
                   "--end", "2025-04-01T12:00")
        assert back.returncode == 0, back.stdout[-2000:] + back.stderr[-2000:]
        assert "differs from the dev template" in back.stderr  # said once, file left alone
        status = cli("status", "--offline")
        # offline there is no live account read: status says so with its documented exit code 3 (cannot evaluate)
        assert status.returncode == 3 and "mode:" in status.stdout, status.stdout[-2000:] + status.stderr[-2000:]
        cli("rebalance")  # refuses (no account configured) — but runs through the instance
        assert (tmp_path / "prod_home" / "dagster.yaml").read_bytes() == before
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with engine.connect() as c:  # the runs went to PostgreSQL, not to SQLite files under DAGSTER_HOME
            jobs = {r[0] for r in c.execute(sa.text("SELECT pipeline_name FROM runs"))}
        engine.dispose()
        assert {"market_data_job", "rebalance_job"} <= jobs, jobs
        assert not (tmp_path / "prod_home" / "history").exists()
