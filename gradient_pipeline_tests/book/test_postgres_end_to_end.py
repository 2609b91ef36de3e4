"""End to end on PostgreSQL: the demo's market-data windows, signal assets and paper rebalance run through a Dagster
instance whose run, event-log and schedule storage is PostgreSQL (dagster-postgres, the shipped production
dagster.yaml), with the operations book in another database on the same server."""

from __future__ import annotations

import os
import subprocess
import sys

import sqlalchemy as sa

from gradient_pipeline_tests.conftest import pg_database
from gradient_pipeline_tests.test_dagster_home import production_home


def test_demo_cycle_through_a_postgres_instance_with_the_book_on_the_same_server(tmp_path):
    with pg_database("gradient_dagster") as dagster_url, pg_database("gradient_book") as book_url:
        env_extra, before = production_home(tmp_path, dagster_url)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADIENT_", "DAGSTER_"))}
        env.update(env_extra, TZ="UTC", GRADIENT_BOOK_URL=book_url)
        out = subprocess.run([sys.executable, "-m", "gradient_pipeline.cli", "demo", "--cycles", "1",
                              "--workdir", str(tmp_path / "demo")], env=env, capture_output=True, text=True,
                             timeout=1200, check=False)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        assert "→ rebalance complete" in out.stdout and "rebalances: 1 (complete 1)" in out.stdout
        assert "postgresql+psycopg://" in out.stdout and book_url.split("@")[-1] in out.stdout
        assert (tmp_path / "prod_home" / "dagster.yaml").read_bytes() == before
        assert not (tmp_path / "demo" / "gradient_demo.book.sqlite").exists()  # the book is PostgreSQL

        dagster = sa.create_engine(dagster_url, poolclass=sa.pool.NullPool)
        with dagster.connect() as c:
            runs = c.execute(sa.text("SELECT pipeline_name, status FROM runs")).fetchall()
            events = c.execute(sa.text("SELECT count(*) FROM event_logs")).scalar_one()
        dagster.dispose()
        jobs = {name for name, status in runs if status == "SUCCESS"}
        assert {"trading_window_job", "rebalance_job"} <= jobs, runs
        assert events > 50  # the runs' events are in PostgreSQL (83 for one demo cycle when measured)

        book = sa.create_engine(book_url, poolclass=sa.pool.NullPool)
        with book.connect() as c:
            reb = c.execute(sa.text("SELECT status, n_orders, n_fills FROM rebalances")).fetchall()
            fills = c.execute(sa.text("SELECT count(*) FROM fills")).scalar_one()
            eq = c.execute(sa.text("SELECT count(*) FROM equity WHERE source = 'rebalance_end'")).scalar_one()
        book.dispose()
        assert [r[0] for r in reb] == ["complete"] and reb[0][1] > 0 and fills >= reb[0][1] and eq == 1
