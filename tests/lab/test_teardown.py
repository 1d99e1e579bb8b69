"""Teardown always works: after a normal run, twice, after the harness was SIGKILLed in the middle of `up`,
and next to another lab that must survive. Also the clear errors of preflight."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from shipgate import nemesis
from shipgate.hosts.ssh import HostAccess
from shipgate.providers import lab
from shipgate.providers.lab import layout as L
from shipgate.providers.lab.system import LabError, preflight
from tests.lab.conftest import needs_root, poll, remains, unique_name

pytestmark = [pytest.mark.lab, needs_root]
ROOT = Path(__file__).resolve().parents[2]
ONE, TWO = unique_name("one"), unique_name("two")


@pytest.fixture
def cleanup():
    names: list[str] = []
    yield names.append
    for name in names:
        lab.down(name)


def test_down_removes_everything_and_is_idempotent(cleanup):
    name = unique_name("down")
    cleanup(name)
    inv = lab.up(name)
    with HostAccess(inv) as access:
        sleeper = access.spawn("node-a", "sleep 600")
        skewed = access.spawn("node-b", "sleep 600", env=nemesis.skew_env("+60"))
        assert nemesis.partition(access, inv, "node-a", ["node-b"]).took_effect
        marker = access.run("node-b", "touch /dev/shm/t4-marker && ls /dev/shm")
        assert marker.ok and "t4-marker" in marker.stdout
        assert "faketime_shm" in marker.stdout, marker.stdout  # libfaketime's leftovers-to-be
    # Each host's /dev/shm is its own: nothing a host leaves there reaches the machine's /dev/shm.
    assert not Path("/dev/shm/t4-marker").exists()
    assert sleeper > 1 and skewed > 1
    before = remains(name)
    assert any(r.startswith("netns") for r in before) and any(r.startswith("process") for r in before)

    report = lab.down(name)
    assert report.clean, report.leftovers
    assert report.had_state and len(report.namespaces) == 5 and len(report.links) == 12
    assert remains(name) == []

    again = lab.down(name)
    assert again.clean and not again.had_state
    assert again.namespaces == [] and again.links == [] and again.killed_pids == []


@pytest.mark.parametrize("moment", ["namespaces", "sshd", "postgres"])
def test_down_after_the_harness_was_sigkilled_mid_up(cleanup, moment: str):
    name = unique_name(f"k{moment[:2]}")
    cleanup(name)
    lab.down(name)
    layout = L.LabLayout(name)
    probes = {
        "namespaces": lambda: Path(f"/run/netns/{name}-pg").exists(),
        "sshd": lambda: layout.host("pg").pidfile.exists(),
        "postgres": lambda: (layout.pg_data / "pgdata").exists(),
    }
    code = f"import sys; from shipgate.providers.lab import up; up({name!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        reached = poll(lambda: probes[moment](), lambda hit: bool(hit), timeout=30, interval=0.005)
        assert reached, f"up never reached {moment}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert not layout.state_file.exists(), "up finished before the kill: the test did not hit mid-up"
    assert any(r.startswith("netns") for r in remains(name)), "nothing was left to clean up"

    report = lab.down(name)
    assert report.clean and not report.had_state, report.leftovers
    assert remains(name) == []


def test_two_labs_coexist_and_down_removes_only_its_own(cleanup):
    cleanup(ONE)
    cleanup(TWO)
    one = lab.up(ONE)
    two = lab.up(TWO)
    assert one.vpc_cidr != two.vpc_cidr
    assert one.hosts["node-a"].public_address != two.hosts["node-a"].public_address
    assert lab.down(ONE).clean
    assert remains(ONE) == []
    st = lab.status(TWO)
    assert st.healthy, st.model_dump()
    assert lab.down(TWO).clean
    assert remains(TWO) == []


def test_up_refuses_without_root_naming_the_fix(as_nobody):
    code = f"from shipgate.providers.lab import up; up({unique_name('nr')!r})"
    proc = subprocess.run(as_nobody([sys.executable, "-c", code]),
                          cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "HOME": "/tmp"})
    assert proc.returncode != 0
    assert "LabError: the lab needs root" in proc.stderr and "sudo" in proc.stderr


def test_a_missing_tool_is_named_with_the_fix():
    with pytest.raises(LabError, match=r"no-such-tool-t4 \(Debian package .*\./scripts/setup"):
        preflight(["no-such-tool-t4"])


def test_bad_names_are_refused_before_anything_happens():
    for bad in ("", "Sg", "sg-a", "toolongname", "1abc"):
        with pytest.raises(lab.LabNameError, match="lab name"):
            lab.up(bad)
        with pytest.raises(lab.LabNameError):
            lab.down(bad)
