"""Backfill a range of 4h windows as ONE Dagster run of `market_data_job` (the single-run backfill policy).

The run executes in this process against the given Dagster instance (the project's `DAGSTER_HOME` from the CLI), so
it is recorded there like any other run: it appears in the UI's Runs list with the partition-range tags, and every
window of `candles`, `funding` and `universe` shows as materialised in the partitions view. Executing in-process
means no daemon is needed; DuckDB's lock is still respected (`GradientResource.db` waits for another writer).

Cost: the data work is small (the whole shared directory — 5,623 windows, 3.07 M rows — loads, validates and writes
in ≈ 9 s), but Dagster records a planned and a materialisation event per window per asset (≈ 34 k events for the
full history), one SQLite commit each on the default instance storage, which does not batch planned events for
partition ranges (Postgres storage does). Measured on a busy 2-core box: ≈ 30 min for the full history, ≈ 0.2 s per
window; the bundled demo extract (1,272 windows) takes a few minutes. See bench/bench_backfill.py.
"""

from dataclasses import dataclass

import dagster as dg
import pandas as pd

from gradient_pipeline.config import GradientConfig
from gradient_pipeline.defs.partitions import four_hourly
from gradient_pipeline.marketdata.sources import open_source
from gradient_pipeline.timegrid import BAR, BAR_HOURS, partition_key, utc_naive
from gradient_pipeline import runtags

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
ASSETS = ("candles", "funding", "universe")


class BackfillRangeError(ValueError):
    """The requested range is empty, outside the partitions, or beyond what the source has complete."""


@dataclass
class BackfillPlan:
    first_key: str
    last_key: str
    windows: int
    clipped_end: bool
    source: str


def plan_backfill(cfg: GradientConfig, start, end=None, source: str | None = None, path: str | None = None) -> BackfillPlan:
    """Windows t with start <= t < end (end defaults to, and is clipped at, the source's newest complete window)."""
    src = open_source(cfg, source, path)
    complete_end = src.complete_window_end()
    first = utc_naive(start).ceil(f"{BAR_HOURS}h")
    stop = complete_end if end is None else min(utc_naive(end), complete_end)
    part_start = utc_naive(four_hourly.start)
    if first < part_start:
        raise BackfillRangeError(
            f"--start {first} is before the first partition {partition_key(part_start)} "
            "(set GRADIENT_PARTITIONS_START to cover earlier history)"
        )
    last = (stop - BAR).floor(f"{BAR_HOURS}h")
    if last < first:
        raise BackfillRangeError(
            f"no complete 4h window in [{first}, {stop}) at source {src.name} "
            f"(its newest complete window opens at {complete_end - BAR})"
        )
    return BackfillPlan(
        first_key=partition_key(first),
        last_key=partition_key(last),
        windows=int((last - first) / BAR) + 1,
        clipped_end=end is not None and utc_naive(end) > complete_end,
        source=src.name,
    )


def run_backfill(
    defs: dg.Definitions,
    plan: BackfillPlan,
    instance: dg.DagsterInstance,
    source: str | None = None,
    path: str | None = None,
    resources: dict | None = None,
    prune: bool = False,
    loggers_config: dict | None = None,
) -> dg.ExecuteInProcessResult:
    """Execute `market_data_job` once over the whole planned range (recorded in `instance`).

    `prune`: allow deleting stored rows that the source no longer has (see defs/market_data/assets.py).
    `loggers_config`: run config for Dagster's loggers (the CLI keeps the console quiet; the event log keeps all).
    """
    job = defs.resolve_job_def("market_data_job")
    op_config = {"source": source or "", "freqtrade_dir": path or "", "prune": bool(prune)}
    run_config = {**(loggers_config or {}), "ops": {name: {"config": op_config} for name in ASSETS}}
    tags = {RANGE_START_TAG: plan.first_key, RANGE_END_TAG: plan.last_key, runtags.COMMAND: "backfill"}
    kwargs = {"resources": resources} if resources else {}
    return job.execute_in_process(run_config=run_config, instance=instance, tags=tags, raise_on_error=False, **kwargs)


def failure_reason(error) -> str:
    """The user-facing reason inside a step failure's error info.

    Dagster wraps user-code errors in `DagsterExecutionStepExecutionError` ("Error occurred while executing op …");
    the validation text the operator needs is the innermost cause. Returned as `ClassName: message`.
    """
    while getattr(error, "cause", None) is not None:
        error = error.cause
    message = (error.message or "").strip()
    head, sep, tail = message.partition(": ")
    if sep and error.cls_name and head.split(".")[-1] == error.cls_name:  # "pkg.mod.Class: text" -> "text"
        message = tail
    return f"{error.cls_name}: {message}" if error.cls_name else message


def summarize(result: dg.ExecuteInProcessResult) -> dict:
    """Rows written per asset, check outcomes with their reasons, coins without input, and why steps failed."""
    rows, missing = {}, {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        key = mat.asset_key.to_user_string()
        rows.setdefault(key, mat.metadata["dagster/row_count"].value)
        if "missing_coins" in mat.metadata and mat.metadata["missing_coins"].value:
            missing.setdefault(key, mat.metadata["missing_coins"].value)
    checks, reasons = {}, {}
    for e in result.get_asset_check_evaluations():
        checks[e.check_name] = e.passed
        text = e.description or (e.metadata["reason"].value if "reason" in e.metadata else "")
        reasons[e.check_name] = text
    failures = []
    for ev in result.all_events:
        if ev.is_step_failure:
            error = ev.step_failure_data.error
            if error is not None and error.cls_name == "DagsterAssetCheckFailedError":
                continue  # the failed blocking check is reported with its own reason
            failures.append((ev.step_key, failure_reason(error) if error is not None else "unknown error"))
    started = {ev.step_key for ev in result.all_events if ev.event_type_value == "STEP_START"}
    skipped = [a for a in ASSETS if a not in started]  # not run because an upstream step or blocking check failed
    return {"run_id": result.run_id, "success": result.success and all(checks.values()), "rows": rows,
            "checks": checks, "check_reasons": reasons, "missing": missing, "failures": failures,
            "skipped": skipped}
