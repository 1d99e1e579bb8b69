"""Every way a campaign can end tears the lab down: normal end, a phase failure, an exception (while
provisioning, and inside a phase), Ctrl-C, SIGTERM, and SIGKILL of the harness followed by `invoke lab.down`.

Each test runs the real `invoke gate` in its own session with its own lab name, waits for a progress line
(never a fixed sleep) before it interrupts, and then checks that nothing of the lab is left on the machine:
namespaces, links, iptables rules, processes (by command line, environment, cwd, or namespace inode) and
/tmp/shipgate-lab/<name>.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from shipgate.evidence.models import CampaignSummary
from shipgate.evidence.validate import validate_run
from tests.proof import hostile_target
from tests.proof.conftest import GateProcess, lab_down, lab_leftovers, lab_processes, netns_inodes

pytestmark = [pytest.mark.lab, pytest.mark.slow]
PHASE2_SMALL = """
[phase2]
agents = ["ai:exit-a", "ai:exit-b"]
writes_per_agent = 20
convergence_deadline_s = 10
"""


def _summary(runs: Path, campaign_id: str) -> CampaignSummary:
    return CampaignSummary.load(runs / campaign_id / "campaign-summary.json")


def _poll(probe: Callable[[], list[str]], until: Callable[[list[str]], bool], gate: GateProcess, what: str,
          timeout: float = 120) -> list[str]:
    """Re-run `probe` until `until` holds; fails if the gate ends first or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if until(found):
            return found
        assert gate.proc.poll() is None, f"the gate ended before {what}:\n{gate.output[-3000:]}"
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f}s ({found})"
        time.sleep(0.1)  # poll interval


def _inodes_when_up(gate: GateProcess, name: str, line: str) -> set[int]:
    """Wait for a progress line that proves the lab is up, then note its namespaces' inodes."""
    gate.wait_line(line)
    inodes = netns_inodes(name)
    assert inodes, f"lab {name} should be up once the gate printed /{line}/"
    return inodes


def test_normal_end(clean_lab_name: Callable[[str], str], start_gate, tmp_path: Path) -> None:
    name = clean_lab_name("xnorm")
    gate = start_gate("--phases", "1", "--lab-name", name, "--runs-dir", str(tmp_path), "--campaign-id", "exit-normal")
    inodes = _inodes_when_up(gate, name, r"phase 1: start")
    assert gate.finish(timeout=240) == 0, gate.output[-3000:]
    summary = _summary(tmp_path, "exit-normal")
    assert summary.verdict == "pass" and summary.durations_s.get("teardown") is not None
    assert f"removing lab {name!r}" in gate.output
    assert lab_leftovers(name, inodes) == []


def test_phase_failure(clean_lab_name: Callable[[str], str], start_gate, tmp_path: Path) -> None:
    """A seeded product defect: phase 1 fails (exit 1) and the lab still goes."""
    name = clean_lab_name("xfail")
    gate = start_gate("--phases", "1", "--lab-name", name, "--runs-dir", str(tmp_path), "--campaign-id", "exit-fail",
                      "--defects", "backup_corrupt")
    inodes = _inodes_when_up(gate, name, r"phase 1: start")
    assert gate.finish(timeout=240) == 1, gate.output[-3000:]
    summary = _summary(tmp_path, "exit-fail")
    assert summary.verdict == "fail" and any("backup.sha256_matches_manifest" in r for r in summary.reasons)
    assert validate_run(tmp_path / "exit-fail") == []
    assert lab_leftovers(name, inodes) == []


def test_exception_while_provisioning(clean_lab_name: Callable[[str], str], start_gate, tmp_path: Path) -> None:
    """A target that is not executable is a startup error: named first in one line, exit 2, no run folder and
    nothing of the lab on the machine (a half-built lab: test_sigterm_while_the_lab_is_built; a failure once the
    run folder exists: tests/gate/test_startup_views.py)."""
    name = clean_lab_name("xprov")
    target = tmp_path / "ai-memory"
    target.write_text("#!/bin/sh\necho 'ai-memory 9.9.9'\n")
    target.chmod(0o644)
    runs = tmp_path / "runs"
    gate = start_gate("--phases", "1", "--lab-name", name, "--runs-dir", str(runs), "--campaign-id", "exit-prov",
                      "--target", str(target))
    assert gate.finish(timeout=240) == 2, gate.output[-3000:]
    assert gate.output.strip().splitlines()[0] == f"--target {target}: not an executable file"
    assert not (runs / "exit-prov").exists()
    assert "Traceback" not in gate.output
    assert lab_leftovers(name) == []


