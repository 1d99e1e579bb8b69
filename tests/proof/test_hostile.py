"""Hostile targets: `invoke gate --target <a misbehaving ai-memory>` must end with fail or error and a reason
that names what was wrong, within its own time budgets, without a traceback and with valid artifacts.

One lab serves every behaviour (tests/proof/hostile_target.py reads its mode from a file at each call), so
the module pays for one lab build. Phase 1 exercises the CLI paths (and one HTTP write + read through the
host agent); phase 2, reduced to 2 agents x 5 writes, the HTTP paths. The subprocess timeout is the hang
guard: a gate still running past it fails the test.

CLI: prose instead of JSON, JSON of the wrong types (and MCP replies, a backup manifest, a snapshot name
with spaces), binary garbage with terminal escapes and markup, an endless flood on stdout, a command that
hangs ignoring SIGTERM. HTTP: 500s, wrong types, 10 MB bodies, a body that drips forever, a connection that
never closes.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shipgate.evidence.models import CampaignSummary
from shipgate.evidence.validate import validate_run
from shipgate.providers import lab
from tests.proof import hostile_target
from tests.proof.conftest import GateProcess, lab_leftovers, netns_inodes

pytestmark = [pytest.mark.lab, pytest.mark.slow]
NAME = "xhost"
PHASE2_SMALL = """
[phase2]
agents = ["ai:hostile-a", "ai:hostile-b"]
writes_per_agent = 5
convergence_deadline_s = 5
"""


@dataclass
class HostileLab:
    name: str
    mode_file: Path
    config: Path
    launcher: Path  # the lab's target: a campaign on the lab must ask for it (another target is refused)


@pytest.fixture(scope="module")
def hostile_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileLab]:
    """One lab whose `ai-memory` is the hostile launcher (clean while the lab is built); removed at the end,
    asserting that nothing of it is left."""
    d = tmp_path_factory.mktemp("hostile")
    mode_file = d / "mode"
    hostile_target.set_mode(mode_file, "clean")
    launcher = hostile_target.write_launcher(d / "ai-memory-hostile", mode_file)
    config = d / "gate.toml"
    config.write_text(PHASE2_SMALL)
    lab.down(NAME)
    inodes: set[int] = set()
    try:
        inv = lab.up(NAME, target=launcher)
        assert inv.target.version, "the hostile target in clean mode must answer --version"
        inodes = netns_inodes(NAME)
        yield HostileLab(NAME, mode_file, config, launcher)
    finally:
        lab.down(NAME)
    assert lab_leftovers(NAME, inodes) == []


@dataclass
class Outcome:
    code: int
    output: str
    run_dir: Path
    summary: CampaignSummary

    def checks(self) -> dict[str, tuple[str, str]]:
        """check id -> (status, detail + observed), over every phase report (node reports merged)."""
        out: dict[str, tuple[str, str]] = {}
        for report in self.summary.phases:
            for c in report.checks:
                text = f"{c.detail or ''} {json.dumps(c.observed)}"
                if c.id not in out or out[c.id][0] == "pass":
                    out[c.id] = (c.status, text)
        return out


def run_hostile(lab_: HostileLab, start_gate: Callable[..., GateProcess], tmp_path: Path, mode: str,
                phases: str, hang_guard_s: float = 240) -> Outcome:
    """The gate against the lab in `mode`; asserts what every hostile run must satisfy."""
    hostile_target.set_mode(lab_.mode_file, mode)
    campaign_id = f"hostile-{mode.replace('_', '-')}"
    gate = start_gate("--phases", phases, "--lab-name", lab_.name, "--runs-dir", str(tmp_path),
                      "--config", str(lab_.config), "--campaign-id", campaign_id, "--target", str(lab_.launcher))
    try:
        code = gate.finish(timeout=hang_guard_s)
    finally:
        hostile_target.set_mode(lab_.mode_file, "clean")
    output = gate.output
    assert code in (1, 2), f"{mode}: exit {code}; a hostile target must make the gate fail or error:\n{output[-3000:]}"
    assert "Traceback" not in output, f"{mode}: the gate crashed:\n{output[-5000:]}"
    run_dir = tmp_path / campaign_id
    assert validate_run(run_dir) == []
    summary = CampaignSummary.load(run_dir / "campaign-summary.json")
    assert summary.verdict in ("fail", "error") and summary.exit_code == code and summary.reasons
    assert not any("crashed" in r or "the gate failed" in r for r in summary.reasons), summary.reasons
    ET.parse(run_dir / "junit.xml")
    assert (run_dir / "index.html").stat().st_size > 0
    assert "\x1b" not in output and "\x00" not in output, "target output must not reach the log raw"
    return Outcome(code, output, run_dir, summary)


def test_cli_prose_instead_of_json(hostile_lab: HostileLab, start_gate, tmp_path: Path) -> None:
    out = run_hostile(hostile_lab, start_gate, tmp_path, "cli_not_json", "1")
    checks = out.checks()
    for cid in ("store", "recall.count", "stats.total", "curator.errors"):
        status, text = checks[cid]
        assert status == "error" and "stdout is not one JSON document" in text and "went fine" in text, cid


def test_cli_json_of_the_wrong_types(hostile_lab: HostileLab, start_gate, tmp_path: Path) -> None:
    out = run_hostile(hostile_lab, start_gate, tmp_path, "cli_wrong_types", "1")
    checks = out.checks()
    assert checks["store"][0] == "fail" and "no string id" in checks["store"][1]
    assert checks["recall.count"][0] == "error" and "no memories list" in checks["recall.count"][1]
    assert checks["stats.total"][0] == "error" and "no integer total" in checks["stats.total"][1]
    assert checks["curator.errors"][0] == "error" and "no errors list" in checks["curator.errors"][1]
    assert checks["mcp.initialize"][0] == "fail" and "not" in checks["mcp.initialize"][1]
    assert checks["mcp.tool_count"][0] == "fail"
    status, text = checks["backup.sha256_matches_manifest"]
    assert status == "fail" and "snapshot of today.db" in text, text


def test_cli_binary_garbage_on_stdout(hostile_lab: HostileLab, start_gate, tmp_path: Path) -> None:
    out = run_hostile(hostile_lab, start_gate, tmp_path, "cli_garbage", "1")
    checks = out.checks()
    assert checks["version"][0] == "fail"
    assert checks["mcp.initialize"][0] in ("fail", "error")
    version = out.summary.target.version or ""
    assert "\n" not in version and len(version) <= 200, "only the first line of --version is recorded"
    page = (out.run_dir / "index.html").read_text()
    assert "<script>alert(1)</script>" not in page, "target output must be escaped in the report"
    junit = (out.run_dir / "junit.xml").read_text()
    assert "\x00" not in junit and "\x1b" not in junit


def test_cli_that_floods_stdout(hostile_lab: HostileLab, start_gate, tmp_path: Path) -> None:
    """`stats` prints garbage forever: the gate stops reading at its cap (its memory stays bounded), cuts the
    command off and says so; the artifacts carry none of the flood."""
    out = run_hostile(hostile_lab, start_gate, tmp_path, "cli_flood", "1")
    status, text = out.checks()["stats.total"]
    assert status == "error" and "more than 64 MiB on stdout; the command was cut off" in text, text
    assert all(p.stat().st_size < 1024 * 1024 for p in out.run_dir.glob("phase1-*.json"))


def test_cli_that_hangs_and_ignores_sigterm(hostile_lab: HostileLab, start_gate, tmp_path: Path) -> None:
    """`recall` never returns: the command is killed at its 20 s deadline and the hang is a named `fail`; the
    keyword-tier retry hangs too, so recall's answer could not be judged (an error naming the timeout); the
    rest of phase 1 runs."""
    out = run_hostile(hostile_lab, start_gate, tmp_path, "cli_hang", "1")
    checks = out.checks()
    status, text = checks["recall.answers"]
    assert status == "fail" and "did not answer" in text, text
    status, text = checks["recall.count"]
    assert status == "error" and "timeout after 20s" in text and "tier keyword" in text, text
    assert "host.reachable" not in checks, "a hung command is not an unreachable host"
    assert checks["store"][0] == "pass" and checks["stats.total"][0] == "pass"


@pytest.mark.parametrize("mode", ["http_drip", "http_never_closes"])
def test_http_response_that_never_ends(hostile_lab: HostileLab, start_gate, tmp_path: Path, mode: str) -> None:
    """A write whose body drips one byte a second, or whose connection (which delimits the body) never
    closes: the request ends at its own timeout, named as such."""
    out = run_hostile(hostile_lab, start_gate, tmp_path, mode, "1")
    status, text = out.checks()["serve.write"]
    assert status == "fail" and ("no complete response within 10s" in text or "timeout" in text), text


def test_http_500s(hostile_lab: HostileLab, start_gate, tmp_path: Path) -> None:
    out = run_hostile(hostile_lab, start_gate, tmp_path, "http_500", "2")
    checks = out.checks()
    assert out.code == 1
    status, text = checks["burst.acknowledged"]
    assert status == "fail" and "500" in text
    assert checks["probe1.single_peer_down"][0] == "fail" and "500 Internal Server Error" in \
        checks["probe1.single_peer_down"][1]


def test_http_json_of_the_wrong_types(hostile_lab: HostileLab, start_gate, tmp_path: Path) -> None:
    out = run_hostile(hostile_lab, start_gate, tmp_path, "http_wrong_types", "2")
    checks = out.checks()
    status, text = checks["convergence.node-a.count"]
    assert status == "error" and "memories[0].id is list, not a string" in text, text


def test_http_ten_megabyte_bodies(hostile_lab: HostileLab, start_gate, tmp_path: Path) -> None:
    out = run_hostile(hostile_lab, start_gate, tmp_path, "http_huge", "2")
    checks = out.checks()
    status, text = checks["burst.acknowledged"]
    assert status == "fail" and "201 without a JSON body carrying an id" in text, text
    status, text = checks["convergence.node-a.count"]
    assert status == "error" and "unparsable list response" in text, text
    assert (out.run_dir / "phase2.json").stat().st_size < 1024 * 1024, "a 10 MB body must not be copied whole"
