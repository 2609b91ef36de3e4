"""The 4h UTC partitions shared by every time-partitioned asset.

The range is fixed when the code location loads, so the UI and all runs agree. It comes from, in order:
`GRADIENT_PARTITIONS_START` / `GRADIENT_PARTITIONS_END`, else the configuration file's `data.partitions_start` /
`data.partitions_end` (`$GRADIENT_CONFIG`, default `config/gradient_live.json`), else 2023-01-01 to now. The demo's
configuration sets both to its own history, so `gradient-pipeline ui --demo` shows the demo's windows, not
thousands of "missing" partitions up to today.
"""

import json
import os

import dagster as dg

from gradient_pipeline.timegrid import PARTITION_FMT

DEFAULT_START = "2023-01-01-00:00"


def _configured_range() -> tuple[str | None, str | None]:
    """`data.partitions_start/end` from the configuration file, read as plain JSON: an unreadable or invalid file
    is left for `load_config` to report with its full message when a run or command loads it."""
    from gradient_pipeline.config import config_path

    try:
        data = json.loads(config_path().read_text()).get("data") or {}
    except (OSError, ValueError, AttributeError):
        return None, None
    start, end = data.get("partitions_start"), data.get("partitions_end")
    return (start if isinstance(start, str) else None), (end if isinstance(end, str) else None)


_cfg_start, _cfg_end = _configured_range()
PARTITIONS_START = os.environ.get("GRADIENT_PARTITIONS_START") or _cfg_start or DEFAULT_START
PARTITIONS_END = os.environ.get("GRADIENT_PARTITIONS_END") or _cfg_end or None

four_hourly = dg.TimeWindowPartitionsDefinition(
    start=PARTITIONS_START,
    end=PARTITIONS_END,
    fmt=PARTITION_FMT,
    cron_schedule="0 */4 * * *",
    timezone="UTC",
)
