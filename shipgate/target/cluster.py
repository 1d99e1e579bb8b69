"""The target's cluster: three `serve`s started fresh, restarted after a crash, checked healthy, stopped.

Phase 4 uses the whole life cycle (`topology`, `Cluster.start/stop/restart/wait_healthy`); phase 2 starts
its federation through `start_serves`, the same stop-reset-start step with the operator's health check.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from shipgate.client import calls
from shipgate.hosts import shell
from shipgate.hosts.inventory import Inventory
from shipgate.hosts.result import CommandResult, HostError
from shipgate.nemesis import primitives as nemesis
from shipgate.target import service
from shipgate.target.service import WORKDIR, ServeSpec, ServiceError

if TYPE_CHECKING:  # the transport is only a type here: reading answers must not load paramiko
    from shipgate.hosts.ssh import HostAccess

LOCAL_PORTS = (19077, 19078, 19079)
HOST_NAMES = ("node-a", "node-b", "node-c")
Topology = Literal["hosts", "local"]


class ClassAborted(RuntimeError):
    """The cluster cannot go on (a node down, a node would not restart): an `error`, named."""


class RecoveryFailed(ClassAborted):
    """The leader did not come back after a SIGKILL on its own database: the product's crash recovery
    broke (upstream's "node-0 failed to start" after a dirty WAL), a `fail`, not a gate error."""


@dataclass
class Node:
    """One `serve` of the cluster: where it runs, how others reach it, and its current PID."""

    name: str
    host: str
    url: str
    spec: ServeSpec
    pid: int | None = None


@dataclass
class Cluster:
    """The three nodes in upstream order (node0 = the leader that takes the writes), and how to reach them."""

    nodes: list[Node]
    topology: Topology
    access: HostAccess
    inventory: Inventory
    serve_name: str = "phase4"

    @property
    def leader(self) -> Node:
        return self.nodes[0]

    def by_role(self, index: int) -> Node:
        return self.nodes[index]

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.nodes]

    def peer_address(self, node: Node) -> str:
        """The address the leader reaches `node` at: its private address, or loopback in the local shape."""
        return "127.0.0.1" if self.topology == "local" else self.inventory.hosts[node.host].private_address

    def start(self) -> None:
        """Fresh databases, every node started and healthy. Nemesis rules left by a harness that died are
        lifted first (stop_serve already continues a stopped node before stopping it)."""
        healed = nemesis.heal(self.access, self.inventory, self.leader.host, what=None)
        if not healed.took_effect:
            raise ClassAborted(f"{self.leader.name}: stale nemesis rules cannot be removed: {healed.error}")
        try:
            pids = _launch(self.access, [n.spec for n in self.nodes], fresh=True, reset_log=True)
        except ServiceError as exc:
            raise ClassAborted(str(exc)) from exc
        for node, pid in zip(self.nodes, pids, strict=True):
            node.pid = pid
        self.wait_healthy(self.nodes)

    def stop(self) -> None:
        """Lift any nemesis rule and stop every node by its PID file (a paused one is continued first by
        stop_serve); never raises, so it can run on every exit path (an exception, SIGTERM turned into one)."""
        with contextlib.suppress(Exception):
            nemesis.heal(self.access, self.inventory, self.leader.host, what=None)
        for node in self.nodes:
            with contextlib.suppress(ServiceError, HostError):
                service.stop_serve(self.access, node.host, port=node.spec.port, name=self.serve_name)
        for host in sorted({n.host for n in self.nodes if "LD_PRELOAD" in n.spec.env}):
            with contextlib.suppress(Exception):  # libfaketime's /dev/shm leftovers of killed processes
                nemesis.clean_faketime_shm(self.access, host)

    def restart(self, node: Node) -> None:
        """Start a node again on the same database (after a SIGKILL: crash recovery), once the killed process
        is gone, its listening port included (`shell.gone`): a restart before that fails to bind, a false red."""
        if node.pid:
            port = int(node.spec.port)
            res = self.access.run(node.host, shell.PROCESS + shell.poll(shell.gone(int(node.pid), port),
                                                                        deadline_s=10, interval_s=0.02), timeout=20)
            if not res.ok:
                raise ClassAborted(f"{node.name}: pid {node.pid} or its port {port} still held 10 s after SIGKILL: "
                                   f"{res.describe()}")
        node.pid = service.start_serve(self.access, node.spec)

    def is_running(self, node: Node) -> bool:
        return service.serve_pid(self.access, node.host, port=node.spec.port, name=self.serve_name) is not None

    def wait_healthy(self, nodes: Sequence[Node], deadline_s: float = 30) -> None:
        """Every node answers /health, asked from the chaos host (where the client runs: loopback URLs of
        the local shape resolve there)."""
        def one(node: Node) -> tuple[Node, CommandResult]:
            return node, service.agent(self.access, "chaos", calls.health(node.url, deadline_s=deadline_s),
                                       timeout=deadline_s + 15)

        with ThreadPoolExecutor(len(nodes)) as pool:
            results = list(pool.map(one, nodes))
        for node, res in results:
            if res.error or res.exit_code != 0:
                tail = service.serve_log_tail(self.access, node.host, port=node.spec.port, name=self.serve_name)
                raise ClassAborted(f"{node.name} not healthy: {res.error or res.stdout.strip()[-200:]}; "
                                   f"process: {self.process_facts(node)}; log: {tail.strip()[-300:]}")

    def process_facts(self, node: Node) -> str:
        """What the host says about a node that does not answer: its process state and the listening sockets."""
        pid = int(node.pid or 0)
        res = self.access.run(node.host, shell.describe(pid, node.spec.port), timeout=15)
        return " ".join((res.stdout or res.error or "").split())[-300:]


