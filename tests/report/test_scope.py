"""The scope of a verdict, stated in every view and never overstated (issue 14, items 1, 3 and 9).

Each run folder is built through the models (runbuilder) with a recorded scope; the views are rendered from
disk exactly as `invoke report` does. A stand-in, a seeded-defect self-test or a partial gate must never read
as a release decision; only a full-shape run against a real target may say "Ship it".
"""

from __future__ import annotations

import html as htmllib
import json
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree
from runbuilder import REFPEER, build_campaign

from phases.phase3 import DIFF
from shipgate.evidence.models import (
    CampaignSummary,
    ContentComparison,
    FieldMismatch,
    Phase3Report,
    TargetRef,
    VerdictScope,
)
from shipgate.evidence.report import render_campaign, render_index, step_summary
from shipgate.evidence.report.load import load_run
from shipgate.evidence.report.summaries import summaries
from shipgate.run.settings import load_settings

BINARY = TargetRef(kind="binary", version="ai-memory 0.7.0", path="/opt/ai-memory", sha256="cd" * 32,
                   git_ref="v0.7.0")
SEEDED = REFPEER.model_copy(update={"defects": ["quorum_w1"]})


def _text(page: Path) -> str:
    """The page's visible text, tags dropped, entities decoded, whitespace collapsed."""
    raw = page.read_text(encoding="utf-8")
    return re.sub(r"\s+", " ", htmllib.unescape(re.sub(r"<[^>]+>", " ", raw)))


def _banner(page: Path) -> str:
    raw = page.read_text(encoding="utf-8")
    header = raw.split('<header class="banner', 1)[1].split(">", 1)[1].split("</header>", 1)[0]
    return re.sub(r"\s+", " ", htmllib.unescape(re.sub(r"<[^>]+>", " ", header)))


def _views(run: Path) -> dict[str, str]:
    """Every view of a run folder as text: page, banner, the three summaries, JUnit, step summary, summary."""
    page = render_campaign(run)
    data = load_run(run)
    return {
        "page": _text(page), "banner": _banner(page),
        **{s.key: " ".join([*s.paragraphs, *s.items]) for s in summaries(data)},
        "junit": (run / "junit.xml").read_text(encoding="utf-8"),
        "step": step_summary(run),
        "summary": CampaignSummary.load(run / "campaign-summary.json").scope_headline(),
    }


@pytest.mark.parametrize(("target", "phrase"), [
    (REFPEER, "rehearsal on the bundled reference peer"),
    (SEEDED, "self-test on the reference peer with seeded defects quorum_w1"),
])
def test_a_stand_in_never_reads_as_a_release(tmp_path: Path, target: TargetRef, phrase: str) -> None:
    """Item 1: `./scripts/gate` tests the reference peer; its PASS says so everywhere and never 'Ship it'."""
    built = build_campaign(tmp_path, "stand-in", "pass", target=target, release_shape=True)
    views = _views(built.run_dir)
    for name, text in views.items():
        assert phrase in text, name
        assert "not a release verdict" in text.lower(), name
        assert "Ship it" not in text and "may be tagged" not in text, name
    assert "ai-memory 0.6.3 was tested" not in views["user"], "a stand-in is never named after what it imitates"
    assert "stand-in" in views["user"]
    root = etree.parse(str(built.run_dir / "junit.xml")).getroot()
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["release_decision"] == "false"
    assert props["scope"] in ("rehearsal", "self-test")


def test_only_a_full_shape_run_on_a_real_target_says_ship_it(tmp_path: Path) -> None:
    built = build_campaign(tmp_path, "release", "pass", target=BINARY, release_shape=True)
    views = _views(built.run_dir)
    assert "Ship it: the release may be tagged." in views["decision"]
    assert "A release verdict on ai-memory 0.7.0." in views["banner"]
    assert "git ref v0.7.0" in views["page"] and "commit not recorded" in views["page"]
    props = {p.get("name"): p.get("value") for p in etree.parse(str(built.run_dir / "junit.xml")).getroot()
             .iter("property")}
    assert props["release_decision"] == "true" and props["seed"] == "1"


