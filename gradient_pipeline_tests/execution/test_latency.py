"""The cycle's latency breakdown (window close → first order acknowledged) from run timestamps."""

from gradient_pipeline.defs.execution.latency import PHASES, RunTimeline, latency_breakdown


def test_breakdown_adds_up_phase_by_phase():
    window = RunTimeline(created=100.0, dequeued=101.0, starting=101.5, ended=160.0,
                         steps={"candles": (104.0, 130.0), "funding": (130.0, 150.0), "universe": (150.0, 152.0),
                                "returns": (152.5, 154.0), "target_weights": (154.0, 158.0)})
    rebalance = RunTimeline(created=165.0, dequeued=175.0, starting=176.0, steps={"check_targets": (180.0, 181.0)})
    b = latency_breakdown(2.0, window, rebalance, first_ack=182.5)
    assert b["close_to_tick"] == 2.0
    assert b["window_queue"] == 1.0 and b["window_startup"] == 3.0
    assert b["refresh"] == 48.0 and b["signals"] == 8.0
    assert b["sensor_pickup"] == 5.0 and b["queue_wait"] == 10.0 and b["run_startup"] == 5.0
    assert b["trading"] == 2.5
    assert b["total"] == sum(b[k] for k in PHASES) and b["missing"] == []
    # the phases tile the timeline: close at t = 98 (tick 2 s later creates the run) → first ack at 182.5
    assert abs(b["total"] - (182.5 - 98.0)) < 1e-9


def test_a_hand_launched_rebalance_reports_what_it_can():
    rebalance = RunTimeline(created=10.0, steps={"check_targets": (12.0, 13.0)})
    b = latency_breakdown(None, None, rebalance, first_ack=14.0)
    assert b["queue_wait"] == 0.0 and b["run_startup"] == 2.0 and b["trading"] == 2.0 and b["total"] == 4.0
    assert "refresh" in b["missing"] and "close_to_tick" in b["missing"]
