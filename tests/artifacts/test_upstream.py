"""Importing upstream history: every fixture imports, the re-audit is honest, odd shapes never crash it."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipgate.evidence.models import CampaignSummary, Phase2Report
from shipgate.evidence.upstream import ImportProblem, audit_table, import_run, import_upstream
from shipgate.evidence.validate import validate_run

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "upstream" / "runs"
SUMMARY_ONLY = {"ship-gate-v0.6.3-rc1", "soak-v0.6.0-r2", "soak-v0.6.0-r17", "soak-v0.6.0-r19",
                "soak-v0.6.0-r21", "soak-v0.6.0-r25", "soak-v0.6.0-r31", "soak-v0.6.0-r41"}
COMPLETE = "ship-gate-v0.6.3-rc1-r2"


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    out = tmp_path_factory.mktemp("imported")
    return out, import_upstream(FIXTURES, out)


def test_every_fixture_imports_and_reaudits(imported):
    _out, rows = imported
    assert len(rows) == 52
    verdicts = {r.run: r.verdict for r in rows}
    assert {run for run, v in verdicts.items() if v == "error"} == SUMMARY_ONLY
    assert sum(v == "pass" for v in verdicts.values()) == 44
    for row in rows:
        assert row.upstream_pass is True
        if row.run in SUMMARY_ONLY:
            assert row.differs and row.why == 'no phase evidence (upstream recorded no phase ("phases": []))'


def test_imported_folders_validate_and_hold_no_password(imported):
    out, rows = imported
    for row in rows:
        assert validate_run(row.out_dir) == [], row.run
        for f in row.out_dir.rglob("*"):
            assert "ai_memory_test@" not in f.read_text(), f
    summary = CampaignSummary.load(out / COMPLETE / "campaign-summary.json")
    assert (summary.source, summary.verdict, summary.overall_pass, summary.exit_code) == ("upstream", "pass", True, 0)
    assert [p.phase for p in summary.phases] == [1, 1, 1, 2, 3, 4]
    assert summary.upstream.files[0].name == "campaign-summary.json" and len(summary.upstream.files) == 7


def test_imported_report_keeps_upstream_fields_and_adds_only_derived_ones(imported):
    out, _ = imported
    ours = json.loads((out / COMPLETE / "phase2.json").read_text())
    theirs = json.loads((FIXTURES / COMPLETE / "phase2.json").read_text())
    for key, value in theirs.items():
        assert ours[key] == ([] if value == [""] else value), key
    assert ours["source"] == "upstream" and ours["status"] == "pass"
    assert "missing_writes" in ours and "time_to_converge_s" not in ours.get("details", {})
    summary_only = json.loads((out / "soak-v0.6.0-r2" / "campaign-summary.json").read_text())
    assert summary_only["phases"] == [] and summary_only["phases_run"] == []
    assert not (out / "soak-v0.6.0-r2" / "phase2.json").exists()


def test_reimport_is_byte_identical(imported, tmp_path):
    out, _rows = imported
    again = import_run(FIXTURES / COMPLETE, tmp_path)
    for f in (out / COMPLETE).iterdir():
        assert (again.out_dir / f.name).read_bytes() == f.read_bytes()


def test_audit_table(imported):
    _, rows = imported
    table = audit_table(rows)
    assert table.splitlines()[-1] == "52 runs: 44 pass, 0 fail, 8 error; 8 differ from upstream's overall_pass"
    line = next(ln for ln in table.splitlines() if ln.startswith("soak-v0.6.0-r2 "))
    assert line.split()[:3] == ["soak-v0.6.0-r2", "pass", "error"] and "no phase evidence" in line


# --- synthetic upstream shapes not in the sample ---------------------------------------------------------


@pytest.fixture
def run(tmp_path) -> Path:
    """A writable copy of a complete upstream run."""
    dst = tmp_path / "src" / "soak-x"
    shutil.copytree(FIXTURES / COMPLETE, dst)
    for f in dst.iterdir():
        f.chmod(0o644)
    return dst


def _edit(path: Path, fn) -> None:
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def _import(run: Path, tmp_path: Path):
    row = import_run(run, tmp_path / "out")
    assert validate_run(row.out_dir) == []
    return row, CampaignSummary.load(row.out_dir / "campaign-summary.json")


def test_zero_byte_phase_file(run, tmp_path):
    (run / "phase2.json").write_bytes(b"")
    row, summary = _import(run, tmp_path)
    assert row.verdict == "error" and row.why == "phase2.json error: phase2.json is empty (0 bytes)"
    assert next(f for f in summary.upstream.files if f.name == "phase2.json").state == "empty"


def test_plain_text_phase4(run, tmp_path):
    (run / "phase4.json").write_text("=== chaos cycle 1/50 fault=kill_primary_mid_write ===\nok=3 fail=97\n")
    row, _ = _import(run, tmp_path)
    assert row.verdict == "error"
    assert row.why.startswith("phase4.json error: phase4.json is not JSON (Expecting value at line 1 column 1); "
                              "it reads like plain text: '=== chaos cycle 1/50")


def test_reconstructed_summary_without_phases(tmp_path):
    src = tmp_path / "src" / "v0.6.0.0-final-r9"
    src.mkdir(parents=True)
    (src / "campaign-summary.json").write_text(json.dumps({
        "campaign_id": "v0.6.0.0-final-r9", "ai_memory_git_ref": "v0.6.0", "completed_at": "2026-04-20T10:00:00Z",
        "overall_pass": True, "_reconstructed_from": "workflow log of run 24601"}))
    row, summary = _import(src, tmp_path)
    assert (row.verdict, row.upstream_pass) == ("error", True)
    assert row.why == ("no phase evidence (campaign-summary.json has no 'phases' key; campaign-summary.json was "
                       "reconstructed by hand from \"workflow log of run 24601\")")
    assert summary.reconstructed_from == "workflow log of run 24601"
    assert summary.upstream.files[0].state == "reconstructed"


def test_reconstructed_phase_file_is_not_evidence(run, tmp_path):
    _edit(run / "phase3.json", lambda d: d.update(_reconstructed_from="notes"))
    row, _ = _import(run, tmp_path)
    assert row.verdict == "error" and "phase3.provenance: error" in row.why


def test_partial_phase_list(run, tmp_path):
    for name in ("phase3.json", "phase4.json"):
        (run / name).unlink()
    _edit(run / "campaign-summary.json", lambda d: d.update(phases=d["phases"][:4]))
    row, summary = _import(run, tmp_path)
    assert row.verdict == "error" and row.why == "partial phase list: phase 3, 4 missing"
    assert summary.phases_run == [1, 2]


def test_phase_file_absent_but_recorded_in_the_summary(run, tmp_path):
    (run / "phase2.json").unlink()
    row, summary = _import(run, tmp_path)
    assert row.verdict == "pass"
    assert "phase2.json absent; its copy in campaign-summary.json 'phases' was used" in summary.upstream.notes


def test_phase2_counts_below_threshold_fail(run, tmp_path):
    def broken(d):
        d.update(counts={"a": 200, "b": 166, "c": 164}, reasons=["node-b count 166 < 190"])
        d["pass"] = False
    _edit(run / "phase2.json", broken)
    _edit(run / "campaign-summary.json", lambda d: d.update(overall_pass=False))
    row, _ = _import(run, tmp_path)
    assert (row.verdict, row.differs) == ("fail", False)
    report = Phase2Report.load(row.out_dir / "phase2.json")
    assert {c.id: c.status for c in report.checks if c.status != "pass"} == {
        "phase2.upstream_pass": "fail", "phase2.counts.b": "fail", "phase2.counts.c": "fail"}
    assert report.reasons == ["node-b count 166 < 190"]


def test_phase4_bound_of_0_2_fails(run, tmp_path):
    _edit(run / "phase4.json", lambda d: d.update(convergence_by_fault={"kill_primary_mid_write": 1,
                                                                        "partition_minority": 0.2}))
    row, _ = _import(run, tmp_path)
    assert row.verdict == "fail" and row.differs
    assert "phase4.partition_minority.convergence_bound: fail (expected \">= 0.995\", observed 0.2)" in row.why


@pytest.mark.parametrize(("bounds", "detail"), [
    (None, "no fault class produced a bound"),
    ({}, "no fault class produced a bound"),
    ({"kill_primary_mid_write": None}, "the class produced no bound"),
    ({"kill_primary_mid_write": 6.286}, "counted rows across cycles"),
])
def test_phase4_vacuous_or_impossible_bounds_are_errors(run, tmp_path, bounds, detail):
    _edit(run / "phase4.json", lambda d: d.update(convergence_by_fault=bounds))
    row, _ = _import(run, tmp_path)
    assert row.verdict == "error" and detail in row.why


def test_floats_where_ints_and_empty_reason_strings(run, tmp_path):
    _edit(run / "phase2.json", lambda d: d.update(ok=200.0, total_writes=200.0, counts={"a": 200.0, "b": 200,
                                                                                       "c": 200.0}))
    row, _ = _import(run, tmp_path)
    assert row.verdict == "pass"
    data = json.loads((row.out_dir / "phase2.json").read_text())
    assert data["ok"] == 200 and isinstance(data["ok"], int) and data["reasons"] == []
    assert data["counts"] == {"a": 200, "b": 200, "c": 200} and "upstream_extra" not in data


def test_odd_sub_object_costs_one_check_not_the_phase(run, tmp_path):
    _edit(run / "phase1-node-b.json", lambda d: d.update(stats={"total": "one"}))
    row, _ = _import(run, tmp_path)
    data = json.loads((row.out_dir / "phase1-node-b.json").read_text())
    assert data["upstream_extra"] == {"stats": {"total": "one"}} and "stats" not in data
    assert row.verdict == "error" and "node-b.stats.total: error" in row.why


@pytest.mark.parametrize(("content", "why"), [
    ("[1, 2]", "phase2.json error: phase2.json holds a JSON list, not an object"),
    ('{"phase": 2, "reasons": [""]}', "phase2.json error: phase2.json has no boolean 'pass' (found None)"),
    ('{"phase": 3, "pass": true}', "phase2.json error: phase2.json says phase 3, expected phase 2"),
    ("   \n", "phase2.json error: phase2.json is blank (4 bytes of whitespace)"),
])
def test_malformed_phase_files_are_named(run, tmp_path, content, why):
    (run / "phase2.json").write_text(content)
    row, _ = _import(run, tmp_path)
    assert (row.verdict, row.why) == ("error", why)


def test_nan_is_not_json(run, tmp_path):
    (run / "phase4.json").write_text('{"phase": 4, "pass": true, "convergence_by_fault": {"k": NaN}}')
    row, _ = _import(run, tmp_path)
    assert row.why == "phase4.json error: phase4.json is not JSON: NaN is not a JSON value"


def test_never_overwrites_a_gate_run(run, tmp_path, gate_run):
    target = tmp_path / "out" / run.name
    shutil.copytree(gate_run, target)
    row = import_run(run, tmp_path / "out")
    assert row.verdict == "error" and "not imported; left untouched" in row.why
    assert CampaignSummary.load(target / "campaign-summary.json").source == "gate"


JUNK = st.one_of(
    st.binary(max_size=64),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                 lambda i: st.lists(i, max_size=3) | st.dictionaries(st.text(max_size=8), i, max_size=3),
                 max_leaves=8).map(lambda v: json.dumps(v).encode()),
)
FILES = ["campaign-summary.json", "phase1-node-a.json", "phase2.json", "phase3.json", "phase4.json"]


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(FILES), junk=JUNK, key=st.sampled_from([None, "pass", "counts", "stats", "phases",
                                                                   "convergence_by_fault", "report_forward"]))
def test_importer_never_crashes(tmp_path_factory, name, junk, key):
    src = tmp_path_factory.mktemp("fuzz") / "run"
    shutil.copytree(FIXTURES / COMPLETE, src)
    path = src / name
    path.chmod(0o644)
    if key is None:
        path.write_bytes(junk)
    else:
        data = json.loads(path.read_text())
        try:
            data[key] = json.loads(junk)
        except ValueError:
            data[key] = junk.decode("latin-1")
        path.write_text(json.dumps(data))
    row = import_run(src, src.parent / "out")
    assert row.verdict in ("pass", "fail", "error")
    assert validate_run(row.out_dir) == []


def test_invoke_import_upstream(tmp_path):
    out = subprocess.run([sys.executable, "-m", "invoke", "import-upstream", str(FIXTURES), "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "52 runs: 44 pass, 0 fail, 8 error; 8 differ from upstream's overall_pass" in out.stdout
    assert len(list(tmp_path.iterdir())) == 52
    bad = subprocess.run([sys.executable, "-m", "invoke", "import-upstream", str(tmp_path / "none")], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "is not a directory" in bad.stderr


def test_a_folder_without_runs_is_named(tmp_path):
    with pytest.raises(ImportProblem, match="holds no upstream run folders"):
        import_upstream(tmp_path, tmp_path / "out")
