"""SIGKILL of the harness in the middle of a fault, then `lab.down`: no partition rule, stopped process or
clock-skewed process may survive anywhere on the machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shipgate.providers import lab
from shipgate.providers.lab.layout import base_dir
from tests.chaos.conftest import lab_leftovers

pytestmark = [pytest.mark.lab, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
NAME = "chkill"

HARNESS = """
import sys
from pathlib import Path
from shipgate.providers import lab
from shipgate.hosts.ssh import HostAccess
from shipgate.run.settings import load_settings
from phases.base import PhaseContext
from phases import phase4
inv = lab.load(sys.argv[1])
settings = load_settings(overrides={"phases": [4], "phase4": {"faults": [sys.argv[2]], "cycles": 50, "writes": 40,
                                                               "fault_window_ms": 60000}})
with HostAccess(inv) as access:
    phase4.run(PhaseContext(inventory=inv, access=access, settings=settings, run_dir=Path(sys.argv[3]),
                            progress=lambda m: print(m, flush=True)))
"""


def _lab_processes() -> list[tuple[int, str, str, str]]:
    """(pid, state, cmdline, FAKETIME) of every process on the machine started from a file of this lab."""
    marker = str(base_dir() / NAME) + "/"
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if marker not in cmd:
                continue
            stat = (entry / "stat").read_text()
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        state = stat.rsplit(") ", 1)[1].split()[0]
        fake = next((e.decode(errors="replace") for e in env if e.startswith(b"FAKETIME=")), "")
        out.append((int(entry.name), state, cmd, fake))
    return out


def _rules(netns: str) -> str:
    res = subprocess.run(["ip", "netns", "exec", netns, "iptables", "-w", "5", "-S"], capture_output=True,
                         text=True, timeout=15)
    return res.stdout


def _wait(cond, what: str, proc: subprocess.Popen, deadline_s: float = 60) -> None:
    end = time.monotonic() + deadline_s
    while not cond():
        assert proc.poll() is None, f"harness exited early: {proc.stdout.read() if proc.stdout else ''}"
        assert time.monotonic() < end, f"{what} never happened"
        time.sleep(0.1)  # poll interval


@pytest.fixture
def fresh_lab():
    lab.up(NAME)
    yield
    lab.down(NAME)


CONDITIONS = {
    "partition_minority": lambda: "shipgate-nemesis" in _rules(f"{NAME}-node-a"),
    "drop_random_acks": lambda: any(state == "T" for _, state, _, _ in _lab_processes()),
    "clock_skew_peer": lambda: any(fake for _, _, _, fake in _lab_processes()),
    "packet_loss": lambda: "shipgate-nemesis loss" in _rules(f"{NAME}-node-a"),
}


@pytest.mark.parametrize("fault", list(CONDITIONS))
def test_sigkilled_harness_then_down_leaves_no_fault_behind(fresh_lab, tmp_path: Path, fault: str) -> None:
    cond = CONDITIONS[fault]
    root_rules_before = subprocess.run(["iptables", "-w", "5", "-S"], capture_output=True, text=True,
                                       timeout=15).stdout
    proc = subprocess.Popen([sys.executable, "-c", HARNESS, NAME, fault, str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        _wait(cond, f"{fault} in effect", proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert cond(), f"{fault} must still be in effect when the harness dies (else the test proves nothing)"

    lab.down(NAME)
    assert not lab_leftovers(NAME)
    assert _lab_processes() == [], "no process of the lab (stopped, skewed or other) may survive"
    root_rules_after = subprocess.run(["iptables", "-w", "5", "-S"], capture_output=True, text=True,
                                      timeout=15).stdout
    assert "shipgate-nemesis" not in root_rules_after
    assert root_rules_after == root_rules_before
