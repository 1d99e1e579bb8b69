"""JUnit XML for CI: one testcase per check, so any CI test reporter shows the gate's evidence.

Mapping: `fail` -> <failure> (the product broke an invariant), `error` -> <error> (the gate could not
establish the fact), `skipped` -> <skipped>. The output validates against `junit.xsd` beside this file
(the common Jenkins/Ant JUnit shape).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from shipgate.evidence.atomic import write_bytes

XSD_PATH = Path(__file__).with_name("junit.xsd")

# XML 1.0 forbids most control characters even when escaped; evidence text may contain them.
_BAD_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: object) -> str:
    """Text safe for an XML 1.0 document (forbidden characters become U+FFFD)."""
    return _BAD_XML.sub("\ufffd", str(value))


@dataclass
class JCase:
    """One testcase: a check, or an artifact the gate could not read."""

    name: str
    classname: str
    status: str  # pass | fail | error | skipped
    message: str = ""
    detail: str = ""
    time_s: float | None = None


@dataclass
class JSuite:
    """One testsuite: a phase (or a phase artifact) of the campaign."""

    name: str
    cases: list[JCase] = field(default_factory=list)
    time_s: float | None = None
    timestamp: datetime | None = None
    properties: dict[str, str] = field(default_factory=dict)


def _counts(cases: list[JCase]) -> dict[str, int]:
    return {
        "tests": len(cases),
        "failures": sum(c.status == "fail" for c in cases),
        "errors": sum(c.status not in ("pass", "fail", "skipped") for c in cases),
        "skipped": sum(c.status == "skipped" for c in cases),
    }


def build_junit(name: str, suites: list[JSuite], time_s: float | None = None) -> ET.Element:
    """The <testsuites> tree; unknown statuses count as errors (never as passes).

    `time_s` is the campaign's wall time: suites overlap (phase 1 runs on three nodes at once), so their sum
    is not how long the campaign took. Without it the sum is used."""
    root = ET.Element("testsuites", {"name": xml_text(name)})
    total = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total_time = 0.0
    for suite in suites:
        counts = _counts(suite.cases)
        for k, v in counts.items():
            total[k] += v
        attrs = {"name": xml_text(suite.name), **{k: str(v) for k, v in counts.items()}}
        if suite.time_s is not None and suite.time_s >= 0:
            attrs["time"] = f"{suite.time_s:.3f}"
            total_time += suite.time_s
        if suite.timestamp is not None:
            ts = suite.timestamp.astimezone(UTC) if suite.timestamp.tzinfo else suite.timestamp
            attrs["timestamp"] = ts.replace(tzinfo=None).isoformat(timespec="seconds")
        el = ET.SubElement(root, "testsuite", attrs)
        if suite.properties:
            props = ET.SubElement(el, "properties")
            for k, v in suite.properties.items():
                ET.SubElement(props, "property", {"name": xml_text(k), "value": xml_text(v)})
        for case in suite.cases:
            cattrs = {"name": xml_text(case.name), "classname": xml_text(case.classname)}
            if case.time_s is not None and case.time_s >= 0:
                cattrs["time"] = f"{case.time_s:.3f}"
            tc = ET.SubElement(el, "testcase", cattrs)
            if case.status == "skipped":
                ET.SubElement(tc, "skipped", {"message": xml_text(case.message)}).text = xml_text(case.detail) or None
            elif case.status != "pass":
                tag = "failure" if case.status == "fail" else "error"
                kind = {"fail": "invariant", "error": "gate"}.get(case.status, f"unknown-status:{case.status}")
                ET.SubElement(tc, tag, {"message": xml_text(case.message), "type": kind}).text = (
                    xml_text(case.detail) or None
                )
    for k, v in total.items():
        root.set(k, str(v))
    root.set("time", f"{time_s if time_s is not None and time_s >= 0 else total_time:.3f}")
    return root


def write_junit(path: Path, name: str, suites: list[JSuite], time_s: float | None = None) -> Path:
    """Write junit.xml atomically (temp file + rename) so CI never reads half a file."""
    root = build_junit(name, suites, time_s)
    ET.indent(root)
    data = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return write_bytes(path, data + b"\n")
