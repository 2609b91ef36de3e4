"""May these targets be traded? (Dagster-side checks the runner cannot do itself.)

A blocking asset check fails the run but does not undo the write: `target_weights` rows of a failed window are
already in DuckDB. So before trading, the rebalance job asks the Dagster instance directly:
1. the window is the latest complete 4h window by the **exchange** clock (stale targets are never traded);
2. `target_weights` was materialised for that partition;
3. every asset check on `target_weights` was evaluated in that materialisation's run and passed (a range run
   evaluates its checks once for the whole range; that evaluation covers each window it wrote).
"""

from __future__ import annotations

import dagster as dg
import pandas as pd

from gradient_pipeline.timegrid import (
    BAR,
    latest_complete_bar_open,
    parse_partition_key,
    partition_key,
)

TARGETS_KEY = dg.AssetKey("target_weights")


def window_refusal(window_key: str, exchange_now, max_age_hours: float | None = None) -> str | None:
    """Refuse anything but the latest complete window, and (optionally) targets older than `max_age_hours`
    (`execution.target_max_age_hours`, measured from the window's close = when the targets became valid)."""
    latest = partition_key(latest_complete_bar_open(exchange_now))
    if window_key != latest:
        return (f"stale targets: window {window_key} is not the latest complete window {latest} "
                f"(exchange clock {exchange_now})")
    age_h = (pd.Timestamp(exchange_now) - (parse_partition_key(window_key) + BAR)) / pd.Timedelta(hours=1)
    if max_age_hours is not None and age_h > max_age_hours:
        return (f"stale targets: window {window_key} closed {age_h:.2f}h ago, more than "
                f"execution.target_max_age_hours={max_age_hours:g}")
    return None


def checks_refusal(instance: dg.DagsterInstance, window_key: str, defined_checks=()) -> str | None:
    """None if `target_weights[window_key]` was materialised and every check on it passed in that same run.

    The checks that count are those planned in the materialising run (from its event log) plus `defined_checks`
    (check names defined in code, when the caller knows them): a run that skipped a check does not qualify.
    """
    parse_partition_key(window_key)  # a malformed key fails loudly here
    mats = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=TARGETS_KEY, asset_partitions=[window_key]), limit=1
    ).records
    if not mats:
        return f"target_weights has no materialisation for window {window_key}"
    run_id = mats[0].run_id
    planned, results = set(defined_checks), {}
    for rec in instance.all_logs(run_id, of_type={dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED,
                                                  dg.DagsterEventType.ASSET_CHECK_EVALUATION}):
        data = rec.dagster_event.event_specific_data
        if data.asset_key != TARGETS_KEY:
            continue
        if rec.dagster_event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED:
            planned.add(data.check_name)
        else:
            results[data.check_name] = data.passed
    if not planned:
        return f"no asset check ran on target_weights in the run that wrote window {window_key} ({run_id[:8]})"
    for name in sorted(planned):
        if name not in results:
            return f"check {name} was not evaluated in the run that wrote window {window_key} ({run_id[:8]})"
        if not results[name]:
            return f"check {name} did not pass for window {window_key} (run {run_id[:8]})"
    return None
