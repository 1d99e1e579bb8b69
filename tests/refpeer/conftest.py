"""Fixtures for the reference-peer tests: real `serve` processes on free loopback ports, killed by PID."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from refpeer.testing import PeerProc, free_ports, make_cluster


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Children must not inherit a stray defect list, DB path or agent id from the developer's shell."""
    for var in ("AI_MEMORY_REF_DEFECTS", "AI_MEMORY_DB", "AI_MEMORY_AGENT_ID", "AI_MEMORY_REF_ON_CONFLICT_DEFAULT",
                "AI_MEMORY_PROFILE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def procs() -> Iterator[list[PeerProc]]:
    """Every PeerProc appended here is SIGKILLed at teardown, pass or fail."""
    started: list[PeerProc] = []
    yield started
    for p in started:
        p.kill()


@pytest.fixture
def node(tmp_path: Path, procs: list[PeerProc]) -> PeerProc:
    """One plain (non-federated) peer."""
    (port,) = free_ports(1)
    p = PeerProc(port, tmp_path / "single.db", tmp_path / "single.log")
    procs.append(p)
    return p.start()


@pytest.fixture
def cluster(tmp_path: Path, procs: list[PeerProc]) -> Callable[..., list[PeerProc]]:
    """Factory: cluster(n=3, quorum_writes=2, ...) -> started, healthy, cleaned-up peers."""

    def make(**kw) -> list[PeerProc]:
        sub = tmp_path / f"cluster{len(procs)}"
        sub.mkdir()
        start = kw.pop("start", True)
        nodes = make_cluster(sub, start=False, **kw)
        procs.extend(nodes)
        if start:
            for n in nodes:
                n.start(wait=False)
            for n in nodes:
                n.wait_healthy()
        return nodes

    return make