def topology(access: HostAccess, inventory: Inventory, shape: Topology, *, db_stem: str, name: str,
             quorum_timeout_ms: int, catchup_interval_secs: float | None, flags: Sequence[str] | None = None,
             env: Mapping[int, Mapping[str, str]] | None = None, options: Mapping[str, Any] | None = None) -> Cluster:
    """The hosts shape (node-a/b/c on their own hosts, all federated, as phase 2) or upstream's local shape
    (three serves on the chaos host, 127.0.0.1:19077-19079, only node-0 federated). `env` adds variables to
    the node of that index (0 = the leader); `options` are the release's serve keywords
    (`shipgate.target.startup.serve_options`: flags, start-up environment, the campaign's key)."""
    common = {"quorum_timeout_ms": quorum_timeout_ms, "catchup_interval_secs": catchup_interval_secs, "name": name,
              "flags": None if flags is None else list(flags), **(options or {})}
    nodes: list[Node] = []
    if shape == "local":
        urls = [f"http://127.0.0.1:{p}" for p in LOCAL_PORTS]
        for i, port in enumerate(LOCAL_PORTS):
            fed = {"quorum_writes": 2, "peers": urls[1:]} if i == 0 else {}
            spec = ServeSpec(host="chaos", port=port, bind="127.0.0.1", db=f"{WORKDIR}/{db_stem}-node{i}.db",
                             **fed, **common)
            nodes.append(Node(f"node-{i}", "chaos", urls[i], spec))
    else:
        for host in HOST_NAMES:
            peers = [inventory.peer_url(p) for p in HOST_NAMES if p != host]
            spec = ServeSpec(host=host, port=inventory.federation_port, db=f"{WORKDIR}/{db_stem}.db", peers=peers,
                             quorum_writes=2, **common)
            nodes.append(Node(host, host, inventory.peer_url(host), spec))
    for i, extra in (env or {}).items():
        nodes[i].spec = nodes[i].spec.model_copy(update={"env": {**nodes[i].spec.env, **extra}})
    return Cluster(nodes, shape, access, inventory, serve_name=name)


def _launch(access: HostAccess, specs: Sequence[ServeSpec], *, fresh: bool, reset_log: bool = False) -> list[int]:
    """Stop each serve, reset its database when `fresh` (and its log), then start them all; returns their PIDs."""
    for spec in specs:
        service.stop_serve(access, spec.host, port=spec.port, name=spec.name)
        if fresh:
            db = spec.db
            res = access.run(spec.host, f"rm -f {db} {db}-wal {db}-shm{' ' + spec.log if reset_log else ''}",
                             timeout=20)
            if not res.ok:
                raise ServiceError(spec.host, f"cannot reset its database: {res.describe()}")
    return [service.start_serve(access, spec) for spec in specs]


def start_serves(access: HostAccess, inventory: Inventory, specs: Sequence[ServeSpec], *, fresh: bool,
                 deadline_s: float = 30) -> list[int]:
    """Phase 2's start: each serve stopped, its database reset when `fresh`, started, and healthy as the
    operator sees it on the federation port; a serve that is not is a ServiceError naming it, with its log."""
    pids = _launch(access, specs, fresh=fresh)
    hosts = [spec.host for spec in specs]
    bad = {h: why for h, why in service.wait_healthy(access, inventory, hosts, deadline_s=deadline_s).items() if why}
    if bad:
        host, why = next(iter(bad.items()))
        tail = service.serve_log_tail(access, host)
        raise ServiceError(host, f"serve not healthy: {why}; log: {tail[-300:]}")
    return pids
