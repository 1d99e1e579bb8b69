"""The fault classes of the chaos phase: one `FaultClass` each, in the `FAULTS` table.

A class is a name, its mechanism in words, what it needs of the cluster (catch-up on, a node's environment,
extra time per cycle), and two steps the generator (phase 4) calls per cycle: `inject` at the drawn fault
moment, mid-burst (a windowed fault is held for the window and lifted there), `recover` after the burst.
Every step records what the nemesis did and whether the kernel's read-back shows it took effect; a step
never raises for a failed fault (the cycle becomes an `error`), only for a cluster that cannot go on.

`release` marks the classes of the default campaign, the self-test's matrix and the release shape
("every fault class" of a verdict's scope). `packet_loss` is registered but not released: no seeded defect
is designed for it, so the self-test cannot show what it detects that partition_minority does not, and
releasing it would grow the full gate by one class (60 s + 6 s per cycle) and change the shape by which
every earlier release was judged. It runs when asked (`--fault packet_loss`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shipgate.clock import sleep_until
from shipgate.hosts.result import HostError
from shipgate.nemesis import primitives as nemesis
from shipgate.target.cluster import ClassAborted, Cluster, RecoveryFailed
from shipgate.target.service import ServiceError

CATCHUP_FIRST_TICK_S = 5.0  # real ai-memory pulls its peers first 5 s after start-up, whatever the interval
LOSS_PROBABILITY = 0.2  # packet_loss: the share of the leader's VPC packets dropped during the window


@dataclass(frozen=True)
class FaultParams:
    """The settings a fault step reads: the window a partition, pause or loss is held, node-c's offset."""

    window_s: float
    skew_offset: str


@dataclass
class FaultOutcome:
    """What the nemesis did in one cycle, and whether the evidence shows it took effect."""

    kind: str
    target: str
    started_at: float | None = None
    healed_at: float | None = None
    applied: bool | None = None
    evidence: list[str] = field(default_factory=list)
    problem: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)


def _no_recover(cluster: Cluster, outcome: FaultOutcome) -> None:
    """A windowed fault is lifted inside `inject`; nothing is left to repair after the burst."""


def _no_env(params: FaultParams) -> dict[int, dict[str, str]]:
    return {}


@dataclass(frozen=True)
class FaultClass:
    """One fault class: what it does (in words, for --help and the report) and how."""

    name: str
    mechanism: str
    plain: str  # for the end user's summary: "surviving <plain> while writing"
    needs_catchup: bool  # False: run with catch-up off, so convergence measures the fan-out itself
    inject: Callable[[Cluster, FaultParams], FaultOutcome]
    recover: Callable[[Cluster, FaultOutcome], None] = _no_recover
    node_env: Callable[[FaultParams], dict[int, dict[str, str]]] = _no_env
    budget_per_cycle_s: float = 0.0  # time the class needs per cycle beyond the common 6 s
    release: bool = True


def _hold(window_s: float, started_at: float) -> None:
    """Hold a fault for its window from the moment it was applied (holding a fault, not waiting for a condition)."""
    sleep_until(time.monotonic() + window_s - max(0.0, time.time() - started_at))


def _evidence_lines(ev: Any) -> list[str]:
    summary = getattr(ev, "summary", None)
    return [summary()] if callable(summary) else []


def nemesis_call(outcome: FaultOutcome, what: str, fn: Callable[[], Any]) -> Any | None:
    """Run one nemesis action; a failure is recorded as the cycle's problem (an error), never raised."""
    t = time.time()
    outcome.events.append({"process": "nemesis", "op": what, "type": "invoke", "time": t})
    try:
        ev = fn()
    except Exception as exc:
        outcome.applied = False
        outcome.problem = f"nemesis {what} failed: {type(exc).__name__}: {exc}"
        outcome.events.append({"process": "nemesis", "op": what, "type": "fail", "time": time.time(),
                               "error": outcome.problem[:300]})
        return None
    took = getattr(ev, "took_effect", None)
    outcome.events.append({"process": "nemesis", "op": what, "type": "info", "time": time.time(),
                           "latency_ms": round((time.time() - t) * 1000, 3),
                           "value": {"took_effect": took, "target": str(getattr(ev, "target", "")),
                                     "details": json.loads(json.dumps(getattr(ev, "details", None), default=str))}})
    outcome.evidence += _evidence_lines(ev)
    return ev


