"""Against the clean reference peer on a real lab, every registered fault class passes at a small shape, with
evidence in every cycle that its fault really happened, and histories that validate."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipgate.evidence.models import CycleRecord, OperationEvent
from shipgate.evidence.validate import validate_run
from shipgate.nemesis.faults import NAMES
from tests.chaos.conftest import run_phase4

pytestmark = [pytest.mark.lab, pytest.mark.slow]
CYCLES, WRITES = 3, 40
EVIDENCE = {
    "kill_primary_mid_write": ("kill on node-a", "state=gone"),
    "partition_minority": ("heal on node-a", "dropped_packets="),
    "drop_random_acks": ("pause on node-b", "state=T"),
    "clock_skew_peer": ("clock on node-c", "offset_s="),  # "took effect": +300 s read back within tolerance
    "packet_loss": ("heal on node-a [loss rules]", "dropped_packets="),
}


@pytest.fixture(scope="module")
def inv(lab_factory):
    return lab_factory("chclean")


@pytest.mark.parametrize("fault", NAMES)
def test_class_passes_with_fault_evidence_in_every_cycle(inv, tmp_path: Path, fault: str) -> None:
    report = run_phase4(inv, tmp_path, faults=[fault], cycles=CYCLES, writes=WRITES, seed=7)
    result = report.faults[fault]
    assert report.status == "pass", report.reasons
    assert result.cycles_run == CYCLES and result.cycles_with_fault_evidence == CYCLES
    assert result.convergence_bound is not None and result.convergence_bound >= 0.995
    assert result.lost == [] and result.unexpected == [] and result.duplicates == []
    assert report.convergence_by_fault == {fault: result.convergence_bound}
    assert result.time_to_converge_s is not None and result.time_to_converge_s.count == CYCLES

    cycles = [CycleRecord.model_validate_json(line)
              for line in (tmp_path / "history" / f"phase4-{fault}-cycles.jsonl").read_text().splitlines()]
    assert [c.cycle for c in cycles] == list(range(1, CYCLES + 1))
    marker, value = EVIDENCE[fault]
    for c in cycles:
        assert c.fault_applied is True and c.status == "pass"
        assert c.fault_started_at is not None
        assert any(marker in line and value in line and "took effect" in line for line in c.fault_evidence), \
            c.fault_evidence
        assert c.count_node0 == str(c.counts["node-a"]) and c.count_node1 == str(c.counts["node-b"])
        if fault in ("partition_minority", "drop_random_acks", "kill_primary_mid_write", "packet_loss"):
            assert c.fault_healed_at is not None and c.fault_healed_at >= c.fault_started_at

    ops = [OperationEvent.model_validate_json(line)
           for line in (tmp_path / "history" / f"phase4-{fault}.jsonl").read_text().splitlines()]
    writes = [o for o in ops if o.op == "write" and o.type != "invoke"]
    assert len(writes) == CYCLES * WRITES
    assert all(o.fault == fault and o.cycle in range(1, CYCLES + 1) for o in ops)
    assert any(o.process == "nemesis" for o in ops)
    assert {o.clock for o in ops if o.process == "nemesis"} == {"operator"}
    assert {o.clock for o in ops if o.process != "nemesis"} == {"chaos"}
    assert report.clock_offset is not None and report.clock_offset.one_kernel  # the lab: one kernel clock
    assert validate_run(tmp_path) == []


def test_same_seed_draws_the_same_fault_moments(inv, tmp_path: Path) -> None:
    first = run_phase4(inv, tmp_path / "a", faults=["drop_random_acks"], cycles=2, writes=20, seed=99)
    again = run_phase4(inv, tmp_path / "b", faults=["drop_random_acks"], cycles=2, writes=20, seed=99)

    def moments(run: Path) -> list[str]:
        lines = (run / "history" / "phase4-drop_random_acks-cycles.jsonl").read_text().splitlines()
        return [CycleRecord.model_validate_json(line).fault_evidence[0] for line in lines]

    assert first.settings["seed"] == again.settings["seed"] == 99
    assert moments(tmp_path / "a") == moments(tmp_path / "b")
    assert moments(tmp_path / "a")[0].startswith("fault moment ")


def test_local_topology_runs_the_upstream_shape(inv, tmp_path: Path) -> None:
    """Three serves on the chaos host (node-0 federated, ports 19077-19079), partitioned on loopback."""
    report = run_phase4(inv, tmp_path, faults=["partition_minority"], cycles=2, writes=40, topology="local")
    assert report.status == "pass", report.reasons
    assert report.details["topology"] == "local"
    nodes = report.details["classes"]["partition_minority"]["nodes"]
    assert sorted(nodes) == ["node-0", "node-1", "node-2"]
    assert {n["url"] for n in nodes.values()} == {f"http://127.0.0.1:{p}" for p in (19077, 19078, 19079)}
    line = (tmp_path / "history" / "phase4-partition_minority-cycles.jsonl").read_text().splitlines()[0]
    record = CycleRecord.model_validate_json(line)
    assert any("dropped_packets=" in e and "took effect" in e for e in record.fault_evidence)
