"""Helpers to run real reference-peer processes on loopback: free ports, health polling, clusters, HTTP.

Used by tests/refpeer and bench/refpeer_*.py (and usable by any gate test that needs a live peer). Every
process is started with `python -m refpeer`, so its PID is the server itself; `stop()` / `kill()` act on
that PID only.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PY = sys.executable


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1 (held open together so they are distinct)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def http_request(url: str, method: str = "GET", body: Any = None, *, headers: dict[str, str] | None = None,
                 timeout: float = 10.0, raw: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection: (status, lower-cased headers, body bytes)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    hdrs = dict(headers or {})
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def http_json(url: str, method: str = "GET", body: Any = None, **kw: Any) -> tuple[int, Any]:
    status, _h, data = http_request(url, method, body, **kw)
    try:
        return status, json.loads(data) if data else None
    except ValueError:
        return status, data.decode(errors="replace")


@dataclass
class PeerProc:
    """One `serve` process: its port, DB, log, and the flags it was started with."""

    port: int
    db: Path
    log: Path
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait: bool = True, timeout: float = 10.0) -> PeerProc:
        env = {**os.environ, "AI_MEMORY_DB": str(self.db), **self.env}
        logf = open(self.log, "ab")  # noqa: SIM115 -- handed to the child, closed right after spawn
        try:
            self.proc = subprocess.Popen(
                [PY, "-m", "refpeer", "serve", "--host", "127.0.0.1", "--port", str(self.port), *self.args],
                stdout=logf, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        finally:
            logf.close()
        if wait:
            self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = 10.0) -> float:
        """Poll /api/v1/health until it says ok; returns seconds waited. Raises with the log on failure."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"peer on {self.port} exited {self.proc.returncode}: {self.log_text()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                status, _h, body = http_request(f"{self.url}/api/v1/health", timeout=1.0)
                if status == 200 and b'"ok"' in body:
                    return time.monotonic() - t0
            time.sleep(0.02)
        raise TimeoutError(f"peer on {self.port} not healthy after {timeout}s: {self.log_text()}")

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL this PID (and reap it)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)
                self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)

    def interrupt(self, timeout: float = 15.0) -> int:
        """SIGINT (graceful shutdown); returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=timeout)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def post(self, body: Any, *, agent: str | None = None, timeout: float = 10.0) -> tuple[int, Any]:
        headers = {"X-Agent-Id": agent} if agent else {}
        return http_json(f"{self.url}/api/v1/memories", "POST", body, headers=headers, timeout=timeout)

    def titles(self, namespace: str, limit: int = 1000) -> set[str]:
        status, body = http_json(f"{self.url}/api/v1/memories?namespace={namespace}&limit={limit}", timeout=5.0)
        if status != 200:
            raise RuntimeError(f"list on {self.port} -> {status} {body}")
        return {m["title"] for m in body["memories"]}


def make_cluster(tmp: Path, n: int = 3, *, quorum_writes: int = 2, timeout_ms: int = 2000,
                 catchup_secs: int = 30, env: dict[str, str] | None = None,
                 per_node_env: dict[int, dict[str, str]] | None = None, extra: list[str] | None = None,
                 start: bool = True) -> list[PeerProc]:
    """n peers, each federated with all the others (W=quorum_writes), DBs and logs under tmp."""
    ports = free_ports(n)
    nodes = []
    for i, port in enumerate(ports):
        peers = ",".join(f"http://127.0.0.1:{p}" for p in ports if p != port)
        args = ["--quorum-writes", str(quorum_writes), "--quorum-peers", peers, "--quorum-timeout-ms",
                str(timeout_ms), "--catchup-interval-secs", str(catchup_secs), *(extra or [])]
        nodes.append(PeerProc(port, tmp / f"node{i}.db", tmp / f"node{i}.log", args,
                              {**(env or {}), **((per_node_env or {}).get(i, {}))}))
    if start:
        for node in nodes:
            node.start(wait=False)
        for node in nodes:
            node.wait_healthy()
    return nodes


def wait_until(pred: Any, timeout: float, interval: float = 0.05) -> bool:
    """Poll pred() until truthy or timeout; returns the final verdict."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, http.client.HTTPException, RuntimeError):
            if pred():
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def run_cli(args: list[str], *, db: Path | str | None = None, stdin: str | None = None, cwd: Path | str | None = None,
            env: dict[str, str] | None = None, timeout: float = 30.0) -> subprocess.CompletedProcess:
    """`python -m refpeer <args>` with AI_MEMORY_DB set (when db is given); text mode."""
    e = {**os.environ, **(env or {})}
    if db is not None:
        e["AI_MEMORY_DB"] = str(db)
    return subprocess.run([PY, "-m", "refpeer", *args], input=stdin, capture_output=True, text=True, env=e,
                          cwd=cwd, timeout=timeout)
