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


def demo_ui_env(workdir: str | Path = DEFAULT_WORKDIR) -> dict[str, str]:
    """The environment `gradient-pipeline ui --demo` starts Dagster with: the demo's Dagster home, configuration,
    DuckDB file and partition range (its traded windows, from `demo_run.json`), so the UI's partitioned assets show
    the demo's windows (all materialised) instead of years of missing partitions, and the dashboard assets read the
    demo's book."""
    demo = find_demo(workdir)
    run = json.loads((demo.workdir / RUN_FILE).read_text()) if (demo.workdir / RUN_FILE).is_file() else {}
    env = {"GRADIENT_CONFIG": str(demo.config_path), "GRADIENT_DUCKDB_PATH": demo.db_path}
    if run.get("dagster_home"):
        env["DAGSTER_HOME"] = str(run["dagster_home"])
    if run.get("partitions_start") and run.get("partitions_end"):
        env["GRADIENT_PARTITIONS_START"] = str(run["partitions_start"])
        env["GRADIENT_PARTITIONS_END"] = str(run["partitions_end"])
    if demo.account:
        env["GRADIENT_ACCOUNT_ADDRESS"] = demo.account  # public; no key: the UI cannot trade the demo account
    return env
