"""`down`: remove everything of a lab, found by its name alone (the state file is optional).

Order matters: kill every process inside the lab's namespaces first (SIGKILL, by PID; the hosts' private
/run, /dev/shm and IPC namespaces die with them, taking libfaketime's and Postgres' leftovers along),
then delete the root-side links (which destroys each veth pair), then the namespaces, the root
namespace's tagged FORWARD rules (if any), then the files.
"""

from __future__ import annotations

import re
import shlex
import shutil
import time
from pathlib import Path

from shipgate.providers.lab import layout as L
from shipgate.providers.lab.models import Teardown
from shipgate.providers.lab.system import (
    existing_netns,
    kill_lab_processes,
    lab_pids,
    locked,
    preflight,
    run,
    which,
)

_COMMENT_RE_TMPL = r'--comment "?{tag}[ "]'


def down(name: str = "sg") -> Teardown:
    """Remove the lab named `name`; idempotent, and works after a crash with no state file."""
    layout = L.LabLayout(L.check_name(name))
    preflight(["ip"])
    base = L.base_dir()
    with locked(base):
        return teardown_locked(layout)


def _links_present(names: list[str]) -> list[str]:
    return [n for n in names if Path(f"/sys/class/net/{n}").exists()]


def _root_rules(tag: str) -> list[tuple[str, str]]:
    """(table, rule) pairs in the root namespace tagged with this lab's comment: the FORWARD accepts a
    filtering host gets (see build._forward_accept)."""
    if which("iptables") is None:
        return []
    pattern = re.compile(_COMMENT_RE_TMPL.format(tag=re.escape(tag)))
    found = []
    for table in ("filter", "nat"):
        proc = run(["iptables", "-w", "5", "-t", table, "-S"], timeout=15, check=False)
        found += [(table, line) for line in proc.stdout.splitlines()
                  if line.startswith("-A ") and pattern.search(line)]
    return found


RESCANS = 5  # each catches what the processes the previous one killed forked before they died


def teardown_locked(layout: L.LabLayout) -> Teardown:
    started = time.monotonic()
    report = Teardown(name=layout.name, had_state=layout.state_file.is_file())
    namespaces = [ns for ns in layout.namespaces() if ns in existing_netns()]

    pids = lab_pids(namespaces, layout.dir)
    killed = set(pids)
    stubborn = kill_lab_processes(pids, timeout=5)
    # A launcher killed mid-spawn (a signal while `up` runs) may have forked after the scan, e.g. unshare its
    # sshd: once everything scanned is dead nothing more can fork, so scan again until a scan finds nothing.
    for _ in range(RESCANS):
        more = lab_pids(namespaces, layout.dir) - set(stubborn)
        if not more:
            break
        killed |= more
        stubborn = sorted(set(stubborn) | set(kill_lab_processes(more, timeout=5)))
    report.killed_pids = sorted(killed)

    links = _links_present(layout.links())
    if links:
        run(["ip", "-b", "-"], input="".join(f"link del {n}\n" for n in links), timeout=30, check=False)
    report.links = links
    if namespaces:
        run(["ip", "-b", "-"], input="".join(f"netns del {n}\n" for n in namespaces), timeout=30, check=False)
    report.namespaces = namespaces

    tag = f"{L.FIREWALL_TAG}:{layout.name}"
    for table, rule in _root_rules(tag):
        run(["iptables", "-w", "5", "-t", table, "-D", *shlex.split(rule)[1:]], timeout=15, check=False)
        report.iptables_rules.append(f"{table}: {rule}")

    if layout.dir.exists():
        shutil.rmtree(layout.dir, ignore_errors=True)
        report.removed_dir = str(layout.dir)

    report.leftovers = _leftovers(layout, stubborn, tag)
    report.duration_s = round(time.monotonic() - started, 3)
    return report


def _leftovers(layout: L.LabLayout, stubborn: list[int], tag: str) -> list[str]:
    out = [f"process {pid} survived SIGKILL" for pid in stubborn]
    out += [f"process {pid} naming {layout.dir}" for pid in lab_pids([], layout.dir) if pid not in stubborn]
    out += [f"network namespace {ns}" for ns in layout.namespaces() if ns in existing_netns()]
    out += [f"link {n}" for n in _links_present(layout.links())]
    out += [f"iptables rule {rule}" for _, rule in _root_rules(tag)]
    if layout.dir.exists():
        out.append(f"directory {layout.dir}")
    return out
