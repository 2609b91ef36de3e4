"""`gradient-pipeline book backup`: a copy that holds what the book held, on both backends."""

from __future__ import annotations

import datetime as dt
import subprocess

from gradient_pipeline.cli import main


def test_book_backup_copies_the_ledger_and_the_halt(book_backend, tmp_path, monkeypatch, capsys):
    from gradient_pipeline import book
    from gradient_pipeline.book import halt, ledger

    db = tmp_path / "gradient.duckdb"
    monkeypatch.setenv("GRADIENT_DUCKDB_PATH", str(db))
    with book.connect(db) as conn:
        ledger.start_rebalance(conn, "rb-1", dt.datetime(2025, 5, 1), "paper", "local", "0xabc", 10_000.0)
        halt.set_halt(conn, "drill", "operator")
    assert main(["book", "backup", "--to", str(tmp_path / "backups")]) == 0
    out = capsys.readouterr().out
    (copy,) = (tmp_path / "backups").iterdir()
    assert str(copy) in out and "password" not in out
    if book_backend == "sqlite":
        with book.connect(f"sqlite:///{copy}") as conn:
            assert ledger.get_rebalance(conn, "rb-1")["capital_usd"] == 10_000.0
            assert halt.is_halted(conn)
    else:  # a custom-format dump that pg_restore can read, holding both tables' rows
        listing = subprocess.run(["pg_restore", "-l", str(copy)], capture_output=True, text=True, check=True).stdout
        assert "TABLE DATA public rebalances" in listing and "TABLE DATA public halt_state" in listing
