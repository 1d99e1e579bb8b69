"""Each seeded defect of the reference peer turns the fault class that owns it red, with the lost
acknowledged writes listed; one lab per defect (the defect is switched on when the lab is built)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipgate.evidence.models import CycleRecord
from tests.chaos.conftest import run_phase4

pytestmark = [pytest.mark.lab, pytest.mark.slow]

# defect -> (lab name, the class that owns it, where the acknowledged writes go missing)
CASES = {
    "ack_before_durable": ("chabd", "kill_primary_mid_write", "node-a"),
    "fanout_abort": ("chfan", "partition_minority", None),
    "skew_cursor": ("chskew", "clock_skew_peer", "node-c"),
    "no_catchup": ("chnocu", "clock_skew_peer", "node-c"),
}


@pytest.mark.parametrize("defect", list(CASES))
def test_defect_turns_its_class_red_with_the_lost_writes_listed(lab_factory, tmp_path: Path, defect: str) -> None:
    name, fault, where = CASES[defect]
    inv = lab_factory(name, [defect])
    report = run_phase4(inv, tmp_path, faults=[fault], cycles=3, writes=40, seed=11, convergence_deadline_s=5)
    result = report.faults[fault]
    assert report.status == "fail" and result.status == "fail", report.reasons
    assert result.lost, "the lost acknowledged writes must be listed"
    lost = next(c for c in report.checks if c.id == f"{fault}.lost_acknowledged")
    assert lost.status == "fail" and lost.observed == len(result.lost)
    assert result.lost[0].split(": ", 1)[1] in (lost.detail or "")
    if where:
        assert any(f"missing on {where}" in item or f", {where}" in item for item in result.lost)
    # Every cycle still carries evidence that the fault fired: the red verdict is the product's, not the gate's.
    assert result.cycles_with_fault_evidence == result.cycles_run == 3
    records = [CycleRecord.model_validate_json(line) for line in
               (tmp_path / "history" / f"phase4-{fault}-cycles.jsonl").read_text().splitlines()]
    assert sum(len(r.lost) for r in records) == len(result.lost)
    assert any(r.status == "fail" for r in records)
