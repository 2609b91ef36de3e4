"""Copy the operational tables of an old-layout DuckDB file into the operations book — idempotently.

Before the book, the ledger and the safety state lived in the DuckDB file beside the analytics: `rebalances`,
`orders`, `fills`, `positions`, `equity`, `high_water_mark`, `halt_state`, `alerts_state`, `alerts_sent`. This copies
each table that exists (DuckDB opened read-only; nothing in it changes) and says what it did:
- keyed tables: rows whose key is already in the book are left as they are (the book wins; a re-run copies 0);
- `halt_state` (the halt history, newest row = current state) is copied only into a book with no halt history, or
  recognised as already copied — appending old rows after newer ones would change the current state;
- `alerts_sent` (a log without a key): rows already present (same time, key, status) are skipped.
Everything is one transaction: either the whole copy lands or nothing does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gradient_pipeline.book._values import row
from gradient_pipeline.book.engine import insert, unit
from gradient_pipeline.book.schema import alerts_sent, halt_state, metadata

KEYED = ("rebalances", "orders", "fills", "positions", "equity", "high_water_mark", "alerts_state")
OLD_TABLES = (*KEYED, "halt_state", "alerts_sent")


@dataclass
class Copied:
    table: str
    found: int
    copied: int
    note: str = ""

    def line(self) -> str:
        tail = f" ({self.note})" if self.note else ""
        return f"{self.table:16} {self.found:>8} in DuckDB  {self.copied:>8} copied{tail}"


def _old_rows(duck, table: str, columns: list[str]) -> list[dict] | None:
    have = {r[0] for r in duck.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]).fetchall()}
    if not have:
        return None
    cols = [c for c in columns if c in have]
    order = " ORDER BY rowid"
    df = duck.execute(f"SELECT {', '.join(cols)} FROM {table}{order}").df()
    return [row(r) for r in df.to_dict("records")]


def migrate_from_duckdb(duckdb_path: str | Path, conn: Connection) -> list[Copied]:
    """Copy every old-layout operational table found in `duckdb_path` into the book behind `conn`."""
    import duckdb

    p = Path(duckdb_path)
    if not p.is_file():
        raise FileNotFoundError(f"no DuckDB file at {p}")
    out: list[Copied] = []
    duck = duckdb.connect(str(p), read_only=True)
    try:
        with unit(conn, write=True):
            for name in KEYED:
                table = metadata.tables[name]
                rows = _old_rows(duck, name, [c.name for c in table.columns])
                if rows is None:
                    continue
                copied = 0
                if rows:  # counted, not rowcount: executemany rowcounts differ between drivers
                    keys = [c.name for c in table.primary_key.columns]
                    count = sa.select(sa.func.count()).select_from(table)
                    before = conn.execute(count).scalar_one()
                    conn.execute(insert(conn, table).on_conflict_do_nothing(index_elements=keys), rows)
                    copied = conn.execute(count).scalar_one() - before
                out.append(Copied(name, len(rows), copied, "" if copied == len(rows) else
                                  f"{len(rows) - copied} already in the book, kept as they are"))
            rows = _old_rows(duck, "halt_state", ["changed_at", "halted", "reason", "source"])
            if rows is not None:
                existing = [tuple(r) for r in conn.execute(sa.select(
                    halt_state.c.changed_at, halt_state.c.halted, halt_state.c.reason, halt_state.c.source)
                    .order_by(halt_state.c.id)).fetchall()]
                old = [(r["changed_at"], bool(r["halted"]), r["reason"], r["source"]) for r in rows]
                if not existing:
                    if rows:
                        conn.execute(halt_state.insert(), [dict(zip(("changed_at", "halted", "reason", "source"), o))
                                                           for o in old])
                    out.append(Copied("halt_state", len(rows), len(rows)))
                elif existing[: len(old)] == old:
                    out.append(Copied("halt_state", len(rows), 0, "already copied"))
                else:
                    out.append(Copied("halt_state", len(rows), 0, "NOT copied: the book already has its own halt "
                                      "history (appending older rows would change the current halt state)"))
            rows = _old_rows(duck, "alerts_sent", [c.name for c in alerts_sent.columns if c.name != "id"])
            if rows is not None:
                seen = {tuple(r) for r in conn.execute(sa.select(alerts_sent.c.sent_at, alerts_sent.c.key,
                                                                  alerts_sent.c.status)).fetchall()}
                new = [r for r in rows if (r["sent_at"], r["key"], r["status"]) not in seen]
                if new:
                    conn.execute(alerts_sent.insert(), new)
                out.append(Copied("alerts_sent", len(rows), len(new), "" if len(new) == len(rows) else
                                  f"{len(rows) - len(new)} already in the book"))
    finally:
        duck.close()
    return out
