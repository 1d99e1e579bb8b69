"""Shared helpers for the lab tests: each module builds its own lab (unique name) and removes it."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shipgate.hosts.inventory import Inventory
from shipgate.hosts.ssh import CommandResult, HostAccess
from shipgate.providers.lab import layout as L

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root (namespaces, iptables, sshd)")
ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534

_NOBODY_SH = f"""set -e
umask 022
mount --bind "$1" "$2"
mount -t tmpfs -o mode=0755,size=1m shipgate-nobody "$3"
mkdir -p "$1"
mount --bind "$2" "$1"
cd "$1"
shift 3
exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups -- "$@"
"""


def _closed_to_others(path: Path) -> Path | None:
    """The topmost ancestor of `path` that users other than its owner cannot traverse (e.g. /root)."""
    for parent in reversed(path.parents):
        if not parent.stat().st_mode & stat.S_IXOTH:
            return parent
    return None


@pytest.fixture
def as_nobody() -> Iterator[Callable[[list[str]], list[str]]]:
    """argv prefix running a command as uid/gid 65534 that can still read this checkout, its .venv and the
    project's modules at their usual paths, wherever the clone lives. Under a home closed to others (a clone
    in /root, mode 0700), the command runs in a private mount namespace where that closed ancestor is covered
    by a world-traversable tmpfs holding only the path down to the checkout, bound back in place: nothing is
    chmodded, and nothing outlives the command."""
    staging = Path(tempfile.mkdtemp(prefix="shipgate-nobody-"))
    staging.chmod(0o755)

    def prefix(argv: list[str]) -> list[str]:
        closed = _closed_to_others(ROOT)
        if closed is None:
            return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", *argv]
        assert closed != Path("/"), "the root directory itself is closed to other users"
        return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", _NOBODY_SH, "nobody-sh",
                str(ROOT), str(staging), str(closed), *argv]

    yield prefix
    staging.rmdir()


def unique_name(tag: str) -> str:
    """`tag` (up to 4 chars) + this process's PID in base 36: two test runs on one machine (say, a clone's
    CI run next to a developer's) never build, or tear down, the same lab."""
    digits, n, suffix = "0123456789abcdefghijklmnopqrstuvwxyz", os.getpid() % 36**4, ""
    while True:
        suffix, n = digits[n % 36] + suffix, n // 36
        if not n:
            return tag + suffix


def build_lab(name: str) -> Iterator[Inventory]:
    """Build lab `name`, yield its inventory, and always tear it down (asserting nothing is left)."""
    from shipgate.providers import lab

    lab.down(name)
    try:
        yield lab.up(name)
    finally:
        report = lab.down(name)
        assert report.clean, report.leftovers


def poll(fn: Callable[[], CommandResult], until: Callable[[CommandResult], bool], timeout: float = 15,
         interval: float = 0.1) -> CommandResult:
    """Re-run `fn` until `until(result)` holds or the deadline passes; returns the last result."""
    deadline = time.monotonic() + timeout
    while True:
        res = fn()
        if until(res) or time.monotonic() > deadline:
            return res
        time.sleep(interval)


def start_listener(access: HostAccess, host: str, port: int = 9077) -> int:
    """A tiny HTTP server on all of the host's addresses, started over SSH; returns its PID on the host."""
    return access.spawn(host, f"python3 -m http.server {port} --bind 0.0.0.0", log=f"listener-{port}.log")


def tcp_probe(address: str, port: int, timeout: float = 2) -> str:
    """Shell command printing `open` when a TCP connection to address:port succeeds, else `closed:<rc>`."""
    inner = shlex.quote(f"</dev/tcp/{address}/{port}")
    return f"timeout {timeout:g} bash -c {inner} 2>/dev/null && echo open || echo closed:$?"


def remains(name: str) -> list[str]:
    """Everything of lab `name` still on the machine, looked up independently of shipgate.providers.lab."""
    out = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
    out += [f"netns {ln.split()[0]}" for ln in netns.splitlines() if ln.startswith(f"{name}-")]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, timeout=10).stdout
    out += [f"link {ln.split(': ')[1].split('@')[0]}" for ln in links.splitlines()
            if ln.split(": ")[1].startswith(f"{name}-")]
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True, timeout=10).stdout
    out += [f"rule {ln}" for ln in rules.splitlines() if f"{L.FIREWALL_TAG}:{name} " in ln]
    lab_dir = str(L.base_dir() / name)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if lab_dir in cmd and state != "Z":
                out.append(f"process {entry.name}: {cmd[:100]}")
    if Path(lab_dir).exists():
        out.append(f"dir {lab_dir}")
    return out
