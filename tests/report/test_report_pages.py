"""Campaign pages, JUnit and the runs index, rendered from real run folders (gate-built and imported upstream)."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import html5lib
import pytest
import xmlschema
from lxml import etree
from runbuilder import Built, build_campaign

from shipgate.evidence.models import CampaignSummary, Phase4Report
from shipgate.evidence.report import append_step_summary, render_campaign, render_index, step_summary
from shipgate.evidence.report.junit import XSD_PATH
from shipgate.evidence.upstream import import_upstream

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "upstream" / "runs"
ANALYSIS = "# Operator notes\n\nThe <script>alert('x')</script> run was **fine**; see `node-c`.\n\n- one\n- two\n"
SUMMARY_ONLY = {"ship-gate-v0.6.3-rc1", "soak-v0.6.0-r2", "soak-v0.6.0-r17", "soak-v0.6.0-r19",
                "soak-v0.6.0-r21", "soak-v0.6.0-r25", "soak-v0.6.0-r31", "soak-v0.6.0-r41"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    """runs/ with a passing, a failing and an error gate campaign, and every upstream fixture imported."""
    root = tmp_path_factory.mktemp("runs")
    built = {
        "pass": build_campaign(root, "gate-pass", "pass", seed=1, analysis=ANALYSIS),
        "fail": build_campaign(root, "gate-fail", "fail", seed=2),
        "error": build_campaign(root, "gate-error", "error", seed=3),
    }
    rows = import_upstream(FIXTURES, root)
    assert len(rows) == 52
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        render_campaign(d)
    render_index(root)
    return built


def _root(runs: dict[str, Built]) -> Path:
    return runs["pass"].run_dir.parent


def _parse(path: Path) -> etree._Element:
    """html5lib in strict mode raises on any parse error; lxml must also report none."""
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False, tree=html5lib.getTreeBuilder("lxml"))
    doc = parser.parse(path.read_bytes())
    assert parser.errors == []
    lparser = etree.HTMLParser(recover=False)
    etree.fromstring(path.read_bytes(), lparser)
    assert len(lparser.error_log) == 0, [str(e) for e in lparser.error_log]
    root = doc.getroot() if hasattr(doc, "getroot") else doc
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag.startswith("{"):
            el.tag = etree.QName(el).localname  # inline SVG lands in the SVG namespace; tests query by name
    return root


def _pages(root: Path) -> list[Path]:
    return [root / "index.html", *sorted(root.glob("*/index.html"))]


def test_every_page_parses_cleanly_and_is_self_contained(runs: dict[str, Built]) -> None:
    pages = _pages(_root(runs))
    assert len(pages) == 1 + 3 + 52
    for page in pages:
        doc = _parse(page)
        text = page.read_text(encoding="utf-8")
        assert "http://" not in text and "https://" not in text, page
        assert not doc.xpath("//script|//link|//img|//iframe|//object|//embed|//base"), page
        for el in doc.iter():
            if not isinstance(el.tag, str):
                continue
            for name, value in el.attrib.items():
                if name.split("}")[-1] in ("href", "src", "action", "srcset", "poster", "data"):
                    assert "://" not in value and not value.startswith("//"), (page, name, value)
        assert "url(" not in text, page
        csp = doc.xpath("//meta[@http-equiv='Content-Security-Policy']/@content")
        assert csp and "default-src 'none'" in csp[0]


@pytest.mark.parametrize("kind", ["pass", "fail", "error"])
def test_gate_campaign_page_shows_verdict_checks_and_reasons(runs: dict[str, Built], kind: str) -> None:
    b = runs[kind]
    doc = _parse(b.run_dir / "index.html")
    banner = doc.xpath("//header[@id='verdict']")[0]
    assert f"v-{kind}" in banner.get("class")
    assert banner.xpath("string(.//h1)").startswith(kind.upper())
    assert banner.xpath("string(.//p[@class='reason'])").strip()
    # every check of every phase file is on the page with its mark
    for phase_file in sorted(b.run_dir.glob("phase*.json")):
        data = json.loads(phase_file.read_text())
        section = doc.xpath(f"//section[@id='{phase_file.stem}']")[0]
        items = section.xpath(".//ul[@class='checks']/li")
        assert [li.xpath("string(code)") for li in items] == [c["id"] for c in data["checks"]]
        assert [li.get("class") for li in items] == [c["status"] for c in data["checks"]]
        marks = {"pass": "✓", "fail": "✗", "error": "!", "skipped": "–"}
        assert [li.xpath("string(span[@class='mark'])") for li in items] == [marks[c["status"]] for c in data["checks"]]
        assert section.xpath(".//details/pre")  # raw evidence
    failing = doc.xpath("//ul[@class='checks']/li[@class='fail']/code/text()")
    erroring = doc.xpath("//ul[@class='checks']/li[@class='error']/code/text()")
    assert sorted(failing) == sorted(b.failing_checks)
    assert sorted(erroring) == sorted(b.error_checks)
    summaries = doc.xpath("//div[contains(@class,'summary')]")
    assert [s.get("id") for s in summaries] == ["summary-user", "summary-decision", "summary-engineer"]
    assert f"Verdict {kind.upper()}" in summaries[1].xpath("string(.)")
    for check_id in b.failing_checks + b.error_checks:
        assert check_id in summaries[2].xpath("string(.)")
    facts = doc.xpath("string(//section[@id='facts'])")
    for fact in ("ai-memory 0.6.3", "v0.6.3", "0123456789abcdef", "lab", "phase4.cycles"):
        assert fact in facts
    assert "s3cret-pw" not in (b.run_dir / "index.html").read_text()


def test_error_campaign_names_the_missing_artifact(runs: dict[str, Built]) -> None:
    doc = _parse(runs["error"].run_dir / "index.html")
    section = doc.xpath("//section[@id='phase3']")[0]
    assert "error" in section.xpath("string(.//span[contains(@class,'badge')])")
    assert "artifact missing" in section.xpath("string(.//section[@class='problem'])")


def test_analysis_md_is_rendered_escaped(runs: dict[str, Built]) -> None:
    doc = _parse(runs["pass"].run_dir / "index.html")
    analysis = doc.xpath("//section[@id='analysis']")[0]
    assert analysis.xpath("string(.//h1)") == "Operator notes"
    assert "<script>alert('x')</script>" in analysis.xpath("string(.//p)")
    assert analysis.xpath(".//strong/text()") == ["fine"]
    assert analysis.xpath(".//li/text()") == ["one", "two"]
    assert not doc.xpath("//script")


def _latency_paths(doc: etree._Element) -> list[etree._Element]:
    return doc.xpath("//figure[starts-with(@id,'plot-latency')]//path[@class='pts']")


@pytest.mark.parametrize("kind", ["pass", "fail", "error"])
def test_plots_are_images_of_the_run_data(runs: dict[str, Built], kind: str) -> None:
    b = runs[kind]
    doc = _parse(b.run_dir / "index.html")
    paths = _latency_paths(doc)
    # one dot per completed client write of every history (nemesis operations are not writes), and each
    # path holds as many dots as it says
    for p in paths:
        assert len(re.findall(r"M", p.get("d"))) == int(p.get("data-points"))
    assert sum(int(p.get("data-points")) for p in paths) == b.total_completions
    by_outcome: Counter[str] = Counter()
    for rel in b.completions:
        for line in (b.run_dir / rel).read_text().splitlines():
            ev = json.loads(line)
            if ev["type"] != "invoke" and ev["op"] == "write":
                by_outcome[ev["type"]] += 1
    drawn: Counter[str] = Counter()
    for p in paths:
        drawn[p.get("data-series")] += int(p.get("data-points"))
    assert drawn == by_outcome
    # fault windows: one shaded band per chaos cycle
    assert len(doc.xpath("//figure[starts-with(@id,'plot-latency')]//rect[@class='band']")) == sum(b.cycles.values())
    # the outcome strip: one cell per cycle record, coloured by its status
    cells = doc.xpath("//figure[@id='plot-cycles']//rect[@class='cell']")
    assert len(cells) == sum(b.cycles.values())
    statuses: Counter[str] = Counter()
    for cycles_file in (b.run_dir / "history").glob("*-cycles.jsonl"):
        for line in cycles_file.read_text().splitlines():
            statuses[json.loads(line)["status"]] += 1
    assert Counter(c.get("data-status") for c in cells) == statuses
    # time to converge per chaos cycle: one dot per cycle that converged, at its recorded time
    conv_dots = doc.xpath("//figure[@id='plot-cycle-converge']//path[@class='pts']")
    assert sum(int(p.get("data-points")) for p in conv_dots) == sum(b.cycles.values())
    # convergence bound bars carry the phase 4 bounds
    p4 = Phase4Report.load(b.run_dir / "phase4.json")
    bars = doc.xpath("//figure[@id='plot-bounds']//rect[@class='bar']")
    assert sorted(float(r.get("data-value")) for r in bars) == sorted(
        v for v in (p4.convergence_by_fault or {}).values() if v is not None)
    # time to converge per node: a bar per node that converged, a labelled gap for one that did not
    ttc = json.loads((b.run_dir / "phase2.json").read_text())["time_to_converge_s"]
    conv = doc.xpath("//figure[@id='plot-converge-phase2']")[0]
    assert sorted(float(r.get("data-value")) for r in conv.xpath(".//rect[@class='bar']")) == sorted(
        v for v in ttc.values() if v is not None)
    assert len(conv.xpath(".//text[@class='gap']")) == sum(v is None for v in ttc.values())


def _junit_counts(path: Path) -> dict[str, int]:
    root = etree.parse(str(path)).getroot()
    return {k: int(root.get(k)) for k in ("tests", "failures", "errors", "skipped")}


@pytest.mark.parametrize("kind", ["pass", "fail", "error"])
def test_junit_validates_and_has_a_testcase_per_check(runs: dict[str, Built], kind: str) -> None:
    b = runs[kind]
    junit = b.run_dir / "junit.xml"
    xmlschema.XMLSchema(str(XSD_PATH)).validate(str(junit))
    assert etree.XMLSchema(etree.parse(str(XSD_PATH))).validate(etree.parse(str(junit)))
    checks = [c for f in sorted(b.run_dir.glob("phase*.json")) for c in json.loads(f.read_text())["checks"]]
    root = etree.parse(str(junit)).getroot()
    cases = root.xpath("//testsuite[@name!='campaign']/testcase")
    missing_artifacts = 1 if kind == "error" else 0  # phase3.json
    assert len(cases) == len(checks) + missing_artifacts
    assert len(root.xpath("//testsuite[@name!='campaign']/testcase[failure]")) == len(b.failing_checks)
    assert len(root.xpath("//testsuite[@name!='campaign']/testcase[error]")) == len(b.error_checks) + missing_artifacts
    verdict = root.xpath("//testsuite[@name='campaign']/testcase[@name='verdict']")[0]
    assert {"pass": [], "fail": ["failure"], "error": ["error"]}[kind] == [c.tag for c in verdict]
    counts = _junit_counts(junit)
    assert counts["tests"] == len(root.xpath("//testcase"))
    assert counts["failures"] == len(root.xpath("//testcase/failure"))
    assert counts["errors"] == len(root.xpath("//testcase/error"))


def test_upstream_imports_show_reaudit_beside_upstream_verdict(runs: dict[str, Built]) -> None:
    root = _root(runs)
    doc = _parse(root / "index.html")
    rows = doc.xpath("//table[@class='index']/tbody/tr")
    assert len(rows) == 3 + 52
    by_id = {r.xpath("string(td[1])"): r for r in rows}
    for run in SUMMARY_ONLY:
        row = by_id[run]
        assert row.get("class") == "v-error"
        assert row.xpath("string(td[8])") == "true"
        assert row.xpath("td[8]/span[@class='differs']")
    assert doc.xpath("string(//p[@id='reaudit'])") == (
        f"52 imported from the previous gate; our re-audit disagrees with upstream's overall_pass on "
        f"{len(SUMMARY_ONLY)}.")
    complete = by_id["soak-v0.6.0-r1"]
    assert complete.get("class") == "v-pass" and complete.xpath("string(td[8])") == "true"
    assert not complete.xpath("td[8]/span[@class='differs']")
    assert by_id["gate-fail"].get("class") == "v-fail" and by_id["gate-fail"].xpath("string(td[8])") == "—"
    # the campaign page of a summary-only upstream run: an error banner and every phase as an error section
    page = _parse(root / "soak-v0.6.0-r2" / "index.html")
    assert "v-error" in page.xpath("//header[@id='verdict']/@class")[0]
    assert page.xpath("string(//div[@id='upstream'])").count("overall_pass: true") == 1
    assert len(page.xpath("//section[@class='phase']//section[@class='problem']")) == 6
    # a complete upstream run draws its bound and per-node rows from upstream's own numbers
    full = _parse(root / "soak-v0.6.0-r1" / "index.html")
    assert full.xpath("//figure[@id='plot-bounds']//rect[@class='bar']")
    assert [float(x) for x in full.xpath("//figure[@id='plot-rows-phase2']//rect[@class='bar']/@data-value")] == [
        200.0, 200.0, 200.0]


def test_index_is_newest_first_and_coloured_by_verdict(runs: dict[str, Built]) -> None:
    root = _root(runs)
    doc = _parse(root / "index.html")
    rows = doc.xpath("//table[@class='index']/tbody/tr")
    times = []
    for d in root.iterdir():
        if (d / "campaign-summary.json").exists():
            s = CampaignSummary.load(d / "campaign-summary.json")
            times.append((s.completed_at.timestamp() if s.completed_at else 0, s.campaign_id, s.verdict))
    expected = [cid for _, cid, _ in sorted(times, key=lambda t: (-t[0], t[1]))]
    assert [r.xpath("string(td[1])") for r in rows] == expected
    verdicts = {cid: v for _, cid, v in times}
    for r in rows:
        assert r.get("class") == f"v-{verdicts[r.xpath('string(td[1])')]}"
        assert r.xpath("td[1]/a/@href")[0] == r.xpath("string(td[1])") + "/index.html"


def test_step_summary_names_failures_and_appends_to_github(runs: dict[str, Built], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    md = step_summary(runs["fail"].run_dir)
    assert md.startswith("## ❌ ship-gate FAIL — `gate-fail`")
    for check_id in runs["fail"].failing_checks:
        assert check_id in md
    target = tmp_path / "summary.md"
    target.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(target))
    assert append_step_summary(runs["pass"].run_dir) == target
    text = target.read_text()
    assert text.startswith("earlier step\n## ✅ ship-gate PASS")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY")
    assert append_step_summary(runs["pass"].run_dir) is None


def test_step_summary_stays_under_one_mebibyte(tmp_path: Path) -> None:
    """A run with tens of thousands of failing checks still yields a summary GitHub accepts."""
    from shipgate.evidence.models import Check, Phase2Report

    b = build_campaign(tmp_path, "huge", "fail", seed=4, cycles=1, writes=8, writes_per_agent=2)
    checks = [Check.of(f"burst.write-{i:05d}", "acknowledged and present on node-c", "missing " + "x" * 80, False,
                       "acknowledged write missing on node-c after the deadline") for i in range(20000)]
    (b.run_dir / "phase2.json").write_text(Phase2Report.from_checks(checks).to_json())
    md = step_summary(b.run_dir)
    assert len(md.encode()) < 1024 * 1024
    assert "more lines in junit.xml" in md
    render_campaign(b.run_dir)
    assert _junit_counts(b.run_dir / "junit.xml")["failures"] >= 20000


def test_render_campaign_rejects_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        render_campaign(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        render_index(tmp_path / "nope")


def test_rerender_from_disk_is_stable(runs: dict[str, Built], tmp_path: Path) -> None:
    """Copying a run folder elsewhere and re-rendering gives the same page (modulo the render time)."""
    src = runs["fail"].run_dir
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    render_campaign(dst)

    def strip(p: Path) -> str:
        return re.sub(r"Rendered [0-9-]+ [0-9:]+ UTC", "", p.read_text())

    assert strip(dst / "index.html") == strip(src / "index.html")
    assert (dst / "junit.xml").read_bytes() == (src / "junit.xml").read_bytes()


def test_index_skips_selftest_folders(tmp_path: Path):
    """A self-test folder holds campaigns in sub-folders, not a campaign of its own: no dead row."""
    build_campaign(tmp_path, "gate-one", "pass")
    (tmp_path / "selftest-20261122-000000").mkdir()
    (tmp_path / "selftest-20261122-000000" / "selftest.json").write_text("{}")
    html = render_index(tmp_path).read_text()
    assert "gate-one" in html
    assert "selftest-20261122-000000" not in html
