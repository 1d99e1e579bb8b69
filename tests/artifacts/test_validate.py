"""`invoke validate`: every problem as file + JSON pointer + message, non-zero exit on any."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shipgate.evidence.validate import validate_run

ROOT = Path(__file__).resolve().parents[2]


def _edit(path: Path, fn) -> None:
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def _lines(run: Path) -> list[str]:
    return [str(p) for p in validate_run(run)]


def test_a_complete_gate_run_is_valid(gate_run):
    assert validate_run(gate_run) == []


def test_wrong_type_is_named_by_pointer(gate_run):
    _edit(gate_run / "phase2.json", lambda d: d.update(ok="many"))
    assert _lines(gate_run)[0] == "phase2.json  /ok  'many' is not of type 'integer'"


def test_wrong_type_deep_inside_the_summary_names_the_phase_branch(gate_run):
    _edit(gate_run / "campaign-summary.json", lambda d: d["phases"][3]["counts"].update(b="x"))
    assert _lines(gate_run) == ["campaign-summary.json  /phases/3/counts/b  'x' is not of type 'integer'"]


def test_missing_field(gate_run):
    _edit(gate_run / "phase3.json", lambda d: d.pop("checks"))
    assert _lines(gate_run) == ["phase3.json  /  'checks' is a required property"]


def test_unknown_field_is_refused(gate_run):
    _edit(gate_run / "phase1-node-a.json", lambda d: d.update(recal_count=1))
    assert _lines(gate_run) == [
        "phase1-node-a.json  /  Additional properties are not allowed ('recal_count' was unexpected)"]


def test_zero_bytes(gate_run):
    (gate_run / "phase4.json").write_bytes(b"")
    assert _lines(gate_run)[0] == "phase4.json  /  empty file (0 bytes): no evidence"


def test_plain_text_instead_of_json(gate_run):
    (gate_run / "phase4.json").write_text("[chaos] cycle 1 fault=partition_minority ok=100\n")
    assert _lines(gate_run)[0] == ("phase4.json  /  not JSON: Expecting value at line 1 column 2 "
                                   "(text starts '[chaos] cycle 1 fault=partition_minority')")


def test_nan_is_not_json(gate_run):
    (gate_run / "phase4.json").write_text('{"phase": 4, "x": Infinity}')
    assert _lines(gate_run)[0] == "phase4.json  /  not JSON: Infinity is not a JSON value"


def test_not_utf8(gate_run):
    (gate_run / "inventory.json").write_bytes(b'{"a": "\xff"}')
    assert _lines(gate_run) == ["inventory.json  /  not UTF-8 text (invalid byte at offset 7)"]


def test_semantic_rule_beyond_the_schema(gate_run):
    _edit(gate_run / "phase2.json", lambda d: d.update(status="error"))
    assert _lines(gate_run)[0] == "phase2.json  /  Value error, status 'error' contradicts its checks, which give 'pass'"


def test_jsonl_is_checked_line_by_line(gate_run):
    path = gate_run / "history" / "phase2-ops.jsonl"
    lines = path.read_text().splitlines()
    bad = json.loads(lines[1]) | {"type": "done"}
    path.write_text(lines[0] + "\n" + json.dumps(bad) + "\nnot json\n\n")
    assert _lines(gate_run) == [
        "history/phase2-ops.jsonl:2  /type  'done' is not one of ['invoke', 'ok', 'fail', 'info']",
        "history/phase2-ops.jsonl:3  /  not JSON: Expecting value at line 1 column 1 (text starts 'not json')",
        "history/phase2-ops.jsonl:4  /  blank line (JSONL holds one object per line)",
    ]


def test_cycle_history_uses_the_cycle_schema(gate_run):
    path = gate_run / "history" / "phase4-kill_primary_mid_write-cycles.jsonl"
    path.write_text(json.dumps({"cycle": 0, "fault": "f", "writes": 1, "ok": 1, "quorum_not_met": 0}) + "\n")
    assert _lines(gate_run) == ["history/phase4-kill_primary_mid_write-cycles.jsonl:1  /  'fail' is a required property"]


def test_unknown_json_file_is_a_problem_and_other_files_are_ignored(gate_run):
    (gate_run / "extra.json").write_text("{}")
    (gate_run / "index.html").write_text("<html></html>")
    (gate_run / ".phase2.json.x.tmp").write_text("partial")
    assert _lines(gate_run) == ["extra.json  /  no schema for this file name (see shipgate.evidence.models.registry)"]


def test_summary_may_not_claim_more_than_the_evidence(gate_run):
    (gate_run / "phase3.json").unlink()
    problems = _lines(gate_run)
    assert problems == ["campaign-summary.json  /verdict  records 'pass' but the artifacts on disk give 'error': "
                        "phase3.json: error: artifact missing: the phase left no evidence"]


def test_empty_folder(tmp_path):
    assert _lines(tmp_path) == [f"{tmp_path}  /  no artifacts: the folder holds no JSON evidence"]


def _invoke(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("broken", [False, True])
def test_invoke_validate_output_and_exit_code(gate_run, broken):
    if broken:
        (gate_run / "phase2.json").write_bytes(b"")
    out = _invoke("validate", str(gate_run))
    if broken:
        assert out.returncode == 2
        assert out.stdout.splitlines()[0] == "phase2.json  /  empty file (0 bytes): no evidence"
        assert "problem(s) in" in out.stderr and "not valid evidence" in out.stderr
    else:
        assert out.returncode == 0, out.stdout + out.stderr
        assert "complete and valid" in out.stdout


def test_invoke_validate_names_a_missing_folder(tmp_path):
    out = _invoke("validate", str(tmp_path / "nope"))
    assert out.returncode == 2 and "no such run folder" in out.stderr


def test_a_folder_with_no_evidence_is_not_valid(tmp_path):
    """Item 10: a startup-error folder (a summary and nothing else) passed as 'every artifact is valid'."""
    from shipgate.evidence.models import CampaignSummary, PhaseResult

    run = tmp_path / "c-empty"
    run.mkdir()
    results = [PhaseResult(phase=1, artifact=f"phase1-{n}.json", status="error", reason="artifact missing")
               for n in ("node-a", "node-b", "node-c")]
    summary = CampaignSummary(campaign_id="c-empty", overall_pass=False, verdict="error", exit_code=2,
                              reasons=["the gate failed: LabError: sshd did not come up"], phases_requested=[1],
                              phases_run=[], phase_results=results)
    (run / "campaign-summary.json").write_text(summary.to_json())
    out = _invoke("validate", str(run))
    assert out.returncode == 2, out.stdout
    lines = out.stdout.splitlines()
    assert "inventory.json  /  missing: the hosts and target the campaign ran on are not recorded" in lines
    for node in ("node-a", "node-b", "node-c"):
        assert f"phase1-{node}.json  /  missing: phase 1 was requested and left no evidence" in lines
    assert "every artifact is valid" not in out.stdout and "not valid evidence" in out.stderr


def test_a_requested_phase_artifact_missing_is_invalid_even_when_the_summary_admits_it(gate_run):
    from shipgate.evidence.validate import check_run

    (gate_run / "phase4.json").unlink()
    summary = json.loads((gate_run / "campaign-summary.json").read_text())
    summary.update(verdict="error", exit_code=2, overall_pass=False, reasons=["phase4.json: error: missing"])
    (gate_run / "campaign-summary.json").write_text(json.dumps(summary))
    assert [str(p) for p in check_run(gate_run)] == [
        "phase4.json  /  missing: phase 4 was requested and left no evidence"]


def test_a_folder_without_its_summary_is_invalid(gate_run):
    from shipgate.evidence.validate import check_run

    (gate_run / "campaign-summary.json").unlink()
    assert [str(p) for p in check_run(gate_run)] == [
        "campaign-summary.json  /  missing: without the summary nothing says what the campaign requested"]
