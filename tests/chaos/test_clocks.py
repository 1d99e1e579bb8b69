"""The two clocks, judged without hosts: the offset estimate and its bound from scripted round trips, the
lab's one kernel clock, the report model taking the measurement field for field, and phase 4 sorting a
history stamped by two clocks on the operator's."""

from __future__ import annotations

import dataclasses

import pytest

from phases.phase4 import _on_operator
from shipgate.evidence.models import ClockOffset
from shipgate.hosts import clock
from shipgate.hosts.ssh import CommandResult


class Host:
    """A host whose clock runs `offset` ahead of the operator's; each round trip takes (there, back) seconds
    on a virtual operator clock."""

    def __init__(self, offset: float, trips: list[tuple[float, float]], answers: list[str] | None = None) -> None:
        self.t, self.offset, self.trips, self.answers = 1000.0, offset, list(trips), answers

    def now(self) -> float:
        return self.t

    def run(self, host: str, command: str, *, timeout: float) -> CommandResult:
        there, back = self.trips.pop(0)
        self.t += there
        out = self.answers.pop(0) if self.answers else f"{self.t + self.offset:.9f}\n"
        self.t += back
        return CommandResult(host=host, command=command, exit_code=0, stdout=out, stderr="", duration_s=there + back)


def test_the_smallest_round_trip_is_kept_and_the_true_offset_is_within_its_bound() -> None:
    h = Host(2.5, [(0.04, 0.01), (0.002, 0.008), (0.03, 0.03)])
    o = clock.measure(h, "chaos", samples=3, now=h.now)  # type: ignore[arg-type]
    assert (o.samples, o.rtt_s, o.uncertainty_s) == (3, 0.01, 0.005)
    assert abs(o.offset_s - 2.5) <= o.uncertainty_s  # asymmetric trip: off by 3 ms, within the 5 ms bound
    assert o.offset_s == pytest.approx(2.497) and o.one_kernel is False and o.measured_at is not None


def test_a_sample_without_a_timestamp_is_skipped_and_none_at_all_is_an_error() -> None:
    h = Host(0.0, [(0.001, 0.001), (0.002, 0.002)], answers=["bash: date: not found", "1000.003"])
    assert clock.measure(h, "chaos", samples=2, now=h.now).rtt_s == 0.004  # type: ignore[arg-type]
    dead = Host(0.0, [(0.001, 0.001)], answers=["garbage"])
    with pytest.raises(clock.ClockError, match="chaos: no clock sample in 1 tries"):
        clock.measure(dead, "chaos", samples=1, now=dead.now)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="samples must be at least 1"):
        clock.measure(dead, "chaos", samples=0)  # type: ignore[arg-type]


def test_the_lab_is_one_kernel_clock_by_construction_and_says_so() -> None:
    o = clock.one_kernel("chaos")
    assert (o.one_kernel, o.offset_s, o.uncertainty_s, o.samples) == (True, 0.0, 0.0, 0)
    assert "by construction" in o.method


def test_the_report_model_takes_the_measurement_field_for_field() -> None:
    assert {f.name for f in dataclasses.fields(clock.Offset)} == set(ClockOffset.model_fields)
    h = Host(-0.75, [(0.005, 0.005)])
    o = clock.measure(h, "chaos", samples=1, now=h.now)  # type: ignore[arg-type]
    m = ClockOffset.model_validate(o, from_attributes=True)
    assert dataclasses.asdict(o) == m.model_dump()
    assert ClockOffset.model_validate_json(m.model_dump_json()) == m


def test_phase4_orders_client_and_nemesis_events_on_the_operator_clock() -> None:
    # the chaos host runs 10 s ahead: its write at 1010.2 happened at 1000.2 operator time, after the kill
    offset = clock.Offset(host="chaos", one_kernel=False, offset_s=10.0, uncertainty_s=0.01, method="test")
    events = [{"op": "write", "type": "invoke", "time": 1010.2, "clock": "chaos"},
              {"op": "kill", "type": "invoke", "time": 1000.1, "clock": "operator"},
              {"op": "write", "type": "invoke", "time": 1010.0, "clock": "chaos"}]
    ordered = sorted(events, key=lambda e: _on_operator(e, offset))
    assert [(e["op"], e["time"]) for e in ordered] == [("write", 1010.0), ("kill", 1000.1), ("write", 1010.2)]
    assert _on_operator(events[0], offset) == pytest.approx(1000.2)