# -- kill_primary_mid_write ---------------------------------------------------------------------------
def _kill_leader(cluster: Cluster, params: FaultParams) -> FaultOutcome:
    node = cluster.leader
    out = FaultOutcome("kill", node.name)
    ev = nemesis_call(out, "kill", lambda: nemesis.kill(cluster.access, node.host, node.pid))
    if ev is not None:
        out.started_at = ev.started_at
        out.applied = ev.took_effect
        if not out.applied:
            out.problem = f"SIGKILL of {node.name} (pid {node.pid}) did not take effect: {ev.error}"
            return out
        # Crash recovery starts at once, on the same database, while the burst goes on.
        try:
            cluster.restart(node)
        except (ServiceError, HostError, ClassAborted) as exc:
            out.problem = f"{node.name} did not restart after the kill: {exc}"
            out.applied = False
    return out


def _leader_back(cluster: Cluster, outcome: FaultOutcome) -> None:
    node = cluster.leader
    if not outcome.applied and not cluster.is_running(node):
        cluster.restart(node)  # the kill or its restart failed in the nemesis step: start it now
    try:
        cluster.wait_healthy([node])
    except ClassAborted as exc:
        raise RecoveryFailed(str(exc)) from exc
    outcome.healed_at = time.time()
    outcome.events.append({"process": "nemesis", "op": "restart", "type": "info", "time": outcome.healed_at,
                           "value": {"node": node.name, "pid": node.pid}})


# -- partition_minority -------------------------------------------------------------------------------
def _partition_leader(cluster: Cluster, params: FaultParams) -> FaultOutcome:
    node, peers = cluster.leader, cluster.nodes[1:]
    acc, inv = cluster.access, cluster.inventory
    out = FaultOutcome("partition", f"{node.name} <-> {', '.join(n.name for n in peers)}")
    targets = [(n.name, cluster.peer_address(n), int(n.spec.port)) for n in peers]
    # The local shape: only node-0 connects out, so its outgoing connections are the whole partition.
    ev = nemesis_call(out, "partition", lambda: nemesis.partition_addresses(
        acc, node.host, targets, both_ways=cluster.topology != "local"))
    if ev is not None:
        out.started_at = ev.started_at
        _hold(params.window_s, ev.started_at)
    healed = nemesis_call(out, "heal", lambda: nemesis.heal(acc, inv, node.host))
    if ev is None:
        return out
    out.healed_at = healed.healed_at if healed is not None else None
    dropped = int(healed.details.get("dropped_packets") or 0) if healed is not None else 0
    out.applied = ev.took_effect and healed is not None and healed.took_effect and dropped > 0
    if not out.applied and not out.problem:
        out.problem = (f"partition rules not in effect: {ev.error}" if not ev.took_effect else
                       "heal failed: partition rules remain" if healed is None or not healed.took_effect else
                       "the partition dropped no packet: it separated nothing")
    return out


# -- drop_random_acks ---------------------------------------------------------------------------------
def _pause_peer(cluster: Cluster, params: FaultParams) -> FaultOutcome:
    node = cluster.by_role(1)
    acc = cluster.access
    out = FaultOutcome("pause", node.name)
    ev = nemesis_call(out, "pause", lambda: nemesis.pause(acc, node.host, node.pid))
    if ev is not None:
        out.started_at = ev.started_at
        _hold(params.window_s, ev.started_at)
    resumed = nemesis_call(out, "resume", lambda: nemesis.resume(acc, node.host, node.pid))
    if ev is None:
        return out
    out.healed_at = resumed.healed_at if resumed is not None else None
    out.applied = ev.took_effect and resumed is not None and resumed.took_effect
    if not out.applied and not out.problem:
        out.problem = (f"{node.name} was not seen stopped: {ev.error}" if not ev.took_effect else
                       f"{node.name} was not seen continued")
    return out


# -- clock_skew_peer ----------------------------------------------------------------------------------
def _skew_env(params: FaultParams) -> dict[int, dict[str, str]]:
    return {2: dict(nemesis.skew_env(params.skew_offset))}


def _rejoin_skewed(cluster: Cluster, params: FaultParams) -> FaultOutcome:
    node = cluster.by_role(2)
    out = FaultOutcome("skew", node.name)
    ev = nemesis_call(out, "kill", lambda: nemesis.kill(cluster.access, node.host, node.pid))
    if ev is None:
        return out
    out.started_at = ev.started_at
    # Stay down for the fault window, longer than the leader's single 250 ms retry, so the writes of that
    # window can only reach node-c through catch-up whatever the machine's speed (holding a fault for its
    # window, not waiting for a condition).
    time.sleep(params.window_s)
    try:
        cluster.restart(node)
    except (ServiceError, HostError, ClassAborted) as exc:
        out.applied = False
        out.problem = f"{node.name} did not restart under the clock offset: {exc}"
        return out
    out.applied = bool(ev.took_effect)
    if not out.applied:
        out.problem = f"SIGKILL of {node.name} did not take effect"
    return out


