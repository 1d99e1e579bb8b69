"""SSH command latency on the lab through shipgate.hosts.ssh.HostAccess, with and without TCP_NODELAY.

Paramiko never sets TCP_NODELAY; HostAccess does. This prints the per-command time on one cached
connection both ways, the cost of a fresh connection plus one command, and a parallel run over the four
hosts (which should cost about one command, not four).

    .venv/bin/python bench/lab_ssh.py [--commands 100] [--name t4bssh] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shipgate.hosts.inventory import HOST_NAMES
from shipgate.hosts.ssh import HostAccess
from shipgate.providers import lab


class NagleAccess(HostAccess):
    """HostAccess with TCP_NODELAY switched back off: what plain paramiko does."""

    def _open(self, host):  # type: ignore[no-untyped-def]
        conn = super()._open(host)
        conn.transport.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
        return conn


def per_command(access: HostAccess, n: int) -> float:
    access.run("node-a", "true").check()
    t = time.monotonic()
    for _ in range(n):
        access.run("node-a", "true").check()
    return (time.monotonic() - t) / n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--commands", type=int, default=100)
    ap.add_argument("--name", default="t4bssh", help="lab name (1-8 lowercase letters/digits)")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    lab.down(args.name)
    try:
        inv = lab.up(args.name)
        with HostAccess(inv) as a:
            nodelay = per_command(a, args.commands)
            t = time.monotonic()
            for _ in range(10):
                a.run_many(list(HOST_NAMES), "true")
            parallel = (time.monotonic() - t) / 10
        with NagleAccess(inv) as a:
            nagle = per_command(a, args.commands)
        fresh = []
        for _ in range(10):
            with HostAccess(inv) as a:
                t = time.monotonic()
                a.run("node-b", "true").check()
                fresh.append(time.monotonic() - t)
    finally:
        lab.down(args.name)
    result = {"benchmark": "lab_ssh", "commands": args.commands,
              "per_command_ms_nodelay": round(nodelay * 1000, 2), "per_command_ms_nagle": round(nagle * 1000, 2),
              "connect_plus_command_ms_median": round(statistics.median(fresh) * 1000, 1),
              "run_many_4_hosts_ms": round(parallel * 1000, 1)}
    print(f"per command, one connection: {result['per_command_ms_nodelay']:.1f} ms with TCP_NODELAY, "
          f"{result['per_command_ms_nagle']:.1f} ms without")
    print(f"fresh connection + one command: {result['connect_plus_command_ms_median']:.0f} ms (median of 10)")
    print(f"run_many over 4 hosts: {result['run_many_4_hosts_ms']:.1f} ms")
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