@pytest.mark.parametrize(("overrides", "gap"), [
    ({"phases": [1, 2, 3]}, "phase 4 not run"),
    ({"phase4": {"faults": ["partition_minority"], "cycles": 5}}, "fault classes kill_primary_mid_write, "
                                                                   "drop_random_acks, clock_skew_peer not run"),
    ({"phase4": {"cycles": 5}}, "5 cycles x 100 writes is below the release shape 50 x 100"),
    ({"phase4": {"min_bound": 0.5}}, "phase4.min_bound 0.5 is looser than the release's 0.995"),
])
def test_a_partial_gate_is_not_a_release_verdict(overrides: dict, gap: str) -> None:
    """Item 3: phases 1-3 only, one class, fewer cycles or a looser threshold cannot clear a release."""
    scope = VerdictScope.of(BINARY, load_settings(overrides=overrides))
    assert scope.kind == "partial" and not scope.release_decision
    assert gap in scope.gaps and gap in scope.headline
    assert "Ship it" not in scope.decision("pass") and "Not a release verdict" in scope.decision("pass")
    assert scope.decision("fail").startswith("Do not tag")


def test_a_release_verdict_needs_the_version_read_back() -> None:
    scope = VerdictScope.of(BINARY.model_copy(update={"version": None}), load_settings())
    assert scope.kind == "partial" and "version was not read back" in scope.headline
    assert VerdictScope.of(BINARY.model_copy(update={"version": None}), load_settings(), installed=False).kind == \
        "release", "the plan, before install, cannot know the version yet"


def test_a_scope_cannot_be_recorded_wider_than_it_is() -> None:
    scope = VerdictScope.of(REFPEER, load_settings())
    with pytest.raises(ValueError, match="it is 'rehearsal'"):
        VerdictScope.model_validate({**scope.dump(), "kind": "release", "release_decision": True})


def test_a_partial_chaos_run_names_only_the_classes_it_ran(tmp_path: Path) -> None:
    """Item 3: `phase4 --fault partition_minority --cycles 5` claims partitions, not crashes, pauses or skew."""
    built = build_campaign(tmp_path, "p4", "pass", target=BINARY)
    path = built.run_dir / "campaign-summary.json"
    summary = CampaignSummary.load(path)
    settings = load_settings(overrides={"phases": [4], "phase4": {"faults": ["partition_minority"], "cycles": 5}})
    results = [r for r in summary.phase_results if r.phase == 4]
    path.write_text(summary.model_copy(update={
        "phases_requested": [4], "phases_run": [4], "phase_results": results,
        "scope": VerdictScope.of(BINARY, settings), "settings": settings.model_dump(mode="json")}).to_json())
    for other in ("phase1-node-a.json", "phase1-node-b.json", "phase1-node-c.json", "phase2.json", "phase3.json"):
        (built.run_dir / other).unlink()
    views = _views(built.run_dir)
    assert "surviving a network partition while writing (5 cycles x 100 writes per class)" in views["user"]
    for claim in ("crash", "paused", "clock skew"):
        assert claim not in views["user"], claim
    assert "partial gate" in views["banner"] and "Ship it" not in views["decision"]


def test_runs_index_marks_each_kind(tmp_path: Path) -> None:
    build_campaign(tmp_path, "k-release", "pass", target=BINARY, release_shape=True)
    build_campaign(tmp_path, "k-partial", "pass", target=BINARY)
    build_campaign(tmp_path, "k-rehearsal", "pass", target=REFPEER, release_shape=True)
    build_campaign(tmp_path, "k-selftest", "fail", target=SEEDED)
    html = render_index(tmp_path).read_text(encoding="utf-8")
    doc = etree.fromstring(html.encode(), etree.HTMLParser())
    kinds = {r.xpath("string(td[1])"): r.xpath("string(td[3])").strip() for r in doc.xpath("//table/tbody/tr")}
    assert kinds == {"k-release": "release", "k-partial": "partial", "k-rehearsal": "rehearsal",
                     "k-selftest": "self-test"}
    assert "1 release verdicts · 1 partial gates · 1 rehearsals on the reference peer · 1 self-tests" in \
        re.sub(r"\s+", " ", doc.xpath("string(//p[@id='kinds'])"))


