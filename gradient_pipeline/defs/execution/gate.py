"""May these targets be traded? (Dagster-side checks the runner cannot do itself.)

A blocking asset check fails the run but does not undo the write: `target_weights` rows of a failed window are
already in DuckDB. So before trading, the rebalance job asks the Dagster instance directly:
1. the window is the latest complete 4h window by the **exchange** clock (stale targets are never traded);
2. `target_weights` was materialised for that partition;
3. every asset check defined on `target_weights` was evaluated in that materialisation's run and passed.
"""

from __future__ import annotations

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from gradient_pipeline.timegrid import latest_complete_bar_open, parse_partition_key, partition_key

TARGETS_KEY = dg.AssetKey("target_weights")


def window_refusal(window_key: str, exchange_now) -> str | None:
    latest = partition_key(latest_complete_bar_open(exchange_now))
    if window_key != latest:
        return (f"stale targets: window {window_key} is not the latest complete window {latest} "
                f"(exchange clock {exchange_now})")
    return None


def checks_refusal(instance: dg.DagsterInstance, repository_def, window_key: str) -> str | None:
    """None if `target_weights[window_key]` was materialised and all its checks passed in that run."""
    parse_partition_key(window_key)  # a malformed key fails loudly here
    mats = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=TARGETS_KEY, asset_partitions=[window_key]), limit=1
    ).records
    if not mats:
        return f"target_weights has no materialisation for window {window_key}"
    run_id = mats[0].run_id
    check_keys = sorted(
        (k for k in repository_def.asset_graph.asset_check_keys if k.asset_key == TARGETS_KEY), key=lambda k: k.name
    )
    if not check_keys:
        return "target_weights has no asset checks defined; refusing to trade unchecked targets"
    for key in check_keys:
        history = instance.event_log_storage.get_asset_check_execution_history(key, limit=50)
        in_run = [r for r in history if r.run_id == run_id]
        if not in_run:
            return f"check {key.name} was not evaluated in the run that wrote window {window_key} ({run_id[:8]})"
        if in_run[0].status != AssetCheckExecutionRecordStatus.SUCCEEDED:
            return f"check {key.name} did not pass for window {window_key} (status {in_run[0].status.value})"
    return None
