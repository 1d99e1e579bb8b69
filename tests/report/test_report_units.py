"""The SVG kit, the Markdown renderer and the JUnit writer on their own."""

from __future__ import annotations

import itertools
import math
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import html5lib
import pytest
import xmlschema
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from shipgate.evidence.report.junit import XSD_PATH, JCase, JSuite, write_junit
from shipgate.evidence.report.markdown import render_markdown
from shipgate.evidence.report.svg import (
    Band,
    Bar,
    Cell,
    Scale,
    Series,
    StripRow,
    bar_chart,
    log_ticks,
    nice_ticks,
    scatter_plot,
    strip_chart,
)


def _fragment_ok(html: str) -> etree._Element:
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False, tree=html5lib.getTreeBuilder("lxml"))
    doc = parser.parse(f"<!DOCTYPE html><html><head><title>t</title></head><body>{html}</body></html>")
    assert parser.errors == []
    return doc.getroot()


@given(st.floats(-1e6, 1e6), st.floats(1e-3, 1e6))
def test_nice_ticks_cover_the_range_with_round_steps(lo: float, span: float) -> None:
    hi = lo + span
    ticks = nice_ticks(lo, hi)
    assert 2 <= len(ticks) <= 12
    step = ticks[1] - ticks[0]
    assert all(math.isclose(b - a, step, rel_tol=1e-6, abs_tol=1e-9) for a, b in itertools.pairwise(ticks))
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert any(math.isclose(mantissa, m, rel_tol=1e-6) for m in (1, 2, 2.5, 5, 10))
    assert all(lo - step * 1e-6 <= t <= hi + step * 1e-6 for t in ticks)


def test_log_ticks_and_scales() -> None:
    assert log_ticks(1, 1000) == [1, 10, 100, 1000]
    assert log_ticks(1, 10) == [1, 2, 5, 10]
    s = Scale(1, 1000, 0, 300, log=True)
    assert s(1) == 0 and s(1000) == 300 and math.isclose(s(10), 100)
    lin = Scale(0, 10, 100, 0)
    assert lin(0) == 100 and lin(10) == 0 and lin(20) == 0  # clamped


def test_scatter_draws_one_dot_per_point_and_shades_bands() -> None:
    pts = [(i * 0.1, 1 + i) for i in range(57)]
    svg = scatter_plot([Series("ok", pts, "#0a0"), Series("fail", [(1.0, 50.0)], "#a00")], title="t",
                       x_label="s", y_label="ms", bands=[Band(1, 2, "cycle 0"), Band(3, 4, "cycle 1")], log_y=True)
    root = _fragment_ok(svg)
    paths = root.xpath("//*[local-name()='path' and @class='pts']")
    assert [len(re.findall("M", p.get("d"))) for p in paths] == [57, 1]
    assert [p.get("data-points") for p in paths] == ["57", "1"]
    assert len(root.xpath("//*[local-name()='rect' and @class='band']")) == 2
    assert "xmlns" not in svg and "<script" not in svg


def test_empty_inputs_draw_a_labelled_frame_not_nothing() -> None:
    for svg in (scatter_plot([], title="t", x_label="x", y_label="y"), bar_chart([], title="b", x_label="x"),
                strip_chart([], title="s")):
        root = _fragment_ok(svg)
        assert "empty" in root.xpath("//*[local-name()='svg']/@class")[0]


def test_bars_strip_and_escaping() -> None:
    svg = bar_chart([Bar("<node-a>", 1.5), Bar("node-b", None, note="did not converge")], title="a & b",
                    x_label="s", threshold=2.0)
    root = _fragment_ok(svg)
    assert root.xpath("//*[local-name()='rect' and @class='bar']/@data-value") == ["1.5"]
    assert root.xpath("string(//*[local-name()='text' and @class='gap'])") == "did not converge"
    assert "&lt;node-a&gt;" in svg and "a &amp; b" in svg
    strip = strip_chart([StripRow("f", [Cell("pass"), Cell("fail"), Cell("error", "<x>")])], title="s")
    cells = _fragment_ok(strip).xpath("//*[local-name()='rect' and @class='cell']/@data-status")
    assert cells == ["pass", "fail", "error"]


@pytest.mark.parametrize(("src", "expected"), [
    ("# Title", "<h1>Title</h1>"),
    ("plain <b>bold</b> & co", "<p>plain &lt;b&gt;bold&lt;/b&gt; &amp; co</p>"),
    ("**b** and *i* and `<code>`", "<p><strong>b</strong> and <em>i</em> and <code>&lt;code&gt;</code></p>"),
    ("[site](http://example.invalid/x)", "<p>site (<code>http://example.invalid/x</code>)</p>"),
    ("- a\n- b", "<ul>\n<li>a</li>\n<li>b</li>\n</ul>"),
    ("1. a\n2. b", "<ol>\n<li>a</li>\n<li>b</li>\n</ol>"),
    ("```\n<script>x</script>\n```", "<pre><code>&lt;script&gt;x&lt;/script&gt;</code></pre>"),
    ("> quoted", "<blockquote><p>quoted</p></blockquote>"),
    ("---", "<hr>"),
    ('<img src=x onerror="alert(1)">', "<p>&lt;img src=x onerror=&quot;alert(1)&quot;&gt;</p>"),
])
def test_markdown(src: str, expected: str) -> None:
    assert render_markdown(src) == expected


@given(st.text(max_size=400))
def test_markdown_never_emits_markup_from_the_source(src: str) -> None:
    html = render_markdown(src)
    allowed = {"h1", "h2", "h3", "h4", "h5", "h6", "p", "ul", "ol", "li", "pre", "code", "strong", "em",
               "blockquote", "hr"}
    tags = set(re.findall(r"</?([a-zA-Z0-9]+)", html))
    assert tags <= allowed
    assert "<script" not in html.lower() and "href=" not in html


def test_junit_writer_counts_and_validates(tmp_path: Path) -> None:
    cases = [JCase("a", "c", "pass"), JCase("b", "c", "fail", "broke", "expected 1\nobserved 2"),
             JCase("c", "c", "error", "unreachable"), JCase("d", "c", "skipped", "not asked"),
             JCase("e\x00\x1b", "c", "weird-status", "??")]
    ts = datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    path = write_junit(tmp_path / "junit.xml", "gate", [JSuite("s", cases, time_s=1.25, timestamp=ts,
                                                                 properties={"k": "v"}), JSuite("empty")])
    xmlschema.XMLSchema(str(XSD_PATH)).validate(str(path))
    root = etree.parse(str(path)).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("5", "1", "2", "1")
    suite = root.find("testsuite")
    assert suite.get("timestamp") == ts.astimezone(UTC).replace(tzinfo=None).isoformat()
    assert root.xpath("//testcase[@name='b']/failure/@type") == ["invariant"]
    assert root.xpath("//testcase[@name='c']/error/@type") == ["gate"]
    assert root.xpath("//testcase[@name='e\ufffd\ufffd']/error/@type") == ["unknown-status:weird-status"]


def test_xsd_rejects_a_malformed_report(tmp_path: Path) -> None:
    """The schema is not a rubber stamp: a testsuite without its required attributes is refused."""
    bad = tmp_path / "bad.xml"
    bad.write_text('<testsuites><testsuite><testcase name="x"><failure/><skipped/></testcase></testsuite></testsuites>')
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        xmlschema.XMLSchema(str(XSD_PATH)).validate(str(bad))
