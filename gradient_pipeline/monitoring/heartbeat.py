"""The drawdown check's heartbeat: the last evaluation (when, what it decided, the breaching streak, the last
equity reading and the mark it used). Written by the drawdown sensor every tick; read by the next tick, by
`status` and by `gradient-pipeline watchdog` (cron, independent of the Dagster daemon).

Stored in the operations book as the `drawdown_evaluation` heartbeat (its `detail` holds this record as JSON), so
the watchdog on another host or container sees it; the write waits at most `WRITE_WAIT_S` for another writer
(SQLite) and the sensor never blocks on a rebalance. `db_path` names the book as everywhere else: the DuckDB
path it sits beside, unless `GRADIENT_BOOK_URL` points elsewhere.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import asdict, dataclass, fields

HEARTBEAT_NAME = "drawdown_evaluation"
WRITE_WAIT_S = 2.0


@dataclass
class Heartbeat:
    evaluated_at: dt.datetime  # wall clock, naive UTC, of the last evaluation (any outcome)
    level: str  # ok | warn | stop | cannot_evaluate
    reason: str = ""
    last_ok_at: dt.datetime | None = None  # last evaluation that reached a level (not cannot_evaluate)
    last_success_at: dt.datetime | None = None  # last successful account read
    equity: float | None = None
    equity_at: dt.datetime | None = None
    hwm: float | None = None  # the mark the check used (survives a locked book)
    drawdown_pct: float | None = None
    breaching_ticks: int = 0
    halted: bool | None = None  # last known from the book
    warned: bool | None = None
    alarm_alerted_at: dt.datetime | None = None  # last "cannot evaluate" alert sent by the sensor itself

    def as_dict(self) -> dict:
        return asdict(self)


_TIMES = {"evaluated_at", "last_ok_at", "last_success_at", "equity_at", "alarm_alerted_at"}


def write_heartbeat(db_path: str | os.PathLike, hb: Heartbeat) -> None:
    from gradient_pipeline.book import connect
    from gradient_pipeline.book.heartbeats import beat

    data = {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in hb.as_dict().items()}
    with connect(db_path) as conn:
        beat(conn, HEARTBEAT_NAME, json.dumps(data), at=hb.evaluated_at, wait_s=WRITE_WAIT_S)


def read_heartbeat(db_path: str | os.PathLike) -> Heartbeat | None:
    """The last evaluation, or None if there never was one. A corrupt record raises ValueError naming it."""
    from gradient_pipeline.book import connect
    from gradient_pipeline.book.heartbeats import last_beat

    with connect(db_path) as conn:
        row = last_beat(conn, HEARTBEAT_NAME)
    if row is None or not row[1]:
        return None
    try:
        raw = json.loads(row[1])
    except ValueError as err:
        raise ValueError(f"drawdown heartbeat in the operations book is not valid JSON: {err}") from None
    known = {f.name for f in fields(Heartbeat)}
    data = {k: v for k, v in raw.items() if k in known}
    for k in _TIMES & data.keys():
        if data[k] is not None:
            data[k] = dt.datetime.fromisoformat(data[k])
    return Heartbeat(**data)


def rebase_heartbeat_hwm(db_path: str | os.PathLike, value: float) -> None:
    """`resume` re-bases the high-water mark: the check's own copy follows, and the breaching streak restarts."""
    hb = read_heartbeat(db_path)
    if hb is None:
        return
    hb.hwm = float(value)
    hb.breaching_ticks = 0
    write_heartbeat(db_path, hb)
