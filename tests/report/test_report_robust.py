"""Missing or broken artifacts render as error sections: never a crash, never a green page."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import html5lib
import pytest
import xmlschema
from runbuilder import build_campaign

from shipgate.evidence.report import render_campaign, step_summary
from shipgate.evidence.report.junit import XSD_PATH

CORRUPTIONS: dict[str, Callable[[Path], None]] = {
    "deleted": lambda p: p.unlink(),
    "zero-bytes": lambda p: p.write_bytes(b""),
    "plain-text": lambda p: p.write_text("chaos log: cycle 1 ok\ncycle 2 ok\n"),
    "binary": lambda p: p.write_bytes(b"\xff\xfe\x00\x01garbage"),
    "wrong-type": lambda p: p.write_text("[1, 2, 3]\n"),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "wrong-field-type": lambda p: p.write_text(_with(p, "checks", "not a list")),
}
FILES = ["campaign-summary.json", "inventory.json", "phase1-node-b.json", "phase2.json", "phase3.json",
         "phase4.json", "history/phase2-burst.jsonl", "history/phase4-partition_minority-cycles.jsonl",
         "history/phase4-drop_random_acks.jsonl"]


def _with(path: Path, key: str, value: object) -> str:
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "{}"
    if isinstance(data, dict):
        data[key] = value
    return json.dumps(data)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tpl")
    return build_campaign(root, "gate-pass", "pass", seed=11, cycles=2, writes=8, writes_per_agent=3).run_dir


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
@pytest.mark.parametrize("name", FILES)
def test_broken_artifact_renders_an_error_and_never_green(template: Path, tmp_path: Path, name: str,
                                                          corruption: str) -> None:
    run = tmp_path / "gate-pass"
    shutil.copytree(template, run)
    CORRUPTIONS[corruption](run / name)
    page = render_campaign(run)
    html = page.read_text(encoding="utf-8")
    parser = html5lib.HTMLParser(strict=True)
    parser.parse(html)
    assert parser.errors == []
    # the broken file is named on the page, and a broken phase or summary can never leave the banner green
    assert Path(name).name in html
    banner = html.split('<header class="banner ', 1)[1].split('"', 1)[0]
    if name.startswith(("phase", "campaign-summary")):
        assert banner == "v-error", (name, corruption, banner)
    xmlschema.XMLSchema(str(XSD_PATH)).validate(str(run / "junit.xml"))
    assert step_summary(run).startswith("## ")


def test_history_lines_that_do_not_fit_the_model_are_counted_not_drawn(template: Path, tmp_path: Path) -> None:
    run = tmp_path / "gate-pass"
    shutil.copytree(template, run)
    hist = run / "history" / "phase2-burst.jsonl"
    lines = hist.read_text().splitlines()
    lines[3] = '{"process": "x", "type": "bogus", "op": "write", "time": 1}'
    lines[5] = "not json"
    hist.write_text("\n".join(lines) + "\n")
    html = render_campaign(run).read_text()
    assert "2 of " in html and "lines unusable" in html
    assert "history/phase2-burst.jsonl cannot serve as evidence" in html


def test_summary_claiming_pass_over_failing_evidence_is_not_shown_green(template: Path, tmp_path: Path) -> None:
    run = tmp_path / "gate-pass"
    shutil.copytree(template, run)
    report = json.loads((run / "phase3.json").read_text())
    report["checks"][0].update(status="fail", observed=999)
    report.update(status="fail", reasons=["forward.written: fail"], **{"pass": False})
    (run / "phase3.json").write_text(json.dumps(report))
    html = render_campaign(run).read_text()
    assert '<header class="banner v-fail"' in html
    assert "records pass, but the artifacts on disk give fail" in html


def test_control_characters_and_lone_surrogates_in_evidence(template: Path, tmp_path: Path) -> None:
    """Program output can hold NULs, ANSI escapes and broken UTF-16; the page and JUnit stay valid."""
    run = tmp_path / "gate-pass"
    shutil.copytree(template, run)
    text = (run / "phase3.json").read_text()
    report = json.loads(text)
    report["checks"][0].update(status="fail", detail="stderr: \x00\x1b[31mred\x1b[0m \ud800 <b>&amp;")
    report.update(status="fail", reasons=["forward.written: fail"], **{"pass": False})
    (run / "phase3.json").write_text(json.dumps(report))  # ensure_ascii keeps the lone surrogate as an escape
    html = render_campaign(run).read_text(encoding="utf-8")
    parser = html5lib.HTMLParser(strict=True)
    parser.parse(html)
    assert "&lt;b&gt;&amp;amp;" in html
    xmlschema.XMLSchema(str(XSD_PATH)).validate(str(run / "junit.xml"))
    md = step_summary(run)
    assert "\ufffd[31mred" in md and "\x00" not in md
    md.encode("utf-8")


def test_index_lists_unreadable_campaigns_as_errors(template: Path, tmp_path: Path) -> None:
    from shipgate.evidence.report import render_index

    shutil.copytree(template, tmp_path / "gate-pass")
    shutil.copytree(template, tmp_path / "no-summary")
    (tmp_path / "no-summary" / "campaign-summary.json").unlink()
    shutil.copytree(template, tmp_path / "bad-summary")
    (tmp_path / "bad-summary" / "campaign-summary.json").write_bytes(b"")
    (tmp_path / "not-a-campaign").mkdir()
    (tmp_path / ".hidden").mkdir()
    html = render_index(tmp_path).read_text()
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
    doc = parser.parse(html)
    rows = {tr.find("td/a").text: tr for tr in doc.iter("tr") if tr.find("td/a") is not None}
    assert set(rows) == {"gate-pass", "no-summary", "bad-summary"}
    assert rows["gate-pass"].get("class") == "v-pass"
    for name, why in (("no-summary", "artifact missing"), ("bad-summary", "empty file")):
        assert rows[name].get("class") == "v-error"
        assert why in "".join(rows[name].itertext())