def _skew_checked(cluster: Cluster, outcome: FaultOutcome) -> None:
    node = cluster.by_role(2)
    if not outcome.applied and not cluster.is_running(node):
        cluster.restart(node)  # the cycle is already an error; the class goes on
    cluster.wait_healthy([node])
    outcome.healed_at = time.time()
    if outcome.applied:
        ev = nemesis_call(outcome, "read_clock_offset",
                          lambda: nemesis.read_clock_offset(cluster.access, node.host, node.pid))
        if ev is None or not ev.took_effect:
            outcome.applied = False
            outcome.problem = outcome.problem or f"{node.name} (pid {node.pid}) does not run with a skewed clock"


# -- packet_loss --------------------------------------------------------------------------------------
def _lossy_leader_link(cluster: Cluster, params: FaultParams) -> FaultOutcome:
    node = cluster.leader
    acc, inv = cluster.access, cluster.inventory
    out = FaultOutcome("loss", f"{node.name} -> {', '.join(n.name for n in cluster.nodes[1:])}")
    toward = cluster.peer_address(cluster.nodes[1])
    ev = nemesis_call(out, "loss", lambda: nemesis.packet_loss(acc, node.host, toward, LOSS_PROBABILITY))
    if ev is not None:
        out.started_at = ev.started_at
        _hold(params.window_s, ev.started_at)
    healed = nemesis_call(out, "heal", lambda: nemesis.heal(acc, inv, node.host, what="loss"))
    if ev is None:
        return out
    out.healed_at = healed.healed_at if healed is not None else None
    dropped = int(healed.details.get("dropped_packets") or 0) if healed is not None else 0
    out.applied = ev.took_effect and healed is not None and healed.took_effect and dropped > 0
    if not out.applied and not out.problem:
        out.problem = (f"loss rule not in effect: {ev.error}" if not ev.took_effect else
                       "heal failed: the loss rule remains" if healed is None or not healed.took_effect else
                       "the loss rule dropped no packet: the link carried nothing")
    return out


FAULTS: tuple[FaultClass, ...] = (
    FaultClass("kill_primary_mid_write",
               "SIGKILL of the leader, node-a, mid-burst, restarted at once on its own database: crash "
               "recovery under load", "a crash of the node taking the writes", needs_catchup=True,
               inject=_kill_leader, recover=_leader_back),
    FaultClass("partition_minority",
               "iptables DROP, both ways, between the leader and both peers for the fault window",
               "a network partition", needs_catchup=False, inject=_partition_leader),
    FaultClass("drop_random_acks",
               "SIGSTOP of node-b for the fault window, then SIGCONT: its acks stop coming",
               "a paused peer", needs_catchup=False, inject=_pause_peer),
    FaultClass("clock_skew_peer",
               "node-c runs under a libfaketime clock offset; SIGKILLed mid-burst, restarted under it after the "
               "window, it must repair the writes it missed through catch-up",
               "clock skew on a peer", needs_catchup=True, inject=_rejoin_skewed, recover=_skew_checked,
               node_env=_skew_env, budget_per_cycle_s=CATCHUP_FIRST_TICK_S),
    FaultClass("packet_loss",
               f"{LOSS_PROBABILITY:.0%} random loss of the leader's outgoing packets on its VPC link, an "
               "iptables statistic DROP, for the fault window",
               "a lossy network link", needs_catchup=False, inject=_lossy_leader_link, release=False),
)
BY_NAME: dict[str, FaultClass] = {f.name: f for f in FAULTS}
NAMES: tuple[str, ...] = tuple(BY_NAME)
DEFAULT_FAULTS: tuple[str, ...] = tuple(f.name for f in FAULTS if f.release)


def fault_class(name: str) -> FaultClass:
    """The class of that name; a KeyError names the known ones."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown fault class {name!r} (known: {', '.join(NAMES)})") from None


def describe(names: tuple[str, ...] = NAMES) -> str:
    """'name: mechanism; ...' for --help."""
    return "; ".join(f"{n}: {BY_NAME[n].mechanism}" for n in names)
