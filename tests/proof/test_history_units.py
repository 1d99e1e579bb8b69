"""`invoke history`'s comparison with the record, its model and its outputs, on campaign summaries built through
the real models and the real verdict code (no lab); the release selection against the fixture copy of the
crates.io index (served on loopback)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shipgate.evidence.models import BY_NAME, CampaignSummary, Check
from shipgate.evidence.models.release_history import HistoryRow, ReleaseHistoryReport
from shipgate.evidence.validate import check_document, check_run
from shipgate.evidence.verdict import campaign_verdict
from shipgate.proof.history import (
    HistoryError,
    finish,
    judge,
    markdown,
    not_judged,
    select_releases,
    shape_settings,
)
from shipgate.proof.history_html import render_html
from shipgate.proof.history_record import (
    FiledFinding,
    Record,
    RecordedDefect,
    RecordedRelease,
    RecordError,
    compare,
    evidence_of,
    parse_check,
    read_record,
)
from shipgate.target import releases
from tests.proof.test_selftest_units import bad, err, ok, reports_for
from tests.target.test_releases import index_server  # noqa: F401  (a fixture)

ROOT = Path(__file__).resolve().parents[2]


def summary(phases: dict[int, list[Check]], campaign_id: str = "history-t-0.6.0") -> CampaignSummary:
    """A campaign summary as run_campaign builds it: artifacts -> campaign_verdict -> CampaignSummary."""
    reports = {r.artifact_name: r for p, checks in phases.items() for r in reports_for(p, checks)}
    verdict = campaign_verdict(list(phases), reports)
    status = verdict.status
    return CampaignSummary(
        campaign_id=campaign_id, verdict=status, exit_code={"pass": 0, "fail": 1, "error": 2}[status],
        overall_pass=status == "pass", reasons=[] if status == "pass" else list(verdict.reasons),
        phases=list(reports.values()), phases_requested=list(phases), phases_run=verdict.phases_run,
        phase_results=verdict.phase_results, durations_s={f"phase{p}": 2.0 for p in phases})


def defect(id: str, phases: tuple[int, ...], check: str, *, observable: bool = True) -> RecordedDefect:
    patterns, proposed = parse_check(check)
    return RecordedDefect(id=id, fixed_in="0.6.1", source="CHANGELOG", phases=phases, check=check,
                          patterns=patterns, proposed=proposed, lab_observable=observable,
                          why_not=None if observable else "needs egress")


NO_CATCHUP = defect("no-catchup-loop", (2, 4), "catchup.after_restart; kill_primary_mid_write.lost_acknowledged / "
                    ".replicas_agree")
UPDATE = defect("update-not-fanned-out", (2,), "proposed update.fanout: PUT through each node")
EMBED = defect("peer-embedding-not-refreshed", (), "none", observable=False)
REL = RecordedRelease("0.6.0", (NO_CATCHUP, UPDATE, EMBED))
GREEN = {p: [ok("x")] for p in (1, 2, 3, 4)}


def record(*findings: FiledFinding) -> Record:
    return Record(path="t.toml", releases={"0.6.0": REL}, findings=tuple(findings))


def by_phase(cmp, phase):
    return next(c for c in cmp.cells if c.phase == phase)


def outcomes(cmp):
    return {d.id: d.outcome for d in cmp.defects}


@pytest.mark.parametrize(("text", "patterns", "proposed"), [
    ("catchup.after_restart; kill_primary_mid_write.lost_acknowledged / .replicas_agree; clock_skew_peer."
     "lost_acknowledged / .convergence_bound",
     ("catchup.after_restart", "kill_primary_mid_write.lost_acknowledged", "kill_primary_mid_write.replicas_agree",
      "clock_skew_peer.lost_acknowledged", "clock_skew_peer.convergence_bound"), False),
    ("proposed update.fanout: PUT content+tags through each node", ("update.fanout",), True),
    ("proposed consolidate.fanout (optional; not in issue 17's list)", ("consolidate.fanout",), True),
    ("list.<node>.honours_limit / <fault>.list_honours_limit (existing): fires only when",
     ("list.*.honours_limit", "*.list_honours_limit"), False),
    ("proposed duplicate.rule judged per release (201 same id)", ("duplicate.rule",), True),
    ("proposed probe: iptables DROP one peer", (), True),
    ("none", (), False), ("none planned", (), False),
])
def test_the_records_check_text_reads_as_check_id_patterns(text, patterns, proposed):
    assert parse_check(text) == (patterns, proposed)


def test_the_committed_record_reads_whole():
    rec = read_record(ROOT / "docs" / "release-history.toml")
    assert list(rec.releases)[:2] == ["0.6.0", "0.6.1"] and len(rec.releases) == 11
    assert sum(len(r.defects) for r in rec.releases.values()) == 66
    first = {d.id: d for d in rec.releases["0.6.0"].defects}
    assert first["no-catchup-loop"].phases == (2, 4) and "catchup.after_restart" in first["no-catchup-loop"].patterns
    assert not first["peer-embedding-not-refreshed"].lab_observable
    assert {f.id for f in rec.findings} == {"recall-hangs-offline", "postgres-list-cap-1000",
                                            "title-update-not-replicated", "bulk-tied-timestamps-catchup-loss",
                                            "update-tags-union-on-peers"}
    by_id = {f.id: f for f in rec.findings}
    assert len(by_id["postgres-list-cap-1000"].releases) == 11, "measured on every federated release"
    links = {d.id: d for d in rec.releases["0.6.3"].defects}["migrate-drops-links"]
    assert links.patterns == ("links.*.identical",) and not links.proposed


def test_a_malformed_record_is_refused_by_name(tmp_path):
    bad_record = tmp_path / "r.toml"
    bad_record.write_text('schema = "release-history/1"\n[[release]]\nversion = "0.6.0"\n'
                          '[[release.defect]]\nid = "x"\nphase = "phase9"\n')
    with pytest.raises(RecordError, match=r"release 0\.6\.0 defect #1.*phase9"):
        read_record(bad_record)
    (tmp_path / "s.toml").write_text('schema = "other"\n')
    with pytest.raises(RecordError, match="schema 'other'"):
        read_record(tmp_path / "s.toml")


def test_red_for_the_recorded_reason_is_as_expected():
    s = summary({**GREEN, 2: [ok("burst.acknowledged"), bad("catchup.after_restart", "node-b missed 1 row")]})
    cmp = compare(REL, (), evidence_of(s), "0.6.0")
    assert outcomes(cmp) == {"no-catchup-loop": "caught", "update-not-fanned-out": "uncovered",
                             "peer-embedding-not-refreshed": "not_observable"}
    cell = by_phase(cmp, 2)
    assert (cell.status, cell.expected, cell.outcome) == ("fail", "red", "expected_red")
    assert [c.id for c in cell.decisive] == ["catchup.after_restart"] and cell.explained_by == ["no-catchup-loop"]
    assert by_phase(cmp, 1).outcome == "expected_green" and cmp.surprises == []


def test_a_recorded_defect_whose_check_passes_is_a_gap():
    s = summary({**GREEN, 2: [ok("catchup.after_restart")], 4: [ok("kill_primary_mid_write.lost_acknowledged")]})
    cmp = compare(REL, (), evidence_of(s), "0.6.0")
    verdict = next(d for d in cmp.defects if d.id == "no-catchup-loop")
    assert verdict.outcome == "missed" and verdict.surprise and "a gap" in verdict.why
    assert by_phase(cmp, 2).outcome == "surprise" and by_phase(cmp, 2).expected == "red"
    assert by_phase(cmp, 2).gaps == ["no-catchup-loop"]
    assert any("no-catchup-loop" in s for s in cmp.surprises)


def test_a_red_no_recorded_defect_explains_is_a_finding():
    s = summary({**GREEN, 2: [bad("catchup.after_restart"), bad("convergence.node-c.count")]})
    cmp = compare(REL, (), evidence_of(s), "0.6.0")
    cell = by_phase(cmp, 2)
    assert cell.outcome == "surprise" and cell.unexplained == ["convergence.node-c.count"]
    assert [f.check.id for f in cmp.findings] == ["convergence.node-c.count"] and cmp.findings[0].surprise
    assert any("finding: convergence.node-c.count" in s for s in cmp.surprises)


def test_a_proposed_check_is_judged_once_the_gate_has_it():
    s = summary({**GREEN, 2: [bad("catchup.after_restart"), bad("update.fanout.node-b", "old content")]})
    assert outcomes(compare(REL, (), evidence_of(s), "0.6.0"))["update-not-fanned-out"] == "caught"
    s = summary({**GREEN, 2: [bad("catchup.after_restart"), ok("update.fanout")]})
    cmp = compare(REL, (), evidence_of(s), "0.6.0")
    assert outcomes(cmp)["update-not-fanned-out"] == "missed" and by_phase(cmp, 2).outcome == "surprise"


def test_a_phase_that_errors_is_not_judged_and_says_why():
    s = summary({**GREEN, 2: [err("serve.node-b.alive_before_probes", "serve exited 2")]})
    cmp = compare(REL, (), evidence_of(s), "0.6.0")
    cell = by_phase(cmp, 2)
    assert (cell.status, cell.outcome) == ("error", "error")
    assert cell.decisive[0].id == "serve.node-b.alive_before_probes"
    assert outcomes(cmp)["no-catchup-loop"] == "undetermined"  # phase 4 here records none of its checks
    assert any("phase 2: error" in s and "serve exited 2" in s for s in cmp.surprises)


def test_a_filed_finding_explains_its_red_and_must_reproduce():
    cap = FiledFinding("pg-cap", ("0.6.0",), (3,), ("migrate.reverse.read",), "docs/real-target.md")
    s = summary({**GREEN, 2: [bad("catchup.after_restart")], 3: [bad("migrate.reverse.read")]})
    cmp = compare(REL, (cap,), evidence_of(s), "0.6.0")
    assert by_phase(cmp, 3).outcome == "expected_red" and by_phase(cmp, 3).explained_by == ["finding pg-cap"]
    assert cmp.findings[0].filed_as == "pg-cap" and not cmp.findings[0].surprise and cmp.surprises == []
    s = summary({**GREEN, 2: [bad("catchup.after_restart")]})
    cmp = compare(REL, (cap,), evidence_of(s), "0.6.0")
    assert by_phase(cmp, 3).outcome == "surprise" and any("did not reproduce" in x for x in cmp.surprises)
    other = compare(REL, (cap,), evidence_of(summary({**GREEN, 3: [bad("migrate.reverse.read")]})), "0.6.1")
    assert other.findings[0].filed_as is None  # filed for 0.6.0 only: elsewhere still a finding


def test_a_release_missing_from_the_record_explains_nothing():
    cmp = compare(None, (), evidence_of(summary(GREEN)), "0.11.0")
    assert cmp.defects == [] and any("not in the record" in s for s in cmp.surprises)


def _report(rows: list[HistoryRow], interrupted: bool = False) -> ReleaseHistoryReport:
    return finish(ReleaseHistoryReport(
        history_id="history-t", started_at=datetime(2026, 12, 1, tzinfo=UTC), record="docs/release-history.toml",
        record_sha256="0" * 64, selection="--releases", releases=[r.version for r in rows], shape="small",
        shape_description="phases 1,2,3,4", lab_name="hist", rows=rows, interrupted=interrupted, exit_code=2))


def test_exit_codes_follow_the_rows():
    good = judge("0.6.0", record(), summary({**GREEN, 2: [bad("catchup.after_restart")]}), "c", {"wall_s": 5.0},
                 None)
    assert good.outcome == "as_expected" and _report([good]).exit_code == 0
    gap = judge("0.6.0", record(), summary(GREEN), "c", {"wall_s": 5.0}, None)
    assert gap.outcome == "surprise" and _report([good, gap]).exit_code == 1
    failed = not_judged("0.7.0", record(), "install_error", "install failed: rustc too old", 1.0)
    assert failed.outcome == "error" and failed.surprises and _report([good, failed]).exit_code == 1
    assert _report([good], interrupted=True).exit_code == 2


def test_the_report_validates_against_its_schema_and_renders_the_decisive_checks(tmp_path):
    row = judge("0.6.0", record(), summary({**GREEN, 2: [bad("catchup.after_restart", "node-b <b>missed</b>")]}),
                "history-t-0.6.0", {"wall_s": 5.0, "campaign_s": 4.0}, None)
    report = _report([row, not_judged("0.7.0", record(), "install_error", "install failed: rustc", 1.0)])
    kind = BY_NAME["release-history"]
    model, problems = check_document(kind, report.dump())
    assert problems == [] and model == report
    md = markdown(report)
    assert "| 0.6.0 | pass (3 checks) — green, as expected | fail: catchup.after_restart — red, as recorded" in md
    assert "install failed: rustc" in md
    html = render_html(report)
    assert "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'" in html
    assert "catchup.after_restart" in html and "<b>missed" not in html
    assert 'href="history-t-0.6.0/index.html' in html
    assert "http://" not in html and "https://" not in html and "<script" not in html
    (tmp_path / "history.json").write_text(report.to_json())
    assert check_run(tmp_path) == []


def test_the_shape_is_recorded_and_configurable(tmp_path):
    small = shape_settings("small")
    assert (small.phases, small.phase4.cycles, small.phase4.writes) == ([1, 2, 3, 4], 3, 30)
    cfg = tmp_path / "c.toml"
    cfg.write_text("[phase4]\ncycles = 7\n[phase3]\nrows = 1500\n")
    custom = shape_settings("small", cfg, {"phase4": {"writes": 20}})
    assert (custom.phase4.cycles, custom.phase4.writes, custom.phase3.rows) == (7, 20, 1500)
    assert shape_settings("full") == shape_settings("full", None, None)
    with pytest.raises(HistoryError, match="--shape must be"):
        shape_settings("tiny")


def test_the_default_selection_is_every_federated_release_of_the_index(index_server):  # noqa: F811
    published = releases.published_versions()
    chosen, how = select_releases(None, published, [])
    assert chosen == ["0.6.0", "0.6.1", "0.6.2", "0.6.3", "0.6.4", "0.7.0", "0.7.1", "0.8.0", "0.8.1", "0.9.0",
                      "0.10.0"]
    assert "every crates.io release from 0.6.0" in how
    assert select_releases("0.6.3,ai-memory@0.6.0", published, [])[0] == ["0.6.3", "0.6.0"]
    assert select_releases("cached", published, ["0.5.0", "0.6.3", "0.6.0", "0.10.0"])[0] == ["0.6.0", "0.6.3",
                                                                                                "0.10.0"]
    with pytest.raises(HistoryError, match=r"not on crates\.io: 9\.9\.9"):
        select_releases("0.6.3,9.9.9", published, [])
    with pytest.raises(HistoryError, match=r"yanked: 0\.6\.0-alpha\.1"):
        select_releases("0.6.0-alpha.1", published, [])
    with pytest.raises(HistoryError, match=r"not a version: 0\.6"):
        select_releases("0.6", published, [])


def test_without_the_index_only_cached_releases_can_be_named():
    with pytest.raises(HistoryError, match=r"cannot read the crates\.io index"):
        select_releases(None, None, ["0.6.3"])
    assert select_releases("0.6.3", None, ["0.6.3"])[0] == ["0.6.3"]
    with pytest.raises(HistoryError, match=r"0\.6\.1 is not in the release cache"):
        select_releases("0.6.1", None, ["0.6.3"])


def test_a_bad_release_is_a_usage_error_before_anything_runs(index_server, tmp_path):  # noqa: F811
    res = subprocess.run([sys.executable, "-m", "invoke", "history", "--releases", "0.6.3,9.9.9", "--runs-dir",
                          str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "not on crates.io: 9.9.9" in res.stderr
    assert list(tmp_path.iterdir()) == []
    res = subprocess.run([sys.executable, "-m", "invoke", "history", "--releases", "0.6.3", "--shape", "tiny",
                          "--runs-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "--shape must be small or full" in res.stderr


def test_rejudge_compares_the_stored_campaigns_with_the_changed_record(tmp_path):
    from shipgate.proof.history import rejudge

    s = summary({**GREEN, 2: [bad("catchup.after_restart")]}, campaign_id="history-t-0.6.0")
    (tmp_path / "history-t-0.6.0").mkdir()
    (tmp_path / "history-t-0.6.0" / "campaign-summary.json").write_text(s.to_json())
    empty = Record(path="none.toml", releases={})
    before = _report([judge("0.6.0", empty, s, "history-t-0.6.0", {"wall_s": 5.0}, None)])
    assert before.rows[0].outcome == "surprise" and before.exit_code == 1
    (tmp_path / "history.json").write_text(before.to_json())
    rec = tmp_path / "record.toml"
    rec.write_text('schema = "release-history/1"\n[[release]]\nversion = "0.6.0"\n[[release.defect]]\n'
                   'id = "no-catchup-loop"\nphase = "phase2"\ncheck = "catchup.after_restart"\n')
    after = rejudge(tmp_path, rec)
    assert after.rows[0].outcome == "as_expected" and after.exit_code == 0
    assert ReleaseHistoryReport.load(tmp_path / "history.json") == after
    assert "red, as recorded" in (tmp_path / "history.md").read_text()
