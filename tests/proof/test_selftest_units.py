"""The self-test's judgement, planning and output, on campaign summaries built through the real models and
the real verdict code (no lab): what counts as caught, missed, error and false red, and the exit code."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from refpeer.defects import DEFECTS
from shipgate.evidence.models import (
    BY_NAME,
    CampaignSummary,
    Check,
    FalseRedRate,
    Phase1NodeReport,
    Phase2Report,
    Phase3Report,
    Phase4Report,
    PhaseReportBase,
    SelftestReport,
)
from shipgate.evidence.models.schemas import load_schema
from shipgate.evidence.verdict import campaign_verdict
from shipgate.proof.selftest import (
    PLANS,
    DefectPlan,
    RowPlan,
    SelftestError,
    finish_report,
    judge_row,
    markdown,
    parse_defects,
    plan_rows,
    row_settings,
    shape_settings,
)
from shipgate.run.settings import FAULT_CLASSES

ROOT = Path(__file__).resolve().parents[2]


def ok(id: str) -> Check:
    return Check.of(id, 1, 1, True)


def bad(id: str, detail: str = "broken") -> Check:
    return Check.of(id, 1, 0, False, detail)


def err(id: str, detail: str = "host unreachable") -> Check:
    return Check.error(id, 1, detail)


def reports_for(phase: int, checks: list[Check]) -> list[PhaseReportBase]:
    if phase == 1:
        return [Phase1NodeReport.from_checks(checks, node=n, host=n) for n in ("node-a", "node-b", "node-c")]
    model = {2: Phase2Report, 3: Phase3Report, 4: Phase4Report}[phase]
    return [model.from_checks(checks)]


def summary(phases: dict[int, list[Check]], *, extra_reasons: list[str] | None = None,
            missing: set[int] = frozenset()) -> CampaignSummary:  # type: ignore[assignment]
    """A campaign summary as run_campaign builds it: artifacts -> campaign_verdict -> CampaignSummary."""
    reports = {r.artifact_name: r for p, checks in phases.items() if p not in missing for r in reports_for(p, checks)}
    verdict = campaign_verdict(list(phases), reports)
    status = verdict.status
    reasons = list(verdict.reasons) + list(extra_reasons or [])
    if extra_reasons and status == "pass":
        status = "error"
    return CampaignSummary(
        campaign_id="st-test", verdict=status, exit_code={"pass": 0, "fail": 1, "error": 2}[status],
        overall_pass=status == "pass", reasons=[] if status == "pass" else reasons, phases=list(reports.values()),
        phases_requested=list(phases), phases_run=verdict.phases_run, phase_results=verdict.phase_results,
        durations_s={f"phase{p}": 1.5 for p in phases})


CLEAN = RowPlan("clean", None, (1, 2, 3, 4), FAULT_CLASSES)


def defect_row(name: str) -> RowPlan:
    return RowPlan(name, name, (int(DEFECTS[name].phase),), FAULT_CLASSES)


def test_clean_peer_all_green_meets_its_requirement():
    row = judge_row(CLEAN, summary({p: [ok("x")] for p in (1, 2, 3, 4)}), "run", 10.0)
    assert row.ok and row.problems == [] and row.verdict == "pass"
    assert [c.outcome for c in row.cells] == ["green"] * 4 and all(c.checks == [] for c in row.cells)


def test_clean_peer_red_is_a_false_red_naming_the_check():
    row = judge_row(CLEAN, summary({1: [ok("x")], 2: [bad("convergence.node-b.count", "190 of 200")],
                                    3: [ok("x")], 4: [ok("x")]}), "run", 10.0)
    assert not row.ok
    cell = row.cells[1]
    assert cell.outcome == "false_red" and cell.checks[0].id == "convergence.node-b.count"
    assert "false red" in row.problems[0] and "190 of 200" in row.problems[0]


def test_clean_peer_error_is_reported_as_the_gate_failing():
    row = judge_row(CLEAN, summary({1: [ok("x")], 2: [ok("x")], 3: [ok("x")], 4: [err("c.fault_took_effect")]}),
                    "run", 10.0)
    assert not row.ok and row.cells[3].outcome == "error" and "the gate failed" in row.problems[0]


def test_defect_caught_by_the_expected_check_in_its_owning_phase():
    row = judge_row(defect_row("backup_corrupt"),
                    summary({1: [ok("version"), bad("backup.sha256_matches_manifest", "sha differs")]}), "run", 3.0)
    assert row.ok and row.right_reason is True and row.warnings == []
    (cell,) = row.cells
    assert cell.owner and cell.outcome == "caught"
    assert {c.artifact for c in cell.checks} == {"phase1-node-a.json", "phase1-node-b.json", "phase1-node-c.json"}
    assert all(c.id == "backup.sha256_matches_manifest" and c.detail == "sha differs" for c in cell.checks)


def test_defect_caught_for_another_reason_is_a_warning_not_a_miss():
    row = judge_row(defect_row("quorum_w1"), summary({2: [bad("burst.acknowledged")]}), "run", 3.0)
    assert row.ok and row.right_reason is False
    assert "another reason" in row.warnings[0] and "burst.acknowledged" in row.warnings[0]


def test_defect_missed_fails_the_requirement():
    row = judge_row(defect_row("migrate_truncate"), summary({3: [ok("content.roundtrip.identical")]}), "run", 3.0)
    assert not row.ok and row.cells[0].outcome == "missed" and "missed" in row.problems[0]


def test_defect_seen_as_error_is_a_problem_not_a_catch():
    row = judge_row(defect_row("ack_before_durable"),
                    summary({4: [ok("kill_primary_mid_write.lost_acknowledged"),
                                 err("kill_primary_mid_write.fault_took_effect", "no evidence of the kill")]}),
                    "run", 3.0)
    assert not row.ok and row.cells[0].outcome == "error"
    assert "error, not fail" in row.problems[0] and "no evidence of the kill" in row.problems[0]


def test_caught_with_errored_checks_is_caught_with_a_warning():
    row = judge_row(defect_row("quorum_hang"), summary({2: [bad("probe2.fast"), err("catchup.after_restart")]}),
                    "run", 3.0)
    assert row.ok and row.cells[0].outcome == "caught" and "errored" in row.warnings[0]


def test_a_missing_artifact_and_a_gate_crash_are_evidence_of_error():
    row = judge_row(CLEAN, summary({1: [ok("x")], 2: [ok("x")]}, missing={2},
                                   extra_reasons=["the gate failed: RuntimeError: boom"]), "run", 3.0)
    assert not row.ok
    assert row.cells[1].outcome == "error" and row.cells[1].checks[0].id == "artifact"
    assert row.campaign_reasons == ["the gate failed: RuntimeError: boom"]
    assert any("boom" in p for p in row.problems)


def _report(rows, planned, interrupted=False) -> SelftestReport:
    base = SelftestReport(selftest_id="selftest-x", shape="reduced", started_at=datetime.now(UTC), lab_name="st",
                          plan="p", rows=rows, false_red=FalseRedRate(runs=0, red=0), requirements_met=False,
                          exit_code=2, interrupted=interrupted)
    return finish_report(base, planned)


def test_report_exit_codes_and_false_red_rate():
    green = judge_row(CLEAN, summary({p: [ok("x")] for p in (1, 2, 3, 4)}), "r1", 1.0)
    red = judge_row(CLEAN, summary({1: [bad("x")], 2: [ok("x")], 3: [ok("x")], 4: [ok("x")]}), "r2", 1.0)
    caught = judge_row(defect_row("no_catchup"), summary({2: [bad("catchup.after_restart")]}), "r3", 1.0)
    plans = [CLEAN, CLEAN, defect_row("no_catchup")]

    met = _report([green, caught], [CLEAN, defect_row("no_catchup")])
    assert met.requirements_met and met.exit_code == 0 and met.false_red == FalseRedRate(runs=1, red=0, rate=0.0)

    not_met = _report([green, red, caught], plans)
    assert not not_met.requirements_met and not_met.exit_code == 1
    assert not_met.false_red.red == 1 and not_met.false_red.fail == 1 and not_met.false_red.rate == 0.5

    stopped = _report([green], plans, interrupted=True)
    assert stopped.exit_code == 2 and any("2 of 3 campaign(s) did not run" in p for p in stopped.problems)


def test_report_validates_against_its_schema_and_markdown_is_table_safe():
    hostile = bad("backup.manifest_count", "a | pipe <script>x</script>\nand a newline")
    row = judge_row(defect_row("backup_no_manifest"), summary({1: [hostile]}), "r", 1.0)
    report = _report([row], [defect_row("backup_no_manifest")])
    doc = json.loads(report.to_json())
    assert list(Draft202012Validator(load_schema(BY_NAME["selftest"])).iter_errors(doc)) == []
    assert SelftestReport.model_validate(doc) == report
    text = markdown(report)
    assert "<script>" not in text and "a \\| pipe" in text
    table = [line for line in text.splitlines() if line.startswith("| backup_no_manifest")]
    assert len(table) == 1 and "**caught** ★" in table[0]
    assert "clean peer was not run" in " ".join(report.warnings)


def test_every_defect_of_the_registry_has_a_plan_and_the_plan_names_real_classes():
    assert set(PLANS) == set(DEFECTS)
    for name, plan in PLANS.items():
        assert plan.checks, name
        assert set(plan.faults) <= set(FAULT_CLASSES)
        assert bool(plan.faults) == (DEFECTS[name].phase == "4"), name


def test_a_defect_no_workload_exposes_yet_is_left_out_by_default_and_said_so(monkeypatch):
    # phase 2's mixed workload now exposes the two 0.6.3 hazards that were pending (title update, bulk tie)
    assert {n for n, p in PLANS.items() if p.pending} == set()
    monkeypatch.setitem(PLANS, "bulk_tied_timestamps", DefectPlan(("bulk_catchup.*",), pending="not yet"))
    default = {r.defect for r in plan_rows("reduced", None)}
    assert "bulk_tied_timestamps" not in default and {"pg_list_cap_1000", "update_title_not_replicated"} <= default
    assert {r.defect for r in plan_rows("reduced", ["bulk_tied_timestamps"], clean=False)} == {"bulk_tied_timestamps"}


def test_plan_rows_per_shape():
    reduced = plan_rows("reduced", None)
    assert [r.name for r in reduced] == ["clean", *(d for d in DEFECTS if not PLANS[d].pending)]
    assert reduced[0].phases == (1, 2, 3, 4) and reduced[0].faults == FAULT_CLASSES
    by = {r.name: r for r in reduced}
    assert by["ack_before_durable"].phases == (4,) and by["ack_before_durable"].faults == ("kill_primary_mid_write",)
    assert by["backup_corrupt"].phases == (1,)
    full = {r.name: r for r in plan_rows("full", ["skew_cursor"])}
    assert full["skew_cursor"].faults == FAULT_CLASSES
    cross = {r.name: r for r in plan_rows("reduced", ["fanout_abort", "skew_cursor", "migrate_truncate"], cross=True)}
    assert cross["fanout_abort"].phases == (2, 4) and cross["skew_cursor"].phases == (2, 4)
    assert cross["migrate_truncate"].phases == (3,)
    repeated = plan_rows("reduced", [], repeat=3)
    assert [(r.name, r.run) for r in repeated] == [("clean", 1), ("clean", 2), ("clean", 3)]
    with pytest.raises(SelftestError):
        plan_rows("reduced", [], clean=False)
    with pytest.raises(SelftestError):
        plan_rows("reduced", None, repeat=0)


def test_every_row_of_a_shape_runs_the_same_settings():
    base = shape_settings("reduced", seed=5)
    assert (base.phase4.cycles, base.phase4.writes, base.phase4.seed) == (5, 50, 5)
    row = row_settings(base, by_name("ack_before_durable"))
    assert row.phases == [4] and row.phase4.faults == ["kill_primary_mid_write"]
    assert row.phase4.model_dump(exclude={"faults"}) == base.phase4.model_dump(exclude={"faults"})
    assert row.phase2 == base.phase2
    assert shape_settings("full").phase4.cycles == 50


def by_name(name: str) -> RowPlan:
    return next(r for r in plan_rows("reduced", [name], clean=False) if r.name == name)


def test_parse_defects():
    assert parse_defects(None) is None and parse_defects("all") is None and parse_defects("none") == []
    assert parse_defects("quorum_w1, backup_corrupt,quorum_w1") == ["quorum_w1", "backup_corrupt"]
    with pytest.raises(SelftestError, match=r"unknown defect\(s\): nope .*valid: fanout_abort"):
        parse_defects("quorum_w1,nope")


@pytest.mark.parametrize(("args", "message"), [
    (["--defects", "nope"], "unknown defect(s): nope"),
    (["--shape", "huge"], "--shape must be reduced or full"),
    (["--repeat", "0"], "--repeat must be a whole number >= 1"),
    (["--lab-name", "Bad-Name"], "lab name 'Bad-Name' must be"),
])
def test_bad_input_exits_2_with_a_clear_message(args: list[str], message: str, tmp_path: Path):
    res = subprocess.run([sys.executable, "-m", "invoke", "selftest", *args, "--runs-dir", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2, res.stderr
    assert message in res.stderr
    assert list(tmp_path.iterdir()) == [], "nothing is written on bad input"
