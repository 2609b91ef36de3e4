"""The drawdown check's heartbeat: the last evaluation (when, what it decided, the breaching streak, the last
equity reading and the mark it used). Written by the drawdown sensor every tick; read by the next tick, by
`status` and by `gradient-pipeline watchdog` (cron, independent of the Dagster daemon).

Stored as one small JSON document beside the DuckDB file (`<duckdb_path>.drawdown.json`), replaced atomically
(write to a temp file, fsync, rename), so the sensor never waits for — and is never blinded by — a run holding
the DuckDB writer lock. This is the one place to re-point when the operations book holds it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path


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


def heartbeat_path(db_path: str | os.PathLike) -> Path:
    return Path(str(db_path) + ".drawdown.json")


def write_heartbeat(db_path: str | os.PathLike, hb: Heartbeat) -> None:
    path = heartbeat_path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in hb.as_dict().items()}
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_heartbeat(db_path: str | os.PathLike) -> Heartbeat | None:
    """The last evaluation, or None if there never was one. A corrupt file raises ValueError naming it."""
    path = heartbeat_path(db_path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError as err:
        raise ValueError(f"drawdown heartbeat {path} is not valid JSON: {err}") from None
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
