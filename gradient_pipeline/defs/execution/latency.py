"""Latency budget of one trading cycle: window close → first order acknowledged, broken down by phase.

Measured every cycle by `rebalance_job` and recorded in its `executed_orders` materialisation metadata (numeric
`latency/*` entries, which the asset page plots over time) and in the run's op output metadata.

Where the time goes, in order (seconds):

| phase | from → to | clock |
|---|---|---|
| `close_to_tick` | the window's close → the schedule's tick asked the exchange | exchange (tag `gradient/tick_lag_s`) |
| `window_queue` | window run created → dequeued | wall (Dagster run events) |
| `window_startup` | window run dequeued/starting → its first step starts | wall |
| `refresh` | first market-data step starts → last market-data step ends (candles, universe; funding is refreshed after the rebalance is launched, off this path) | wall |
| `signals` | end of refresh → the window run ends (returns, scores, targets, checks, run wind-down) | wall |
| `sensor_pickup` | window run ends → rebalance run created by `rebalance_after_window` | wall |
| `queue_wait` | rebalance run created → dequeued (behind other DuckDB writers) | wall |
| `run_startup` | rebalance run dequeued/starting → `check_targets` starts | wall |
| `trading` | `check_targets` starts → the first order batch is acknowledged | wall |

`close_to_tick` is in exchange seconds (wall seconds on a real exchange or a replay at speed 1; a fast replay
inflates it by its speed). `total` is their sum (phases that do not apply — e.g. a run launched by hand has no tick — are left out and
named in `missing`). `latency_breakdown` is pure (plain numbers in, dict out); `run_timeline` reads one run's
timestamps from the Dagster instance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gradient_pipeline import runtags

MARKET_DATA_STEPS = frozenset({"candles", "funding", "universe"})
PHASES = ("close_to_tick", "window_queue", "window_startup", "refresh", "signals", "sensor_pickup", "queue_wait",
          "run_startup", "trading")
TICK_LAG_TAG = runtags.TICK_LAG_S


@dataclass(frozen=True)
class RunTimeline:
    """Wall-clock epoch seconds of one run's lifecycle and steps (from its Dagster event log)."""

    created: float
    dequeued: float | None = None  # None: never queued (execute_in_process, or launched directly)
    starting: float | None = None
    ended: float | None = None
    steps: dict[str, tuple[float, float | None]] = field(default_factory=dict)  # step key → (start, end)

    @property
    def launched(self) -> float:
        """When the run left the queue (or was created, if it never queued)."""
        return self.dequeued or self.starting or self.created


def _span(steps: dict[str, tuple[float, float | None]]) -> tuple[float, float] | None:
    if not steps:
        return None
    starts = [s for s, _ in steps.values()]
    ends = [e for _, e in steps.values() if e is not None]
    return min(starts), (max(ends) if ends else max(starts))


def latency_breakdown(tick_lag_s: float | None, window: RunTimeline | None, rebalance: RunTimeline,
                      first_ack: float | None, trading_step: str = "check_targets") -> dict:
    """Seconds per phase of one cycle (see the module docstring), `total` and the phases that were `missing`."""
    out: dict[str, float] = {}
    if tick_lag_s is not None:
        out["close_to_tick"] = max(0.0, float(tick_lag_s))
    if window is not None:
        out["window_queue"] = window.launched - window.created
        md = {k: v for k, v in window.steps.items() if k in MARKET_DATA_STEPS}
        rest = {k: v for k, v in window.steps.items() if k not in MARKET_DATA_STEPS}
        every = _span(window.steps)
        if every:
            out["window_startup"] = every[0] - window.launched
        md_span, rest_span = _span(md), _span(rest)
        end = window.ended or (every[1] if every else None)
        if md_span:
            out["refresh"] = md_span[1] - md_span[0]
        if rest_span or (md_span and end is not None):  # signal/check steps and the run's own wind-down
            out["signals"] = (end or rest_span[1]) - (md_span[1] if md_span else rest_span[0])
        if end is not None:
            out["sensor_pickup"] = rebalance.created - end
    out["queue_wait"] = rebalance.launched - rebalance.created
    step = rebalance.steps.get(trading_step)
    if step is not None:
        out["run_startup"] = step[0] - rebalance.launched
        if first_ack is not None:
            out["trading"] = first_ack - step[0]
    out = {k: round(max(0.0, v), 3) for k, v in out.items()}
    result = {k: out[k] for k in PHASES if k in out}
    result["total"] = round(sum(result.values()), 3)
    result["missing"] = [k for k in PHASES if k not in out]
    return result


def run_timeline(instance, run_id: str) -> RunTimeline | None:
    """Read one run's lifecycle and step timestamps from the Dagster instance (None if the run is unknown)."""
    import dagster as dg

    record = instance.get_run_record_by_id(run_id)
    if record is None:
        return None
    kinds = {dg.DagsterEventType.RUN_DEQUEUED, dg.DagsterEventType.RUN_STARTING, dg.DagsterEventType.RUN_START,
             dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_FAILURE, dg.DagsterEventType.STEP_START,
             dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
    dequeued = starting = ended = None
    steps: dict[str, list] = {}
    for entry in instance.all_logs(run_id, of_type=kinds):
        ev, t = entry.dagster_event, entry.timestamp
        kind = ev.event_type
        if kind == dg.DagsterEventType.RUN_DEQUEUED:
            dequeued = t
        elif kind in (dg.DagsterEventType.RUN_STARTING, dg.DagsterEventType.RUN_START):
            starting = t if starting is None else min(starting, t)
        elif kind in (dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_FAILURE):
            ended = t
        elif kind == dg.DagsterEventType.STEP_START:
            steps.setdefault(ev.step_key, [t, None])[0] = t
        else:
            steps.setdefault(ev.step_key, [t, None])[1] = t
    created = record.create_timestamp.timestamp()
    return RunTimeline(created, dequeued, starting, ended, {k: (v[0], v[1]) for k, v in steps.items()})


def cycle_latency(instance, rebalance_run_id: str, first_ack: float | None) -> dict:
    """The breakdown for a rebalance run, reading its upstream window run (tag `gradient/upstream_run`)."""
    rebalance = run_timeline(instance, rebalance_run_id)
    run = instance.get_run_by_id(rebalance_run_id)
    upstream_id = run.tags.get(runtags.UPSTREAM_RUN) if run else None
    window = run_timeline(instance, upstream_id) if upstream_id else None
    tick_lag = None
    if upstream_id:
        up = instance.get_run_by_id(upstream_id)
        lag = up.tags.get(TICK_LAG_TAG) if up else None
        tick_lag = float(lag) if lag not in (None, "") else None
    return latency_breakdown(tick_lag, window, rebalance, first_ack)


def latency_metadata(breakdown: dict) -> dict:
    """Dagster metadata entries (numeric, so the UI plots them per materialisation)."""
    import dagster as dg

    md = {f"latency/{k}_s": float(v) for k, v in breakdown.items() if k not in ("missing",)}
    md["latency/missing"] = dg.MetadataValue.text(", ".join(breakdown.get("missing", [])) or "none")
    return md
