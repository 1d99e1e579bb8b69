"""lab.up options: a real --target binary instead of the reference peer, seeded defects, campaign ids, and
the FORWARD rules a Docker-style host needs (forced here; removed again by down)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shipgate.hosts.inventory import HOST_NAMES
from shipgate.hosts.ssh import HostAccess
from shipgate.providers import lab
from shipgate.providers.lab import LabError, LabStatus
from shipgate.providers.lab.build import read_state
from tests.lab.conftest import needs_root, remains, unique_name

pytestmark = [pytest.mark.lab, needs_root]
ROOT = Path(__file__).resolve().parents[2]
BIN, DEF, OPT, FWD, SICK = (unique_name(t) for t in ("bin", "def", "opt", "fwd", "sick"))


def poll_status(name: str, until, timeout: float = 15) -> LabStatus:
    deadline = time.monotonic() + timeout
    while True:
        st = lab.status(name)
        if until(st) or time.monotonic() > deadline:
            return st
        time.sleep(0.1)


@pytest.fixture
def cleanup():
    names: list[str] = []
    yield names.append
    for name in names:
        assert lab.down(name).clean


def test_target_binary_is_installed_on_every_host_and_its_version_read(cleanup, tmp_path: Path):
    fake = tmp_path / "ai-memory"
    fake.write_text('#!/bin/sh\n[ "$1" = --version ] && echo "ai-memory 9.9.9-t4" && exit 0\necho "$@"\n')
    fake.chmod(0o755)
    cleanup(BIN)
    inv = lab.up(BIN, target=fake, campaign_id="t4-campaign.1")
    assert inv.campaign_id == "t4-campaign.1"
    assert inv.target.kind == "binary" and inv.target.path == fake.resolve()
    assert inv.target.version == "ai-memory 9.9.9-t4"
    with HostAccess(inv) as access:
        results = access.run_many(list(HOST_NAMES), "ai-memory serve --port 9077; cmp $(command -v ai-memory) "
                                  + str(fake))
    for name, res in results.items():
        assert res.ok and res.stdout.strip() == "serve --port 9077", f"{name}: {res.describe()}"
    # A different target rebuilds the lab; the same one is reused.
    again = lab.up(BIN, target=fake)
    assert again.campaign_id == "t4-campaign.1"
    rebuilt = lab.up(BIN)
    assert rebuilt.target.kind == "refpeer" and rebuilt.campaign_id != "t4-campaign.1"


def test_defects_reach_every_host_environment(cleanup):
    cleanup(DEF)
    inv = lab.up(DEF, defects=["fanout_abort", "no_catchup"])
    assert inv.target.defects == ["fanout_abort", "no_catchup"]
    with HostAccess(inv) as access:
        results = access.run_many(list(HOST_NAMES), "echo $AI_MEMORY_REF_DEFECTS")
    assert {h: r.stdout.strip() for h, r in results.items()} == dict.fromkeys(HOST_NAMES, "fanout_abort,no_catchup")


def test_bad_options_are_refused_before_anything_is_built(tmp_path: Path):
    with pytest.raises(LabError, match="unknown defect"):
        lab.up(OPT, defects=["no_such_defect"])
    with pytest.raises(LabError, match="not an executable file"):
        lab.up(OPT, target=tmp_path / "missing")
    binary = tmp_path / "ai-memory"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    with pytest.raises(LabError, match="cannot apply to a --target binary"):
        lab.up(OPT, target=binary, defects=["fanout_abort"])
    with pytest.raises(LabError, match="campaign id"):
        lab.up(OPT, campaign_id="Bad Id")
    assert remains(OPT) == []


def test_forward_rules_for_filtering_hosts_are_added_and_removed(cleanup, monkeypatch):
    monkeypatch.setenv("SHIPGATE_LAB_FORWARD_RULES", "1")
    cleanup(FWD)
    inv = lab.up(FWD)
    rules = subprocess.run(["iptables", "-w", "5", "-S", "FORWARD"], capture_output=True, text=True,
                           timeout=10, check=True).stdout
    tagged = [r for r in rules.splitlines() if f"shipgate-lab:{FWD} " in r]
    assert len(tagged) == 2 and all("-j ACCEPT" in r for r in tagged), rules
    with HostAccess(inv) as access:
        assert all(r.ok for r in access.run_many(list(HOST_NAMES), "true").values())
    report = lab.down(FWD)
    assert report.clean and len(report.iptables_rules) == 2, report
    assert remains(FWD) == []


def test_status_reports_a_broken_host_and_up_rebuilds_it(cleanup):
    cleanup(SICK)
    lab.up(SICK)
    state = read_state(lab.LabLayout(SICK))
    os.kill(state.host_pids["node-b"], signal.SIGKILL)  # the host's launcher; --kill-child takes its sshd along
    st = poll_status(SICK, lambda s: not next(h for h in s.hosts if h.name == "node-b").ssh_ok)
    node_b = next(h for h in st.hosts if h.name == "node-b")
    assert not node_b.ssh_ok and node_b.error and not st.healthy
    assert all(h.ssh_ok for h in st.hosts if h.name != "node-b")
    assert lab.load(SICK) is None
    task = subprocess.run([sys.executable, "-m", "invoke", "lab.status", "--name", SICK], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert task.returncode == 1 and "FAIL" in task.stdout and "not healthy" in task.stderr
    rebuilt = lab.up(SICK)
    assert lab.status(SICK).healthy and lab.load(SICK) == rebuilt