def test_exception_inside_a_phase(clean_lab_name: Callable[[str], str], start_gate, tmp_path: Path) -> None:
    """The run folder is sabotaged under the gate (`history` is a file): phase 2 raises when it writes its
    history, the campaign records the crash as an error (exit 2) and tears down."""
    name = clean_lab_name("xexc")
    config = tmp_path / "gate.toml"
    config.write_text(PHASE2_SMALL)
    runs = tmp_path / "runs"
    gate = start_gate("--phases", "2", "--lab-name", name, "--runs-dir", str(runs), "--campaign-id", "exit-exc",
                      "--config", str(config))
    gate.wait_line(r"campaign exit-exc: phases 2")
    (runs / "exit-exc" / "history").write_text("not a directory\n")
    inodes = _inodes_when_up(gate, name, r"phase 2: start")
    assert gate.finish(timeout=240) == 2, gate.output[-3000:]
    summary = _summary(runs, "exit-exc")
    assert summary.verdict == "error"
    assert any("phase 2 crashed: FileExistsError" in r for r in summary.reasons), summary.reasons
    assert f"removing lab {name!r}" in gate.output
    assert lab_leftovers(name, inodes) == []


@pytest.mark.parametrize(("sig", "lab_name"), [(signal.SIGINT, "xint"), (signal.SIGTERM, "xterm")])
def test_interrupted_mid_phase(clean_lab_name: Callable[[str], str], start_gate, tmp_path: Path,
                               sig: signal.Signals, lab_name: str) -> None:
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) or SIGTERM (to the gate, as a CI
    runner sends it) while the phase-2 burst runs: an `error` summary naming the signal, exit 2, no lab."""
    name = clean_lab_name(lab_name)
    config = tmp_path / "gate.toml"
    config.write_text(PHASE2_SMALL)
    campaign_id = f"exit-{sig.name.lower()}"
    gate = start_gate("--phases", "2", "--lab-name", name, "--runs-dir", str(tmp_path), "--campaign-id", campaign_id,
                      "--config", str(config))
    inodes = _inodes_when_up(gate, name, r"phase 2: burst")
    if sig == signal.SIGINT:
        gate.signal_group(sig)
    else:
        gate.proc.send_signal(sig)
    assert gate.finish(timeout=180) == 2, gate.output[-3000:]
    summary = _summary(tmp_path, campaign_id)
    assert summary.verdict == "error" and summary.exit_code == 2 and not summary.overall_pass
    assert any(f"interrupted by {sig.name}" in r for r in summary.reasons), summary.reasons
    assert any(f"phase 2 interrupted by {sig.name}" in r for r in summary.reasons), "the phase's report names it"
    assert validate_run(tmp_path / campaign_id) == []
    assert f"interrupted by {sig.name}; tearing down" in gate.output
    assert "Traceback" not in gate.output
    assert lab_leftovers(name, inodes) == []


def test_sigterm_while_the_lab_is_built(clean_lab_name: Callable[[str], str], start_gate, tmp_path: Path) -> None:
    """SIGTERM once the lab's first namespaces exist, before it is complete: the half-built lab is removed."""
    name = clean_lab_name("xbuild")
    gate = start_gate("--phases", "1", "--lab-name", name, "--runs-dir", str(tmp_path), "--campaign-id", "exit-build")
    gate.wait_line(rf"building lab '{name}'")
    inodes: set[int] = set()

    def namespaces() -> list[str]:
        inodes.update(netns_inodes(name))
        return [str(i) for i in inodes]

    _poll(namespaces, bool, gate, "the lab's first namespaces")
    gate.proc.send_signal(signal.SIGTERM)
    assert gate.finish(timeout=120) == 2, gate.output[-3000:]
    assert "phase 1: start" not in gate.output, "the signal must land while the lab is being built"
    summary = _summary(tmp_path, "exit-build")
    assert summary.verdict == "error" and any("interrupted by SIGTERM" in r for r in summary.reasons)
    assert lab_leftovers(name, inodes) == []