def test_junit_time_is_the_campaigns_time(tmp_path: Path) -> None:
    """Item 9: phase 1's three suites overlap; the root's time is the campaign's wall time, not a sum."""
    built = build_campaign(tmp_path, "t", "pass")
    render_campaign(built.run_dir)
    root = etree.parse(str(built.run_dir / "junit.xml")).getroot()
    assert float(root.get("time")) == CampaignSummary.load(built.run_dir / "campaign-summary.json").duration_s
    campaign = root.xpath("//testsuite[@name='campaign']")[0]
    assert float(campaign.get("time")) == pytest.approx(1.1 + 4.2 + 0.4), "the campaign's own steps"


def test_seed_is_shown_wherever_settings_are(tmp_path: Path) -> None:
    """Item 9: the seed used is in the settings table, the summaries, JUnit and the step summary."""
    built = build_campaign(tmp_path, "s", "pass", seed=424242)
    views = _views(built.run_dir)
    assert "phase4.seed 424242" in views["page"]
    assert "seed 424242" in views["engineer"] and "--seed 424242" in views["engineer"]
    assert 'name="seed" value="424242"' in views["junit"]
    assert "seed 424242" in views["step"]


def _store(path: Path, rows: list[tuple[str, str]]) -> None:
    db = sqlite3.connect(path)
    db.execute("create table memories (id text, title text, namespace text, tier text, content text, tags text, "
               "priority int, confidence real, source text, metadata text)")
    db.execute("create table memory_links (source_id text, target_id text, relation text)")
    db.executemany("insert into memories values (?, ?, 'phase3', 'mid', ?, '[]', 5, 1.0, 'cli', '{}')",
                   [(f"id-{i}", title, content) for i, (title, content) in enumerate(rows)])
    db.commit()
    db.close()


def test_phase3_counts_every_mismatch_not_the_sample(tmp_path: Path) -> None:
    """Item 9: a fully corrupted round trip is 1000 rows differing, not '50 mismatched', and never
    '1000 came back' without saying none of them is intact."""
    _store(tmp_path / "src.db", [(f"t{i}", f"row {i} for migration test") for i in range(1000)])
    _store(tmp_path / "rt.db", [(f"t{i}", f"row {i}") for i in range(1000)])
    out = subprocess.run([sys.executable, "-c", DIFF, "compare", f"sqlite:{tmp_path / 'src.db'}",
                          f"sqlite:{tmp_path / 'rt.db'}"], capture_output=True, text=True, timeout=60, check=True).stdout
    cmp = ContentComparison.model_validate(json.loads(out)["rows"])
    assert (cmp.compared, cmp.identical, len(cmp.mismatched)) == (1000, 0, 50)
    assert (cmp.mismatched_rows, cmp.mismatched_fields, cmp.rows_differing) == (1000, 1000, 1000)

    built = build_campaign(tmp_path / "runs", "p3", "pass")
    p3_path = built.run_dir / "phase3.json"
    p3 = Phase3Report.load(p3_path)
    sample = [FieldMismatch(id=f"id-{i}", field="content", expected="a", observed="b") for i in range(50)]
    p3 = p3.model_copy(update={"content": {"roundtrip": ContentComparison(
        compared=1000, identical=0, mismatched=sample, mismatched_rows=1000, mismatched_fields=1000)}})
    p3_path.write_text(p3.to_json())
    views = _views(built.run_dir)
    assert "1000 rows differ in 1000 fields (first 50 listed)" in views["page"]
    assert "50 mismatched" not in views["page"]
    assert "1000 came back, 0 of 1000 identical to the source (1000 changed, 1000 field mismatches)" in \
        views["engineer"]


def test_upstream_imports_are_not_release_verdicts(tmp_path: Path) -> None:
    built = build_campaign(tmp_path, "imp", "pass")
    path = built.run_dir / "campaign-summary.json"
    summary = CampaignSummary.load(path)
    path.write_text(summary.model_copy(update={"scope": None}).to_json())
    views = _views(built.run_dir)
    assert "Ship it" not in views["decision"] and "not a release verdict" in views["decision"].lower()


def test_a_release_summary_needs_a_release_verdict(tmp_path: Path) -> None:
    from shipgate.evidence.models import ReleaseSummary

    built = build_campaign(tmp_path, "r", "pass", release_shape=True)
    with pytest.raises(ValueError, match="rehearsal on the bundled reference peer"):
        ReleaseSummary.from_campaign(CampaignSummary.load(built.run_dir / "campaign-summary.json"), "v0.7.0", "r")
    shutil.rmtree(built.run_dir)
