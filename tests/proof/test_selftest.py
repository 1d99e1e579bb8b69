"""`invoke selftest` end to end on real labs, through the command line a release engineer types.

A subset affordable in CI (the whole suite has 30 minutes on 2 cores): the clean peer over every phase and
fault class, and one defect each owned by phases 2, 3 and 4, in the reduced shape. The whole matrix
(`invoke selftest`) and the false-red rate (`invoke selftest --defects none --repeat 10`) are run by hand.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from shipgate.evidence.models import BY_NAME, CampaignSummary, SelftestReport
from shipgate.evidence.models.schemas import load_schema
from shipgate.evidence.validate import validate_run

pytestmark = [pytest.mark.lab, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
LAB = "stproof"
DEFECTS = {"quorum_w1": ("probe2.both_peers_down", 2), "migrate_truncate": ("content.roundtrip.identical", 3),
           "ack_before_durable": ("kill_primary_mid_write.lost_acknowledged", 4)}


def _leftovers(name: str) -> list[str]:
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, timeout=10).stdout
    out = [line.split()[0] for line in ns.splitlines() if line.startswith(f"{name}-")]
    out += [line.split(": ")[1].split("@")[0] for line in links.splitlines() if f": {name}-" in line]
    return out


@pytest.fixture
def lab_name():
    """The self-test builds and removes its labs itself; whatever happens, none is left behind."""
    yield LAB
    if _leftovers(LAB):
        subprocess.run([sys.executable, "-m", "invoke", "lab.down", "--name", LAB], cwd=ROOT, capture_output=True,
                       timeout=120)
    assert not _leftovers(LAB), "the self-test left lab resources behind"


@pytest.mark.timeout(1200)
def test_reduced_selftest_clean_green_and_each_defect_red_in_its_phase(tmp_path: Path, lab_name: str):
    res = subprocess.run([sys.executable, "-m", "invoke", "selftest", "--defects", ",".join(DEFECTS),
                          "--lab-name", lab_name, "--runs-dir", str(tmp_path), "--seed", "11", "--quiet"],
                         cwd=ROOT, capture_output=True, text=True, timeout=1150)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    (folder,) = [p for p in tmp_path.iterdir() if p.name.startswith("selftest-")]

    doc = json.loads((folder / "selftest.json").read_text())
    assert list(Draft202012Validator(load_schema(BY_NAME["selftest"])).iter_errors(doc)) == []
    report = SelftestReport.model_validate(doc)
    assert report.requirements_met and report.exit_code == 0 and report.problems == []
    assert report.false_red.runs == 1 and report.false_red.red == 0
    assert [r.name for r in report.rows] == ["clean", *DEFECTS]

    clean = report.rows[0]
    assert clean.verdict == "pass" and [c.outcome for c in clean.cells] == ["green"] * 4
    assert set(clean.cells[3].fault_status) == {"kill_primary_mid_write", "partition_minority", "drop_random_acks",
                                                "clock_skew_peer"}
    for row in report.rows[1:]:
        check_id, owner = DEFECTS[row.name]
        (cell,) = row.cells
        assert (cell.phase, cell.owner, cell.outcome, row.verdict) == (owner, True, "caught", "fail"), row.problems
        assert row.right_reason is True
        assert any(c.id == check_id and c.status == "fail" and c.detail for c in cell.checks), cell.checks

    for row in report.rows:  # every campaign left a valid run folder beside the report
        run_dir = folder / row.run_dir
        assert validate_run(run_dir) == []
        assert CampaignSummary.load(run_dir / "campaign-summary.json").verdict == row.verdict

    md = (folder / "selftest.md").read_text()
    assert "Requirements: **MET**" in md
    for name in ("clean", *DEFECTS):
        assert f"| {name} |" in md and f"| {name} |" in res.stdout
    assert "false reds (clean peer): 0 of 1 (0 fail, 0 error)" in res.stdout
    assert "[4/4] ack_before_durable: phase 4 caught" in res.stderr, "one progress line per campaign"


def _start_selftest(*args: str) -> tuple[subprocess.Popen[str], list[str], threading.Thread]:
    proc = subprocess.Popen([sys.executable, "-m", "invoke", "selftest", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return proc, lines, reader


@pytest.mark.timeout(300)
def test_ctrl_c_stops_the_selftest_tears_down_and_writes_what_ran(tmp_path: Path):
    name = "stint"
    proc, lines, reader = _start_selftest("--defects", "none", "--repeat", "3", "--lab-name", name,
                                          "--runs-dir", str(tmp_path))
    try:
        deadline = time.monotonic() + 240
        while not any("phase 1: start" in line for line in lines):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)[-2000:]
            time.sleep(0.1)  # poll interval of a deadline-bounded wait for a progress line
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    reader.join(10)
    assert proc.returncode == 2, "".join(lines)[-3000:]
    assert "requirements INTERRUPTED (exit 2)" in out
    (folder,) = [p for p in tmp_path.iterdir() if p.name.startswith("selftest-")]
    report = SelftestReport.load(folder / "selftest.json")
    assert report.interrupted and report.exit_code == 2 and not report.requirements_met
    assert len(report.rows) == 1 and report.rows[0].verdict == "error"
    assert any("did not run" in p for p in report.problems), report.problems
    assert not _leftovers(name), "an interrupted self-test must leave no lab behind"


def test_refuses_to_run_over_a_lab_that_is_already_up(tmp_path: Path):
    from shipgate.providers import lab

    name = "stbusy"
    lab.up(name)
    try:
        res = subprocess.run([sys.executable, "-m", "invoke", "selftest", "--defects", "none", "--lab-name", name,
                              "--runs-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert res.returncode == 2 and f"a lab named '{name}' is already up" in res.stderr
        assert list(tmp_path.iterdir()) == []
        assert lab.load(name) is not None, "the self-test never touches a lab it did not build"
    finally:
        lab.down(name)
    assert not _leftovers(name)
