"""Campaign verdicts: never green without evidence for every requested phase."""

import pytest

from artifacts.conftest import phase_reports
from shipgate.evidence.models import Check, Phase2Report
from shipgate.evidence.validate import verdict_for_run
from shipgate.evidence.verdict import ArtifactError, campaign_verdict, parse_phases


def test_every_requested_phase_passing_is_a_pass():
    v = campaign_verdict([1, 2, 3, 4], phase_reports())
    assert (v.status, v.exit_code, v.reasons, v.phases_run) == ("pass", 0, [], [1, 2, 3, 4])
    assert [r.artifact for r in v.phase_results] == [
        "phase1-node-a.json", "phase1-node-b.json", "phase1-node-c.json", "phase2.json", "phase3.json",
        "phase4.json"]


def test_no_requested_phase_is_an_error_not_a_vacuous_pass():
    v = campaign_verdict([], phase_reports())
    assert (v.status, v.exit_code) == ("error", 2)
    assert v.reasons == ["no phases were requested: nothing was verified"]


def test_missing_artifact_of_a_requested_phase_is_an_error():
    reports = phase_reports()
    del reports["phase1-node-b.json"]
    v = campaign_verdict([1], reports)
    assert (v.status, v.exit_code) == ("error", 2)
    assert v.reasons == ["phase1-node-b.json: error: artifact missing: the phase left no evidence"]


def test_only_requested_phases_count():
    reports = phase_reports()
    del reports["phase4.json"]
    assert campaign_verdict([1, 2, 3], reports).status == "pass"


def test_broken_artifact_is_an_error_with_its_problem():
    reports = phase_reports() | {"phase3.json": ArtifactError("phase3.json", "phase3.json is empty (0 bytes)")}
    v = campaign_verdict([3], reports)
    assert v.reasons == ["phase3.json: error: phase3.json is empty (0 bytes)"]


def test_fail_outranks_error_and_exit_code_is_1():
    reports = phase_reports() | {
        "phase2.json": Phase2Report.from_checks([Check.of("phase2.counts.b", ">= 190", 166, False)]),
        "phase3.json": ArtifactError("phase3.json", "not JSON"),
    }
    v = campaign_verdict([1, 2, 3, 4], reports)
    assert (v.status, v.exit_code) == ("fail", 1)
    assert len(v.reasons) == 2 and v.reasons[0].startswith("phase2.json: fail: phase2.counts.b: fail")


def test_a_requested_phase_that_skipped_everything_is_an_error():
    reports = phase_reports() | {"phase2.json": Phase2Report.from_checks([Check.skipped("phase2.x", "asked")])}
    v = campaign_verdict([2], reports)
    assert v.status == "error" and "nothing was verified" in v.reasons[0]


def test_a_report_in_the_wrong_file_is_an_error():
    reports = phase_reports()
    v = campaign_verdict([3], reports | {"phase3.json": reports["phase2.json"]})
    assert v.reasons == ["phase3.json: error: the file holds a phase 2 report, not phase 3"]


@pytest.mark.parametrize(("spec", "phases"), [("1,2,4", [1, 2, 4]), ("4, 1,1", [1, 4]), ([3], [3]), ("", [])])
def test_parse_phases(spec, phases):
    assert parse_phases(spec) == phases


@pytest.mark.parametrize(("spec", "message"), [("5", "there is no phase 5"), ("x", "phase 'x' is not a number")])
def test_parse_phases_rejects_by_name(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_phases(spec)


def test_verdict_from_disk_alone(gate_run):
    assert verdict_for_run(gate_run, [1, 2, 3, 4]).status == "pass"
    (gate_run / "phase2.json").write_bytes(b"")
    v = verdict_for_run(gate_run, [1, 2, 3, 4])
    assert (v.status, v.exit_code) == ("error", 2)
    assert v.reasons == ["phase2.json: error: invalid artifact: / empty file (0 bytes): no evidence"]
