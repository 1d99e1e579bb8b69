"""How the gate calls the host agent: where it lives on a host, its command line, and the argument list of
each verb the phases use, typed, so a phase names what it asks for and never spells the agent's flags.

The agent itself (`hostagent.py`, next to this file) is stdlib-only and standalone: it is copied to each
host and imports nothing of the gate.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from shipgate.hosts.shell import WORKDIR

PATH = f"{WORKDIR}/hostagent.py"  # on a host, relative to the remote home
SOURCE = Path(__file__).with_name("hostagent.py")
API_KEY_PATH = f"{WORKDIR}/api-key"  # beside the agent; present only where the target needs a key (0.7.0+)


def command(args: Sequence[str]) -> str:
    """The shell command that runs the agent with `args` on a host."""
    return f"python3 {PATH} " + shlex.join(args)


def health(url: str, *, deadline_s: float) -> list[str]:
    """Poll a node's health until it answers ok or the deadline passes."""
    return ["health", "--url", url, "--deadline", str(deadline_s)]


def read(nodes: Mapping[str, str], namespace: str, *, page: int | None = None,
         timeout_s: float | None = None) -> list[str]:
    """Every row of `namespace` on each node (name -> base URL), read concurrently."""
    args = ["read", "--nodes", ",".join(f"{name}={url}" for name, url in nodes.items()), "--namespace", namespace]
    if page is not None:
        args += ["--page", str(page)]
    if timeout_s is not None:
        args += ["--timeout", str(timeout_s)]
    return args


def probe(url: str, namespace: str, title: str, *, timeout_s: float) -> list[str]:
    """One write with its raw status, body and latency."""
    return ["probe", "--url", url, "--namespace", namespace, "--title", title, "--timeout", str(timeout_s)]


def bulk(url: str, namespace: str, count: int) -> list[str]:
    """Seed `count` rows through the bulk endpoint."""
    return ["bulk", "--url", url, "--namespace", namespace, "--count", str(count)]


def mcp(db: str, *, profile: str, timeout_s: float, call: Mapping[str, Any] | None = None) -> list[str]:
    """Drive `ai-memory mcp` over stdio: initialize, tools/list and, given `call`, one tools/call."""
    args = ["mcp", "--db", db, "--profile", profile, "--timeout", str(timeout_s)]
    if call:
        args += ["--call", json.dumps(call)]
    return args


def burst(url: str, namespace: str, *, agents: Sequence[str], writes: int, timeout_s: float, source: str,
          node: str | None = None) -> list[str]:
    """Concurrent writers, `writes` each, all released together; a JSON-lines history on stdout."""
    args = ["burst", "--url", url]
    if node is not None:
        args += ["--node", node]
    return [*args, "--namespace", namespace, "--agents", ",".join(agents), "--writes", str(writes),
            "--timeout", str(timeout_s), "--source", source]
