"""`gradient-pipeline book …`: the operations book from the command line (where it is, migrations, old-layout copy)."""

from __future__ import annotations

import argparse


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("book", help="the operations book (ledger and safety state): info, migrate, backup")
    sub = p.add_subparsers(dest="book_command", required=True, metavar="ACTION")
    info = sub.add_parser("info", help="where the book is (password hidden), its schema revision, row counts")
    info.set_defaults(handler=_info)
    m = sub.add_parser(
        "migrate",
        help="apply the book's schema migrations; with --from-duckdb PATH also copy an old-layout DuckDB file's "
        "ledger and safety tables into the book (idempotent)",
    )
    m.add_argument("--from-duckdb", metavar="PATH", default=None,
                   help="a DuckDB file written before the book existed (read-only; nothing in it changes)")
    m.set_defaults(handler=_migrate)
    b = sub.add_parser("backup", help="a consistent copy of the book while the pipeline runs (SQLite online backup, "
                       "or pg_dump for PostgreSQL) into a folder")
    b.add_argument("--to", default="backups", help="folder for gradient-book-<UTC time>.sqlite|.dump (default backups)")
    b.set_defaults(handler=_backup)


def _where():
    import os

    from gradient_pipeline.config import load_config

    return os.environ.get("GRADIENT_DUCKDB_PATH") or load_config().resolved_duckdb_path


def _info(args) -> int:
    import sqlalchemy as sa

    from gradient_pipeline import book
    from gradient_pipeline.book.engine import current_revision
    from gradient_pipeline.book.schema import OPERATIONAL_TABLES, metadata

    where = _where()
    print(f"book: {book.redact_url(book.book_url(where))}")
    with book.connect(where) as conn:
        print(f"schema revision: {current_revision(conn)}")
        with conn.begin():
            for name in OPERATIONAL_TABLES:
                n = conn.execute(sa.select(sa.func.count()).select_from(metadata.tables[name])).scalar_one()
                print(f"  {name:18} {n:>8} rows")
    return 0


def _migrate(args) -> int:
    from gradient_pipeline import book
    from gradient_pipeline.book.engine import current_revision
    from gradient_pipeline.book.migrate_duckdb import migrate_from_duckdb

    where = _where()
    print(f"book: {book.redact_url(book.book_url(where))}")
    with book.connect(where) as conn:  # opening applies the migrations
        print(f"schema at revision {current_revision(conn)} (head)")
        if args.from_duckdb:
            print(f"copying operational tables from {args.from_duckdb}:")
            for c in migrate_from_duckdb(args.from_duckdb, conn):
                print("  " + c.line())
    return 0


def _backup(args) -> int:
    from gradient_pipeline import book
    from gradient_pipeline.book.backup import backup_book

    where = _where()
    url = book.book_url(where)
    with book.connect(where):  # opening applies any pending migration, so the copy is at head
        pass
    path = backup_book(url, args.to)
    print(f"book backup: {book.redact_url(url)} → {path} ({path.stat().st_size:,} bytes)")
    return 0
