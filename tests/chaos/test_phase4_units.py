"""The pure parts of phase 4: replayable fault moments, writer counts, and the evidence that a fault
landed while writes were in flight (the convergence predicate is tests/chaos/test_convergence.py's)."""

from __future__ import annotations

from phases.phase4 import FAULT_FRACTION, FaultOutcome, _landed_mid_burst, _writers, fault_moment


def test_fault_moment_is_a_pure_function_of_seed_class_and_cycle() -> None:
    assert fault_moment(42, "partition_minority", 3) == fault_moment(42, "partition_minority", 3)
    drawn = {fault_moment(42, "partition_minority", n) for n in range(1, 51)}
    assert len(drawn) == 50
    assert all(FAULT_FRACTION[0] <= m <= FAULT_FRACTION[1] for m in drawn)
    assert fault_moment(42, "partition_minority", 3) != fault_moment(43, "partition_minority", 3)
    assert fault_moment(42, "partition_minority", 3) != fault_moment(42, "drop_random_acks", 3)


def test_writer_count_divides_the_writes() -> None:
    assert _writers(100, 4) == 4
    assert _writers(40, 4) == 4
    assert _writers(30, 4) == 3
    assert _writers(7, 4) == 1
    assert _writers(2, 4) == 2


def _burst(*spans: tuple[float, float]) -> list[dict]:
    events = []
    for i, (t0, t1) in enumerate(spans):
        events += [{"process": "w1", "title": f"t{i}", "type": "invoke", "time": t0},
                   {"process": "w1", "title": f"t{i}", "type": "ok", "time": t1}]
    return events


def test_fault_outside_the_burst_is_not_evidence() -> None:
    out = FaultOutcome("pause", "node-b", started_at=200.0, applied=True,
                       events=[{"type": "invoke", "time": 200.0}, {"type": "info", "time": 200.02}])
    _landed_mid_burst(out, _burst((100.0, 100.1), (100.2, 100.3)))
    assert out.applied is False and "outside the burst" in (out.problem or "")


def test_fault_inside_the_burst_records_the_writes_in_flight() -> None:
    out = FaultOutcome("kill", "node-a", started_at=100.25, applied=True,
                       events=[{"type": "invoke", "time": 100.25}, {"type": "info", "time": 100.27}])
    _landed_mid_burst(out, _burst((100.0, 100.1), (100.2, 100.3), (100.26, 100.4)))
    assert out.applied is True
    assert out.evidence[-1].endswith("2 writes in flight while it was applied")
