"""`rebalance_job`: move the account to the latest validated targets (an op job — trading is an action, not data).

Ops: `check_targets` (is this the latest complete window by the exchange clock, and did every check on
`target_weights` pass for it?) → `rebalance` (reconcile, plan, risk, send, record; see `execution/runner.py`).
Lineage: each run logs an `AssetMaterialization` of the external asset `executed_orders` (deps: `target_weights`),
so the asset graph shows target_weights → executed_orders and each rebalance appears in its history.

Safety: the job carries `gradient/exclusive: rebalance` (limit 1 in dagster.yaml: a second run waits in the queue)
and `gradient/duckdb: writer` (it reads the targets from DuckDB); inside, the book's rebalance lock (book/locks.py)
makes a concurrent rebalance skip visibly (run tag `gradient/skipped`). The ledger is the operations book.
Refusals (stale window, failed check, risk, invalid plan) are written to the ledger and fail the run, so nothing
about them is silent. A run with nothing to do — trading halted, or the window already rebalanced — is neither a
failure nor an ordinary success: it ends tagged `gradient/outcome=skipped` with `gradient/skip_reason` (and a
halted window is recorded `refused` in the ledger with the halt's reason). Nothing here logs the private key: it is read from the
environment inside `exchange/hyperliquid/factory.py` and handed straight to the SDK.
"""


import time

import dagster as dg
from pydantic import Field

from gradient_pipeline.defs.execution.gate import checks_refusal, window_refusal
from gradient_pipeline.defs.execution.latency import cycle_latency, latency_metadata
from gradient_pipeline.defs.resources import GradientResource, VenueResource
from gradient_pipeline.signals.tables import target_window
from gradient_pipeline.book import ledger
from gradient_pipeline.execution.runner import (
    RebalanceBusy,
    Rebalancer,
    load_targets,
    rebalance_id_for,
)
from gradient_pipeline.storage.db import table_exists
from gradient_pipeline.timegrid import (
    latest_complete_bar_open,
    parse_partition_key,
    partition_key,
)
from gradient_pipeline import runtags

EXECUTED_ORDERS = dg.AssetKey("executed_orders")

executed_orders = dg.AssetSpec(
    EXECUTED_ORDERS,
    deps=["target_weights"],
    group_name="execution",
    description="Orders sent by `rebalance_job` for the latest target window (rows in the operations book: "
    "rebalances, orders, fills). Materialised by the job, never from the asset graph.",
    kinds={"sqlalchemy"},
)

REBALANCE_TAGS = {runtags.EXCLUSIVE: "rebalance", **runtags.DUCKDB_WRITER}
OUTCOME_TAG = runtags.OUTCOME
SKIP_REASON_TAG = runtags.SKIP_REASON


def mark_skipped(context, reason: str) -> dict:
    """Tag the run as skipped (the UI's run list shows it) and say why; the run itself succeeds quietly."""
    context.instance.add_run_tags(context.run_id, {OUTCOME_TAG: "skipped", SKIP_REASON_TAG: reason[:250]})
    context.log.info(f"skipped: {reason}")
    context.add_output_metadata({"outcome": "skipped", "reason": reason})
    return {"status": "skipped", "reason": reason}


def _time_first_ack(client) -> list[float]:
    """Wrap `client.bulk_orders` to note the wall time its first batch came back (acknowledged by the exchange)."""
    acks: list[float] = []
    send = client.bulk_orders

    def timed(orders):
        outcomes = send(orders)
        if orders and not acks:
            acks.append(time.time())
        return outcomes

    client.bulk_orders = timed
    return acks


def _halted(gradient: GradientResource) -> str | None:
    from gradient_pipeline.execution.risk_gate import trading_halt

    with gradient.book() as conn:
        return trading_halt(conn)


class RebalanceConfig(dg.Config):
    window: str = Field(
        "",
        description="Partition key of the target window to trade (%Y-%m-%d-%H:%M). Empty: the latest complete "
        "window by the exchange clock. Anything but the latest complete window is refused as stale.",
    )


def _record_refusal(context, gradient: GradientResource, client, window_key: str, reason: str) -> str:
    """Write the window's rebalance as `refused` with the reason (never over a complete/partial one)."""
    cfg = gradient.config
    rid = rebalance_id_for(parse_partition_key(window_key), cfg.mode, client.account_address)
    with gradient.book() as conn:
        if ledger.get_rebalance(conn, rid) is None:
            ledger.start_rebalance(conn, rid, parse_partition_key(window_key), cfg.mode, cfg.network,
                                   client.account_address, None, context.run_id)
        row = ledger.get_rebalance(conn, rid)
        if row["status"] not in ("complete", "partial"):
            ledger.finish_rebalance(conn, rid, "refused", reason)
    return rid


def _refuse(context, gradient: GradientResource, client, window_key: str, reason: str):
    """Record a refused rebalance in the ledger and fail the run with the reason."""
    rid = _record_refusal(context, gradient, client, window_key, reason)
    context.log.error(f"rebalance {rid} refused: {reason}")
    raise dg.Failure(description=f"refused: {reason}", metadata={"rebalance_id": rid, "window": window_key},
                     allow_retries=False)


