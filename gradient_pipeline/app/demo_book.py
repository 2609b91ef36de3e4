"""Where the last `gradient-pipeline demo` left its configuration and book, for `status --demo` / `trades --demo`.

The demo writes `<workdir>/gradient_demo.json` (its paper configuration), `<workdir>/gradient_demo.duckdb` (the
book is the SQLite file beside it, unless `GRADIENT_BOOK_URL` points elsewhere) and `<workdir>/demo_run.json`
(the paper account's public address and when it ran). The local exchange it traded on is gone once the demo ends,
so every `--demo` view works from the book alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

DEFAULT_WORKDIR = "data/demo"  # the demo's default --workdir (relative to the current directory, like the demo)
CONFIG_FILE = "gradient_demo.json"
RUN_FILE = "demo_run.json"


@dataclass(frozen=True)
class DemoBook:
    workdir: Path
    config_path: Path
    db_path: str
    account: str | None  # the demo's paper master address (public), None for a demo older than this file


def find_demo(workdir: str | Path = DEFAULT_WORKDIR) -> DemoBook:
    """The last demo in `workdir`, or a clear error saying how to make one."""
    work = Path(workdir).resolve()
    cfg_path = work / CONFIG_FILE
    if not cfg_path.is_file():
        raise FileNotFoundError(f"no demo found in {work} (no {CONFIG_FILE}); run `uv run gradient-pipeline demo` "
                                "first, or pass --demo-dir with the demo's --workdir")
    try:
        db_path = json.loads(cfg_path.read_text())["duckdb_path"]
    except (ValueError, KeyError) as err:
        raise ValueError(f"{cfg_path}: not a demo configuration ({type(err).__name__}: {err})") from None
    account = None
    run_file = work / RUN_FILE
    if run_file.is_file():
        account = json.loads(run_file.read_text()).get("account")
    return DemoBook(work, cfg_path, str(db_path), account)
