"""Shared helpers of the proof tests: `invoke gate` as a real subprocess whose progress lines can be awaited,
and an inventory of everything a lab may leave behind (namespaces, links, iptables rules, processes, files).

The gate runs in its own session (start_new_session), so a test can send it a terminal's Ctrl-C (SIGINT to
the process group), a CI runner's SIGTERM or a SIGKILL, and the finalizer can always stop it by its own
process group id.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shipgate.providers.lab.layout import FIREWALL_TAG, base_dir

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = Path(__file__).resolve().parent / "hostile_target.py"


# -- what a lab leaves behind ------------------------------------------------------------------------
def netns_inodes(name: str) -> set[int]:
    """Inodes of lab `name`'s network namespaces, taken while it is up: a process that survives the
    teardown keeps its namespace alive under that inode even after the name is gone."""
    out: set[int] = set()
    with contextlib.suppress(FileNotFoundError):
        for ns in os.listdir("/run/netns"):
            if ns.startswith(f"{name}-"):
                with contextlib.suppress(OSError):
                    out.add(os.stat(f"/run/netns/{ns}").st_ino)
    return out


def _named_netns() -> dict[int, str]:
    out: dict[int, str] = {}
    with contextlib.suppress(FileNotFoundError):
        for ns in os.listdir("/run/netns"):
            with contextlib.suppress(OSError):
                out[os.stat(f"/run/netns/{ns}").st_ino] = ns
    return out


def _proc_mentions(pid: str, marker: bytes) -> bool:
    for part in ("cmdline", "environ"):
        with contextlib.suppress(OSError):
            if marker in Path(f"/proc/{pid}/{part}").read_bytes():
                return True
    with contextlib.suppress(OSError):
        if os.readlink(f"/proc/{pid}/cwd").encode().startswith(marker):
            return True
    return False


def lab_processes(name: str, inodes: set[int] = frozenset()) -> list[str]:  # type: ignore[assignment]
    """Live processes of lab `name`: naming its directory (argv, environment, cwd) or inside one of its
    network namespaces (by inode)."""
    marker = (str(base_dir() / name) + "/").encode()
    me = str(os.getpid())
    # A freed namespace's inode is soon reused, e.g. by another lab built right after: such an inode, now
    # bound to another name in /run/netns, is not ours.
    inodes = set(inodes) - {ino for ino, ns in _named_netns().items() if not ns.startswith(f"{name}-")}
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or entry.name == me:
            continue
        try:
            ino = os.stat(f"/proc/{entry.name}/ns/net").st_ino
            state = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state in ("Z", "X"):
            continue
        if ino in inodes or _proc_mentions(entry.name, marker):
            cmd = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            found.append(f"process {entry.name}: {cmd[:200]}")
    return found


def lab_leftovers(name: str, inodes: set[int] = frozenset()) -> list[str]:  # type: ignore[assignment]
    """Everything of lab `name` still on the machine; [] when it is entirely gone."""
    out = []
    with contextlib.suppress(FileNotFoundError):
        out += [f"namespace {ns}" for ns in os.listdir("/run/netns") if ns.startswith(f"{name}-")]
    out += [f"link {link}" for link in os.listdir("/sys/class/net") if link.startswith(f"{name}-")]
    tag = f"{FIREWALL_TAG}:{name}"
    for table in ("filter", "nat", "mangle"):
        rules = subprocess.run(["iptables", "-w", "5", "-t", table, "-S"], capture_output=True, text=True,
                               timeout=15).stdout
        out += [f"iptables {table}: {r}" for r in rules.splitlines() if re.search(rf"{re.escape(tag)}\b", r)]
    out += lab_processes(name, inodes)
    if (base_dir() / name).exists():
        out.append(f"directory {base_dir() / name}")
    return out


# -- the gate as a subprocess ------------------------------------------------------------------------
class GateProcess:
    """A running `invoke gate`; its merged stdout/stderr is collected line by line by a reader thread."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.args = args
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._eof = False
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "invoke", "gate", *args], cwd=ROOT, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
            env={**os.environ, **(env or {})}, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    @property
    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def wait_line(self, pattern: str, timeout: float = 240) -> str:
        """Block until a progress line matches `pattern` (a regex); fail if the gate ends or the deadline passes."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    if rx.search(line):
                        return line
                seen = len(self.lines)
                if self._eof:
                    raise AssertionError(f"the gate ended before printing /{pattern}/:\n{self.output[-3000:]}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no line /{pattern}/ within {timeout:.0f}s:\n{self.output[-3000:]}")
                self._cond.wait(left)

    def finish(self, timeout: float) -> int:
        """The exit code; the hang guard: a gate still running after `timeout` fails the test (and is killed)."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the gate hung: still running after {timeout:.0f}s:\n{self.output[-3000:]}") \
                from None
        self._reader.join(timeout=10)
        return code

    def signal_group(self, sig: int) -> None:
        """What a terminal does on Ctrl-C: the signal to the gate's whole process group."""
        os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@pytest.fixture
def start_gate() -> Iterator[Callable[..., GateProcess]]:
    """start_gate(*args, env=...) starts `invoke gate ARGS`; any gate still running at the end is killed."""
    started: list[GateProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> GateProcess:
        gate = GateProcess(list(args), env)
        started.append(gate)
        return gate

    yield start
    for gate in started:
        gate.kill()


def lab_down(name: str) -> subprocess.CompletedProcess[str]:
    """Remove a lab the way an operator does after a crash: `invoke lab.down --name NAME`."""
    res = subprocess.run([sys.executable, "-m", "invoke", "lab.down", "--name", name], cwd=ROOT,
                         capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, f"lab.down {name} failed: {res.stdout[-1500:]}{res.stderr[-1500:]}"
    return res


@pytest.fixture
def clean_lab_name() -> Iterator[Callable[[str], str]]:
    """clean_lab_name(name): makes sure no lab of that name exists before the test and removes it after
    (a safety net: each test asserts by itself that the gate left nothing)."""
    names: list[str] = []

    def claim(name: str) -> str:
        from shipgate.providers import lab

        lab.down(name)
        names.append(name)
        return name

    yield claim
    from shipgate.providers import lab

    for name in names:
        lab.down(name)