def test_ctrl_c_does_not_wait_for_a_hung_command(clean_lab_name: Callable[[str], str], start_gate,
                                                tmp_path: Path) -> None:
    """Ctrl-C while phase 1's `recall` hangs on every node (60 s budget): the gate tears down at once instead
    of waiting for the nodes (a CI runner sends SIGKILL ~10 s after SIGINT). Proven by order, not time: the
    interruption is reported before any node could finish its checks."""
    name = clean_lab_name("xhung")
    mode_file = tmp_path / "mode"
    hostile_target.set_mode(mode_file, "cli_hang")
    launcher = hostile_target.write_launcher(tmp_path / "ai-memory-hangs", mode_file)
    gate = start_gate("--phases", "1", "--lab-name", name, "--runs-dir", str(tmp_path), "--campaign-id", "exit-hung",
                      "--target", str(launcher))
    inodes = _inodes_when_up(gate, name, r"phase 1: start")
    _poll(lambda: [p for p in lab_processes(name) if "/bin/ai-memory recall " in p], lambda found: len(found) == 3,
          gate, "the three nodes' recall hanging")
    gate.signal_group(signal.SIGINT)
    assert gate.finish(timeout=180) == 2, gate.output[-3000:]
    lines = gate.output.splitlines()
    interrupted = next(i for i, line in enumerate(lines) if "interrupted by SIGINT; tearing down" in line)
    finished = [i for i, line in enumerate(lines) if "checks pass" in line]
    assert all(i > interrupted for i in finished), gate.output[-3000:]
    summary = _summary(tmp_path, "exit-hung")
    assert summary.verdict == "error" and any("interrupted by SIGINT" in r for r in summary.reasons)
    assert lab_leftovers(name, inodes) == [], "the hung commands must die with the lab"


def test_second_signals_during_teardown_are_noted_not_obeyed(clean_lab_name: Callable[[str], str], start_gate,
                                                            tmp_path: Path) -> None:
    """The impatient operator: Ctrl-C mid-burst, then Ctrl-C again and a SIGTERM as soon as the gate says it
    is tearing down. The teardown and the summary still finish (exit 2, error summary) and nothing is left."""
    name = clean_lab_name("xtwice")
    config = tmp_path / "gate.toml"
    config.write_text(PHASE2_SMALL)
    gate = start_gate("--phases", "2", "--lab-name", name, "--runs-dir", str(tmp_path), "--campaign-id", "exit-twice",
                      "--config", str(config))
    inodes = _inodes_when_up(gate, name, r"phase 2: burst")
    gate.signal_group(signal.SIGINT)
    gate.wait_line(r"interrupted by SIGINT; tearing down", timeout=120)
    gate.signal_group(signal.SIGINT)
    gate.proc.send_signal(signal.SIGTERM)
    assert gate.finish(timeout=180) == 2, gate.output[-3000:]
    summary = _summary(tmp_path, "exit-twice")
    assert summary.verdict == "error" and any("interrupted by SIGINT" in r for r in summary.reasons)
    line = gate.wait_line(r"ignored until they finished", timeout=1)
    assert "SIGINT" in line and "SIGTERM" in line, line
    assert lab_leftovers(name, inodes) == []


def test_sigkill_then_lab_down(clean_lab_name: Callable[[str], str], start_gate, tmp_path: Path) -> None:
    """SIGKILL leaves no chance to clean up: the lab (with serve processes mid-burst) survives the harness,
    writes no summary (never a false green), and `invoke lab.down --name` removes all of it."""
    name = clean_lab_name("xkill")
    config = tmp_path / "gate.toml"
    config.write_text(PHASE2_SMALL)
    gate = start_gate("--phases", "2", "--lab-name", name, "--runs-dir", str(tmp_path), "--campaign-id", "exit-kill",
                      "--config", str(config))
    inodes = _inodes_when_up(gate, name, r"phase 2: burst")
    gate.signal_group(signal.SIGKILL)
    assert gate.finish(timeout=30) == -signal.SIGKILL
    left = lab_leftovers(name, inodes)
    assert any(item.startswith("namespace") for item in left) and any("serve" in item for item in left), \
        f"the lab and its serve processes outlive a SIGKILLed harness (else this test proves nothing): {left}"
    assert not (tmp_path / "exit-kill" / "campaign-summary.json").exists()
    started = time.monotonic()
    lab_down(name)
    assert lab_leftovers(name, inodes) == [], f"after lab.down ({time.monotonic() - started:.1f}s)"
