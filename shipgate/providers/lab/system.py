"""Local system plumbing for the lab: preflight checks, subprocesses with time limits, process lookup.

Processes are always found by PID (via their network namespace or their command line naming the lab's
own directory) and signalled one by one; never by a broad name pattern.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from shipgate.clock import Pending, PollTimeout, poll_until

# tool -> Debian package that provides it (scripts/setup installs them)
TOOLS: dict[str, str] = {
    "ip": "iproute2",
    "iptables": "iptables",
    "iptables-restore": "iptables",
    "sshd": "openssh-server",
    "ssh-keygen": "openssh-client",
    "unshare": "util-linux",
    "nsenter": "util-linux",
    "setsid": "util-linux",
    "setpriv": "util-linux",
    "psql": "postgresql-client",  # phase 3 runs it on the hosts, which share this machine's /usr/bin
}
SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class LabError(RuntimeError):
    """The lab could not be built, inspected or removed; the message says what and how to fix it."""


T = TypeVar("T")


def which(tool: str) -> str | None:
    return shutil.which(tool, path=os.environ.get("PATH", "") + ":" + SBIN_PATH)


def preflight(tools: Iterable[str] = TOOLS) -> dict[str, str]:
    """Fail early and clearly: not root, or a tool missing. Returns tool -> absolute path."""
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, iptables, sshd): run as root, "
                       "e.g. `sudo .venv/bin/invoke lab.up`")
    found: dict[str, str] = {}
    missing: list[str] = []
    for tool in tools:
        path = which(tool)
        if path is None:
            missing.append(f"{tool} (Debian package {TOOLS.get(tool, tool)})")
        else:
            found[tool] = path
    if missing:
        raise LabError(f"missing tool(s): {', '.join(missing)}; run ./scripts/setup (as root) to install them")
    return found


def run(argv: Sequence[str], *, timeout: float = 20, input: str | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a local command with a time limit; a failure raises LabError with the command and its stderr."""
    try:
        proc = subprocess.run(list(argv), input=input, capture_output=True, text=True, timeout=timeout,
                              check=False, stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise LabError(f"`{' '.join(argv)}` timed out after {timeout:.0f}s") from None
    except FileNotFoundError:
        raise LabError(f"`{argv[0]}` not found; run ./scripts/setup (as root) to install it") from None
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()[-1500:]
        raise LabError(f"`{' '.join(argv)}` failed (exit {proc.returncode}): {detail}")
    return proc


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Serialise lab builds and teardowns on this machine (flock is released even on SIGKILL)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LabError(f"another lab build or teardown holds the lock on {directory} "
                                   "for more than 120 s") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def netns_inodes(names: Iterable[str]) -> dict[int, str]:
    """Each named network namespace that exists, keyed by its nsfs inode (what /proc/<pid>/ns/net shows)."""
    out: dict[int, str] = {}
    for name in names:
        with contextlib.suppress(OSError):
            out[os.stat(f"/run/netns/{name}").st_ino] = name
    return out


def existing_netns() -> set[str]:
    try:
        return set(os.listdir("/run/netns"))
    except FileNotFoundError:
        return set()


def proc_state(pid: int) -> str | None:
    """The one-letter state of a process from /proc/<pid>/stat (None when it is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def alive(pid: int) -> bool:
    state = proc_state(pid)
    return state is not None and state not in ("Z", "X")


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def lab_pids(namespaces: Iterable[str], lab_dir: Path) -> set[int]:
    """Processes of a lab: everything inside its network namespaces (whatever PID namespace they are in),
    plus any process whose command line names the lab's own directory (e.g. a launcher caught mid-exec)."""
    inodes = netns_inodes(namespaces)
    marker = str(lab_dir) + "/"
    me = os.getpid()
    found: set[int] = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid == me:
            continue
        try:
            ino = os.stat(f"/proc/{pid}/ns/net").st_ino
        except OSError:
            continue
        if ino in inodes or marker in cmdline(pid):
            found.add(pid)
    return {p for p in found if alive(p)}


def is_namespace_child(pid: int) -> bool:
    """True for a process inside a nested PID namespace that is not that namespace's init (PID 1)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                ids = line.split()[1:]
                return len(ids) > 1 and ids[-1] != "1"
    except OSError:
        pass
    return False


def kill_lab_processes(pids: Iterable[int], *, timeout: float = 5.0) -> list[int]:
    """SIGKILL a lab's processes in two waves: first everything inside the hosts except their inits, which
    stay alive to reap the orphans at once; then the inits and launchers. Killing an init first would make
    it wait in the kernel until the machine's own init reaps the orphans, which can take seconds.
    Returns the PIDs still alive at the deadline."""
    pids = set(pids)
    inner = {p for p in pids if is_namespace_child(p)}
    deadline = time.monotonic() + timeout
    left = kill_all(inner, timeout=timeout)
    return left + kill_all(pids - inner, timeout=max(0.5, deadline - time.monotonic()))


def kill_all(pids: Iterable[int], *, timeout: float = 5.0) -> list[int]:
    """SIGKILL each PID and wait until none is alive. Returns the PIDs still alive at the deadline."""
    pids = set(pids)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    def none_left() -> bool | Pending:
        left = [p for p in pids if alive(p)]
        return True if not left else Pending(left)

    try:
        poll_until(none_left, deadline_s=timeout, interval_s=0.01, what="killed processes gone")
    except PollTimeout as exc:
        return list(exc.last)
    return []


def wait_for(predicate: Callable[[], T], timeout: float, interval: float = 0.01) -> T | None:
    """Poll `predicate` until it returns something truthy (returned) or the deadline passes (None)."""
    try:
        return poll_until(lambda: predicate() or None, deadline_s=timeout, interval_s=interval, what="lab condition")
    except PollTimeout:
        return None
