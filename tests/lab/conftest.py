"""Shared helpers for the lab tests: each module builds its own lab (unique name) and removes it."""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from shipgate.hosts import CommandResult, HostAccess
from shipgate.inventory import Inventory

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root (namespaces, iptables, sshd)")


def build_lab(name: str) -> Iterator[Inventory]:
    """Build lab `name`, yield its inventory, and always tear it down (asserting nothing is left)."""
    from shipgate import lab

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


def venv_python() -> str:
    """The project's Python, which the lab hosts can run (they share this machine's filesystem)."""
    return sys.executable
