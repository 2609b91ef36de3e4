"""`gradient-pipeline book migrate --from-duckdb PATH`: an old-layout DuckDB file's ledger and safety state land
in the book (both backends), a second run copies nothing, and the CLI says what it copied."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

from gradient_pipeline import book
from gradient_pipeline.book import alerts, equity, halt, ledger
from gradient_pipeline.book.migrate_duckdb import migrate_from_duckdb

OLD_DDL = (Path(__file__).parent / "old_layout.sql").read_text()


def old_file(path: Path) -> Path:
    with duckdb.connect(str(path)) as c:
        c.execute(OLD_DDL)
        c.execute("INSERT INTO rebalances VALUES ('r1', '2025-03-01 00:00', '2025-03-01 04:00', 'paper', 'local', "
                  "'0xabc', 'complete', NULL, 1000, 1, 1, 1, 'run1', '2025-03-01 04:05', '2025-03-01 04:06')")
        c.execute("INSERT INTO orders VALUES ('c1', 'r1', 'BTC', 'open', 0, 'buy', 0.01, 85000, 84900, false, 'Ioc', "
                  "849, 'filled', 5, 0.01, 84950, NULL, '2025-03-01 04:05', '2025-03-01 04:05')")
        c.execute("INSERT INTO fills VALUES (77, 5, 'c1', 'r1', 'BTC', 'buy', 84950, 0.01, 849.5, 0.38, 'USDC', "
                  "'taker', 0, 'Open Long', '2025-03-01 04:05', '0xh', '2025-03-01 04:05')")
        c.execute("INSERT INTO positions VALUES ('2025-03-01 04:06', 'rebalance_end', 'r1', 'BTC', 0.01, 84950, 849.5,"
                  " 0, 0.85, 0.08)")
        c.execute("INSERT INTO equity VALUES ('2025-03-01 04:06', 'rebalance_end', 'r1', 1000, 849.5, 849.5, 849.5, 1)")
        c.execute("INSERT INTO high_water_mark VALUES ('account', 1010, '2025-03-01 08:00', '2025-03-01 08:01', "
                  "'new_high')")
        c.execute("INSERT INTO halt_state VALUES ('2025-03-02 00:00', true, 'drawdown 21%', 'drawdown_sensor'), "
                  "('2025-03-02 06:00', false, 'resumed by operator', 'operator'), "
                  "('2025-03-03 00:00', true, 'manual pause', 'operator')")
        c.execute("INSERT INTO alerts_state VALUES ('drawdown_warn', 'drawdown_warn', true, '2025-03-01 12:00', "
                  "'2025-03-01 12:00', NULL, 1)")
        c.execute("INSERT INTO alerts_sent VALUES ('2025-03-01 12:00', 'drawdown_warn', 'drawdown_warn', 'warning', "
                  "'t', 'b', 'sent', 1)")
    return path


def test_old_layout_is_copied_once(book_conn, tmp_path):
    src = old_file(tmp_path / "old.duckdb")
    first = {c.table: c for c in migrate_from_duckdb(src, book_conn)}
    assert {t: c.copied for t, c in first.items()} == {
        "rebalances": 1, "orders": 1, "fills": 1, "positions": 1, "equity": 1, "high_water_mark": 1,
        "alerts_state": 1, "halt_state": 3, "alerts_sent": 1}
    # what the code reads now is what the old file said
    st = halt.halt_status(book_conn)
    assert st.halted and st.reason == "manual pause"
    assert equity.high_water_mark(book_conn)[0] == 1010.0
    assert alerts.is_active(book_conn, "drawdown_warn")
    assert ledger.get_rebalance(book_conn, "r1")["status"] == "complete"
    assert ledger.fills_for(book_conn, "r1")["tid"].tolist() == [77]
    # idempotent: a second run copies nothing and changes nothing
    again = {c.table: c for c in migrate_from_duckdb(src, book_conn)}
    assert all(c.copied == 0 for c in again.values()), again
    assert again["halt_state"].note == "already copied"
    assert len(halt.halt_history(book_conn)) == 3


def test_a_book_with_its_own_halt_history_keeps_it(book_conn, tmp_path):
    src = old_file(tmp_path / "old.duckdb")
    halt.set_halt(book_conn, "set in the book", "operator")
    res = {c.table: c for c in migrate_from_duckdb(src, book_conn)}
    assert res["halt_state"].copied == 0 and "NOT copied" in res["halt_state"].note
    assert halt.halt_status(book_conn).reason == "set in the book"


def test_cli_prints_counts(tmp_path):
    src = old_file(tmp_path / "old.duckdb")
    env = {**os.environ, "GRADIENT_DUCKDB_PATH": str(tmp_path / "new" / "gradient.duckdb"), "TZ": "UTC"}
    env.pop("GRADIENT_BOOK_URL", None)
    run = lambda: subprocess.run([sys.executable, "-m", "gradient_pipeline.cli", "book", "migrate",  # noqa: E731
                                  "--from-duckdb", str(src)], env=env, capture_output=True, text=True, timeout=120)
    out = run()
    assert out.returncode == 0, out.stderr
    assert "gradient.book.sqlite" in out.stdout and "halt_state" in out.stdout
    assert "       3 in DuckDB         3 copied" in out.stdout
    out2 = run()
    assert "       3 in DuckDB         0 copied (already copied)" in out2.stdout, out2.stdout
    with book.connect(tmp_path / "new" / "gradient.duckdb") as conn:
        assert halt.is_halted(conn)