@dg.op(out=dg.Out(io_manager_key="op_io_manager"), tags={"kind": "duckdb"})
def check_targets(context: dg.OpExecutionContext, config: RebalanceConfig, gradient: GradientResource,
                  venue: VenueResource) -> dict:
    """Pick the window to trade and refuse stale targets or targets whose checks did not pass."""
    cfg = gradient.config
    client = venue.open(cfg)
    now = client.server_time()
    window_key = config.window or partition_key(latest_complete_bar_open(now))
    context.log.info(f"mode={cfg.mode} network={cfg.network} url={client.base_url} window={window_key} "
                     f"exchange clock={now}")
    halted = _halted(gradient)
    if halted:  # nothing may trade: record the refusal in the ledger, show the run as skipped (no failure alert)
        reason = f"trading halted: {halted}"
        _record_refusal(context, gradient, client, window_key, reason)
        return {"window": window_key, "exchange_time": str(now), **mark_skipped(context, reason)}
    rid = rebalance_id_for(parse_partition_key(window_key), cfg.mode, client.account_address)
    with gradient.book() as conn:
        done = ledger.get_rebalance(conn, rid)
    if done is not None and done["status"] in ("complete", "partial"):
        reason = f"window {window_key} already rebalanced ({rid} {done['status']}); nothing to do"
        return {"window": window_key, "exchange_time": str(now), **mark_skipped(context, reason)}
    reason = (window_refusal(window_key, now, cfg.execution.target_max_age_hours)
              or checks_refusal(context.instance, window_key))
    if reason is None:
        with gradient.db() as conn:
            computed = table_exists(conn, "target_windows") and target_window(conn, parse_partition_key(window_key))
        if not computed:  # an empty book is a valid target (go flat); a window never computed is not
            reason = f"targets for window {window_key} were never computed (no target_windows row)"
    if reason:
        _refuse(context, gradient, client, window_key, reason)
    return {"window": window_key, "exchange_time": str(now)}


def _dead_man_alert(context, gradient: GradientResource, result) -> None:
    """A dead-man switch that could not be armed alerts (deduplicated; cleared by the next armed run)."""
    from gradient_pipeline.monitoring.alerts import dead_man_condition

    try:
        with gradient.book() as conn:
            dead_man_condition(conn, gradient.config, result)
    except Exception as err:  # noqa: BLE001 - the run's own record stands; the metadata and the log say it
        context.log.error(f"dead-man alert not raised: {type(err).__name__}: {err}")


def _record_latency(gradient: GradientResource, window, breakdown: dict) -> None:
    """The cycle's latency phases into the book (`cycle_latency`), one row per stage, for history beyond the UI."""
    from gradient_pipeline.book.heartbeats import record_latency

    with gradient.book() as conn:
        for stage, seconds in breakdown.items():
            if isinstance(seconds, (int, float)):
                record_latency(conn, window, stage, float(seconds))


@dg.op(out=dg.Out(io_manager_key="op_io_manager"), tags={"kind": "hyperliquid"})
def rebalance(context: dg.OpExecutionContext, gradient: GradientResource, venue: VenueResource,
              target: dict) -> dict:
    """Trade the account to the window's targets and record everything in the ledger (see execution/runner.py)."""
    if target.get("status") == "skipped":
        return target
    cfg = gradient.config
    client = venue.open(cfg)
    window = parse_partition_key(target["window"])
    with gradient.db() as conn:
        targets, adv = load_targets(conn, window)
    first_ack = _time_first_ack(client)
    runner = Rebalancer(cfg, client, gradient.db_path, dagster_run_id=context.run_id, on_event=context.log.info)
    try:
        result = runner.run(window, targets, adv)
    except RebalanceBusy as busy:
        context.instance.add_run_tags(context.run_id, {runtags.SKIPPED: "another rebalance is running"})
        context.log.warning(f"skipped: {busy}")
        return mark_skipped(context, str(busy))
    if result.status == "refused" and (result.reason or "").startswith("trading halted"):
        return mark_skipped(context, result.reason)
    metadata = {
        "rebalance_id": result.rebalance_id,
        "window": target["window"],
        "mode": result.mode,
        "network": result.network,
        "status": result.status,
        "reason": result.reason or "",
        "orders": result.orders_sent,
        "fills": result.fills,
        "account_value_usd": float(result.account_value or 0.0),
        "residual_usd": dg.MetadataValue.json(result.residual_usd),
        "dead_man": ("NOT ARMED: " + result.dead_man_failures[0]) if result.dead_man_failures
        else ("armed" if result.dead_man_armed else "not used"),
    }
    _dead_man_alert(context, gradient, result)
    if first_ack:  # the cycle's latency budget: window close → first order acknowledged (defs/execution/latency.py)
        breakdown = cycle_latency(context.instance, context.run_id, first_ack[0])
        metadata.update(latency_metadata(breakdown))
        context.add_output_metadata(latency_metadata(breakdown))
        context.log.info("cycle latency (s): " + ", ".join(f"{k}={v}" for k, v in breakdown.items()))
        _record_latency(gradient, window, breakdown)
    context.log_event(dg.AssetMaterialization(EXECUTED_ORDERS, metadata=metadata,
                                              description=f"rebalance {result.status}"))
    if result.status in ("refused", "failed"):
        raise dg.Failure(description=f"{result.status}: {result.reason}", metadata={"rebalance_id": result.rebalance_id},
                         allow_retries=False)
    return {"rebalance_id": result.rebalance_id, "status": result.status, "orders": result.orders_sent}


@dg.job(tags=REBALANCE_TAGS, description=__doc__.split("\n\n")[0],
        executor_def=dg.in_process_executor)  # two short ops: a step process each only added start-up latency
def rebalance_job():
    rebalance(check_targets())


def rebalance_run_config(window_key: str) -> dict:
    return {"ops": {"check_targets": {"config": {"window": window_key}}}}
