"""Phase 4: the chaos campaign. Four real fault classes, each over many short cycles, judged by the checker.

Jepsen's split is kept: the *client* is the host agent's `burst` (run on the chaos host over SSH, in a
thread), the *nemesis* is `shipgate.nemesis.primitives` (iptables, SIGSTOP, SIGKILL, libfaketime), driven here at a
moment drawn from a recorded seed, and the *checker* (`shipgate.checker.chaos`) only sees the operation
history and the final reads of every node.

Per class the cluster is started once (fresh databases) and reused across cycles; each cycle has its own
namespace. Per cycle: a paced burst of writes to the leader; the fault lands mid-burst (partition and
pause heal after `fault_window_ms`; a killed leader is restarted at once on the same database while the
burst goes on, so crash recovery under load is part of the test); convergence is polled with a
deadline; the checker judges.

`clock_skew_peer`: node-c always runs under a libfaketime offset (read back from the process as
evidence). A skewed clock alone changes nothing a reader can see while every fan-out reaches node-c, so
at the cycle's fault moment node-c *rejoins*: it is SIGKILLed and restarted on the same database under
the offset, misses the writes of its downtime, and must repair them through catch-up while its clock is
wrong (the class of the `skew_cursor` defect: a cursor derived from the local clock).

Catch-up: `partition_minority` and `drop_random_acks` run with catch-up off (`fanout_faults`), as phase 2's
burst, so convergence measures the fan-out itself: a post-quorum fan-out that is cancelled (`fanout_abort`)
would otherwise be repaired within one catch-up tick and never seen. `kill_primary_mid_write` and
`clock_skew_peer` need repair (a crashed leader's unsent fan-outs, a rejoining peer's missed writes), so
they run with catch-up on (`catchup_interval_secs`, recorded).

`partition_minority` DROPs (both ways) between node-a and both peers for 500 ms. That is shorter than the
quorum timeout, so TCP retransmission delivers every fan-out once the rules go: no replica misses a row,
and a peer without catch-up (`no_catchup`) cannot be visible in this class. It is in `clock_skew_peer`
(the rejoining node-c must pull what it missed) and, as diverged rows, in `kill_primary_mid_write`.

`--topology local` is upstream's shape: three serves on the chaos host (127.0.0.1:19077-19079), only
node-0 federated (so nodes 1 and 2 have no catch-up), the partition a loopback DROP on the peers' ports.

A class that exceeds its time budget is `timed_out` and an error: it never passes vacuously.

Two clocks stamp the history: the client's writes the chaos host's, the nemesis' actions the operator's
(each event says which in `clock`). Before either is compared with or sorted against the other, the phase
records the chaos host's offset (`clock_offset`): measured over SSH on droplets, 0 by construction on the
lab, whose hosts share one kernel clock.
"""

from __future__ import annotations

import contextlib
import json
import random
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from phases.base import PhaseContext, Stopwatch, write_history
from shipgate import checker, nemesis
from shipgate.client import calls, output
from shipgate.clock import sleep_until
from shipgate.evidence.atomic import write_text
from shipgate.evidence.models import Check, ClockOffset, FaultResult, Phase4Report
from shipgate.hosts import clock, shell
from shipgate.hosts.ssh import CommandResult, HostError
from shipgate.run.settings import Phase4Settings
from shipgate.target import service
from shipgate.target.service import WORKDIR, ServeSpec, ServiceError

LOCAL_PORTS = (19077, 19078, 19079)
SERVE_NAME = "phase4"
FAULT_FRACTION = (0.15, 0.5)  # the fault moment, as a fraction of the burst, drawn per cycle
POLL_INTERVAL_S = 0.1
CATCHUP_FIRST_TICK_S = 5.0  # real ai-memory pulls its peers first 5 s after start-up, whatever the interval
REJOIN_FAULTS = ("clock_skew_peer",)  # a node restarts each cycle and repairs its missed writes by catch-up


@dataclass
class Node:
    """One `serve` of the chaos cluster: where it runs, how others reach it, and its current PID."""

    name: str
    host: str
    url: str
    spec: ServeSpec
    pid: int | None = None


@dataclass
class Cluster:
    """The three nodes in upstream order (node0 = the leader that takes the writes)."""

    nodes: list[Node]
    topology: str

    @property
    def leader(self) -> Node:
        return self.nodes[0]

    def by_role(self, index: int) -> Node:
        return self.nodes[index]

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.nodes]


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


class ClassAborted(RuntimeError):
    """The class cannot go on (cluster down, a node would not restart): an `error`, named."""


class RecoveryFailed(ClassAborted):
    """The leader did not come back after a SIGKILL on its own database: the product's crash recovery
    broke (upstream's "node-0 failed to start" after a dirty WAL), a `fail`, not a gate error."""


def _topology(ctx: PhaseContext, fault: str, s: Phase4Settings) -> Cluster:
    """The hosts shape (node-a/b/c on their own hosts, all federated, as phase 2) or upstream's local shape."""
    db = f"{WORKDIR}/phase4-{fault}.db"
    catchup = 0 if fault in s.fanout_faults else s.catchup_interval_secs
    common = {"quorum_timeout_ms": s.quorum_timeout_ms, "catchup_interval_secs": catchup, "name": SERVE_NAME,
              "flags": ctx.serve_flags}
    nodes: list[Node] = []
    if s.topology == "local":
        urls = [f"http://127.0.0.1:{p}" for p in LOCAL_PORTS]
        for i, port in enumerate(LOCAL_PORTS):
            fed = {"quorum_writes": 2, "peers": urls[1:]} if i == 0 else {}
            spec = ServeSpec(host="chaos", port=port, bind="127.0.0.1", db=f"{WORKDIR}/phase4-{fault}-node{i}.db",
                             **fed, **common)
            nodes.append(Node(f"node-{i}", "chaos", urls[i], spec))
    else:
        inv = ctx.inventory
        names = ("node-a", "node-b", "node-c")
        for name in names:
            peers = [inv.peer_url(p) for p in names if p != name]
            spec = ServeSpec(host=name, port=inv.federation_port, db=db, peers=peers, quorum_writes=2, **common)
            nodes.append(Node(name, name, inv.peer_url(name), spec))
    if fault == "clock_skew_peer":
        skewed = nodes[2]
        skewed.spec = skewed.spec.model_copy(update={"env": _skew_env(s.skew_offset)})
    return Cluster(nodes, s.topology)


def _skew_env(offset: str) -> dict[str, str]:
    return dict(nemesis.skew_env(offset))


def run(ctx: PhaseContext) -> Phase4Report:
    s = ctx.settings.phase4
    watch = Stopwatch()
    seed = s.seed if s.seed is not None else secrets.randbits(31)
    checks: list[Check] = []
    faults: dict[str, FaultResult] = {}
    history: list[str] = []
    details: dict[str, Any] = {"seed": seed, "topology": s.topology,
                               "catchup_interval_secs": s.catchup_interval_secs,
                               "quorum_timeout_ms": s.quorum_timeout_ms,
                               "class_budget_s": {f: _budget(s, f) for f in s.faults},
                               "replay": f"--seed {seed}", "classes": {}}
    offset: clock.Offset | None = None
    try:
        service.install_agent(ctx.access, ["chaos"])
        offset = clock.offset_for(ctx.access, ctx.inventory, "chaos")
    except ServiceError as exc:
        checks.append(Check.error("chaos.agent", "host agent installed on the chaos host", str(exc)))
    except (clock.ClockError, HostError) as exc:
        checks.append(Check.error("chaos.clock_offset", "the chaos host's clock offset to the operator's",
                                  f"{exc}: the client's and the nemesis' histories cannot be compared"))
    if offset is not None:
        for fault in s.faults:
            verdict, extra = run_class(ctx, fault, seed, offset)
            checks += verdict.checks
            faults[fault] = verdict.result
            history += verdict.result.history
            details["classes"][fault] = extra
    return Phase4Report.from_checks(
        checks, timing=watch.timing(), settings={**s.model_dump(), "seed": seed}, target=ctx.target_ref(),
        cycles_per_fault=s.cycles, writes_per_cycle=s.writes,
        convergence_by_fault={f: r.convergence_bound for f, r in faults.items()}, faults=faults,
        clock_offset=ClockOffset.model_validate(offset, from_attributes=True) if offset else None,
        history=history, details=details)


def _budget(s: Phase4Settings, fault: str | None = None) -> float:
    """The class's time budget: 60 s + 6 s per cycle, plus the real product's first catch-up tick (5 s after
    start-up, v0.6.1+) per cycle where a restarted node must repair through catch-up before it converges."""
    if s.class_budget_s is not None:
        return s.class_budget_s
    per_cycle = 6.0 + (CATCHUP_FIRST_TICK_S if fault in REJOIN_FAULTS else 0.0)
    return 60.0 + per_cycle * s.cycles


def run_class(ctx: PhaseContext, fault: str, seed: int,
              offset: clock.Offset) -> tuple[checker.ClassVerdict, dict[str, Any]]:
    """All cycles of one fault class on one cluster; always returns a verdict (errors are checks).
    `offset` relates the chaos host's clock (the client's stamps) to the operator's (the nemesis')."""
    s = ctx.settings.phase4
    budget = _budget(s, fault)
    t0 = time.monotonic()
    try:
        cluster = _topology(ctx, fault, s)
    except ValueError as exc:  # NemesisError: a bad skew offset, or no libfaketime on the operator
        verdict = checker.summarise_class(fault, [], cycles_requested=s.cycles, min_bound=s.min_bound,
                                          max_lost=s.max_lost)
        verdict.checks.insert(0, Check.error(f"{fault}.cluster", "a cluster for the class", str(exc)))
        return verdict, {"error": str(exc)}
    ops_file = ctx.history_dir / f"phase4-{fault}.jsonl"
    cycles_file = ctx.history_dir / f"phase4-{fault}-cycles.jsonl"
    rel = [str(p.relative_to(ctx.run_dir)) for p in (ops_file, cycles_file)]
    ops: list[dict[str, Any]] = []
    cycles: list[checker.CycleCheck] = []
    extra: dict[str, Any] = {"catchup_interval_secs": cluster.leader.spec.catchup_interval_secs,
                             "nodes": {n.name: {"host": n.host, "url": n.url, "argv": n.spec.argv(),
                                                "env": n.spec.env} for n in cluster.nodes}}
    aborted: str | None = None
    recovery: str | None = None
    timed_out = False
    try:
        ctx.progress(f"phase 4: {fault}: starting the cluster ({cluster.topology})")
        _start_cluster(ctx, cluster)
        extra["startup_s"] = round(time.monotonic() - t0, 3)
        startup = _agent_startup(ctx, cluster)
        extra["agent_startup_s"] = round(startup, 3)
        for n in range(1, s.cycles + 1):
            if time.monotonic() - t0 > budget:
                timed_out = True
                break
            cyc, events = run_cycle(ctx, cluster, fault, n, seed, startup, offset)
            cycles.append(cyc)
            ops += events
            r = cyc.record
            ctx.progress(f"phase 4: {fault} cycle {n}/{s.cycles}: ok {r.ok}/{r.writes}, {r.status}"
                         f"{' (' + cyc.problems[0] + ')' if cyc.problems and r.status != 'pass' else ''}"
                         f", {time.monotonic() - t0:.0f}s")
    except RecoveryFailed as exc:
        recovery = aborted = str(exc)
        ctx.progress(f"phase 4: {fault}: crash recovery failed: {aborted}")
    except (ClassAborted, ServiceError, HostError) as exc:
        aborted = str(exc)
        ctx.progress(f"phase 4: {fault}: aborted: {aborted}")
    finally:
        _stop_cluster(ctx, cluster)
    extra["elapsed_s"] = round(time.monotonic() - t0, 3)
    extra["cycles_per_min"] = round(len(cycles) / (extra["elapsed_s"] / 60), 2) if cycles else 0.0
    write_history(ops_file, ops)
    write_text(cycles_file, "".join(c.record.model_dump_json(by_alias=True, exclude_none=True) + "\n"
                                    for c in cycles))
    verdict = checker.summarise_class(fault, cycles, cycles_requested=s.cycles, min_bound=s.min_bound,
                                      max_lost=s.max_lost, timed_out=timed_out, time_budget_s=budget,
                                      history=rel)
    if recovery:
        verdict.checks.insert(0, Check(id=f"{fault}.crash_recovery", expected="node-a healthy again after SIGKILL",
                                       observed=recovery, status="fail",
                                       detail="serve did not come back on its own database after a SIGKILL"))
        verdict.result.status = "fail"
    elif aborted:
        verdict.checks.insert(0, Check.error(f"{fault}.cluster", "the cluster runs through every cycle",
                                             aborted))
        verdict.result.status = "fail" if verdict.result.status == "fail" else "error"
    return verdict, extra


# --- cluster life cycle ----------------------------------------------------------------------------------


def _start_cluster(ctx: PhaseContext, cluster: Cluster) -> None:
    """Fresh databases, every node started and healthy. A partition left by a harness that died is lifted
    first (stop_serve already continues a stopped node before stopping it)."""
    healed = nemesis.heal(ctx.access, ctx.inventory, cluster.leader.host)
    if not healed.took_effect:
        raise ClassAborted(f"{cluster.leader.name}: stale partition rules cannot be removed: {healed.error}")
    for node in cluster.nodes:
        service.stop_serve(ctx.access, node.host, port=node.spec.port, name=SERVE_NAME)
        db = node.spec.db
        res = ctx.access.run(node.host, f"rm -f {db} {db}-wal {db}-shm {node.spec.log}", timeout=20)
        if not res.ok:
            raise ClassAborted(f"{node.name}: cannot reset its database: {res.describe()}")
    for node in cluster.nodes:
        node.pid = service.start_serve(ctx.access, node.spec)
    _wait_healthy(ctx, cluster, cluster.nodes)


def _stop_cluster(ctx: PhaseContext, cluster: Cluster) -> None:
    """Lift any partition and stop every node by its PID file (a paused one is continued first by
    stop_serve); never raises, so it can run on every exit path (an exception, SIGTERM turned into one)."""
    with contextlib.suppress(Exception):
        nemesis.heal(ctx.access, ctx.inventory, cluster.leader.host)
    for node in cluster.nodes:
        with contextlib.suppress(ServiceError, HostError):
            service.stop_serve(ctx.access, node.host, port=node.spec.port, name=SERVE_NAME)
    for host in sorted({n.host for n in cluster.nodes if "LD_PRELOAD" in n.spec.env}):
        with contextlib.suppress(Exception):  # libfaketime's /dev/shm leftovers of killed processes
            nemesis.clean_faketime_shm(ctx.access, host)


def _restart(ctx: PhaseContext, cluster: Cluster, node: Node) -> None:
    """Start a node again on the same database (after a SIGKILL: crash recovery), once the killed process is
    gone, its listening port included (`shell.gone`): a restart before that fails to bind, a false red."""
    if node.pid:
        port = int(node.spec.port)
        res = ctx.access.run(node.host, shell.PROCESS + shell.poll(shell.gone(int(node.pid), port), deadline_s=10,
                                                                   interval_s=0.02), timeout=20)
        if not res.ok:
            raise ClassAborted(f"{node.name}: pid {node.pid} or its port {port} still held 10 s after SIGKILL: "
                               f"{res.describe()}")
    node.pid = service.start_serve(ctx.access, node.spec)


def _wait_healthy(ctx: PhaseContext, cluster: Cluster, nodes: list[Node], deadline_s: float = 30) -> None:
    def one(node: Node) -> tuple[Node, CommandResult]:
        return node, service.agent(ctx.access, "chaos", ["health", "--url", node.url, "--deadline", str(deadline_s)],
                                   timeout=deadline_s + 15)

    with ThreadPoolExecutor(len(nodes)) as pool:
        results = list(pool.map(one, nodes))
    for node, res in results:
        if res.error or res.exit_code != 0:
            tail = service.serve_log_tail(ctx.access, node.host, port=node.spec.port, name=SERVE_NAME)
            raise ClassAborted(f"{node.name} not healthy: {res.error or res.stdout.strip()[-200:]}; "
                               f"process: {_process_facts(ctx, node)}; log: {tail.strip()[-300:]}")


def _process_facts(ctx: PhaseContext, node: Node) -> str:
    """What the host says about a node that does not answer: its process state and the listening sockets."""
    pid = int(node.pid or 0)
    res = ctx.access.run(node.host, shell.describe(pid, node.spec.port), timeout=15)
    return " ".join((res.stdout or res.error or "").split())[-300:]


def _agent_startup(ctx: PhaseContext, cluster: Cluster) -> float:
    """Seconds from launching an agent command over SSH to its first request (so the fault lands mid-burst)."""
    samples = []
    for _ in range(3):
        t = time.monotonic()
        service.agent(ctx.access, "chaos", ["health", "--url", cluster.leader.url, "--deadline", "5"], timeout=20)
        samples.append(time.monotonic() - t)
    return sorted(samples)[1]


# --- one cycle -------------------------------------------------------------------------------------------


def _writers(writes: int, concurrency: int) -> int:
    """The largest writer count <= concurrency that divides `writes` (every cycle writes exactly `writes`)."""
    for k in range(min(concurrency, writes), 0, -1):
        if writes % k == 0:
            return k
    return 1


def fault_moment(seed: int, fault: str, cycle: int) -> float:
    """The fault moment of a cycle as a fraction of its burst: a pure function of (seed, fault, cycle)."""
    return random.Random(f"{seed}:{fault}:{cycle}").uniform(*FAULT_FRACTION)


def run_cycle(ctx: PhaseContext, cluster: Cluster, fault: str, n: int, seed: int, startup: float,
              offset: clock.Offset) -> tuple[checker.CycleCheck, list[dict[str, Any]]]:
    s = ctx.settings.phase4
    namespace = f"chaos-{fault.replace('_', '-')}-c{n}"
    k = _writers(s.writes, s.concurrency)
    agents = [f"w{i}" for i in range(1, k + 1)]
    frac = fault_moment(seed, fault, n)
    rate = s.writes / s.burst_s
    args = ["burst", "--url", cluster.leader.url, "--node", cluster.leader.name, "--namespace", namespace,
            "--agents", ",".join(agents), "--writes", str(s.writes // k), "--rate", f"{rate:.3f}",
            "--timeout", str(s.quorum_timeout_ms / 1000 + 3), "--source", "chaos",
            "--title-format", f"c{n}-{{agent}}-{{seq}}", "--content-prefix", f"chaos test payload {n}",
            "--no-agent-header", "--start-at", "START"]
    burst_limit = s.burst_s + s.writes * (s.quorum_timeout_ms / 1000 + 3) / k + 30
    box: dict[str, CommandResult] = {}

    def client() -> None:
        box["res"] = service.agent(ctx.access, "chaos", args, timeout=burst_limit)

    # The writers start at an agreed wall-clock instant (after the agent's measured start-up, with margin),
    # and the fault is scheduled from that same instant: it lands mid-burst even when SSH is slow. The
    # instant is sent on the chaos host's clock.
    lead = max(0.25, 2 * startup + 0.1)
    start_at = time.time() + lead
    args[-1] = f"{start_at + offset.offset_s:.6f}"
    launched = time.monotonic()
    thread = threading.Thread(target=client, name=f"burst-{fault}-{n}", daemon=True)
    thread.start()
    sleep_until(launched + lead + frac * s.burst_s)  # the drawn fault moment: a schedule, not a wait
    outcome = _inject(ctx, cluster, fault, s)
    thread.join(burst_limit + 5)
    burst_end = time.monotonic()
    res = box.get("res")
    events: list[dict[str, Any]] = []
    problem: str | None = None
    if res is None or res.error:
        problem = f"burst on the chaos host failed: {res.error if res else 'did not return'}"
    else:
        events, _ = output.agent_events(res)  # a line left out shows as a write missing from the history
    for e in events:
        e.update(cycle=n, fault=fault, clock=offset.host)
    _recover(ctx, cluster, fault, outcome)
    _landed_mid_burst(outcome, [{**e, "time": _on_operator(e, offset)} for e in events])
    acked = checker.tally(events).get("write").acked
    conv = checker.poll(lambda: _read(ctx, cluster, namespace), cluster.names, checker.holds_ids(acked),
                        deadline_s=s.convergence_deadline_s, start=burst_end, interval_s=POLL_INTERVAL_S,
                        agree=True)
    reads, ttc = conv.reads, conv.seconds
    nemesis_events = [{**e, "cycle": n, "fault": fault, "clock": offset.reference} for e in outcome.events]
    fault_problem = outcome.problem
    if problem:
        fault_problem = f"{problem}; {fault_problem}" if fault_problem else problem
    cyc = checker.check_cycle(
        cycle=n, fault=fault, namespace=namespace, writes=s.writes, events=events, reads=reads,
        nodes=cluster.names, fault_applied=outcome.applied if problem is None else None,
        fault_problem=fault_problem, time_to_converge_s=ttc, seed=seed,
        fault_started_at=outcome.started_at, fault_healed_at=outcome.healed_at,
        fault_evidence=[f"fault moment {frac:.3f} of the burst", *outcome.evidence],
        history=f"history/phase4-{fault}.jsonl")
    return cyc, sorted(events + nemesis_events, key=lambda e: _on_operator(e, offset))


def _on_operator(event: dict[str, Any], offset: clock.Offset) -> float:
    """An event's stamp on the operator's clock, so client and nemesis events compare and sort together."""
    return clock.to_reference(float(event.get("time", 0.0)), event.get("clock"), offset)


def _evidence_lines(ev: Any) -> list[str]:
    summary = getattr(ev, "summary", None)
    return [summary()] if callable(summary) else []


def _nemesis_call(outcome: FaultOutcome, what: str, fn: Callable[[], Any]) -> Any | None:
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


def _inject(ctx: PhaseContext, cluster: Cluster, fault: str, s: Phase4Settings) -> FaultOutcome:
    """Apply the cycle's fault (and heal it after the window for partition and pause)."""
    acc, inv = ctx.access, ctx.inventory
    window = s.fault_window_ms / 1000
    if fault == "kill_primary_mid_write":
        node = cluster.leader
        out = FaultOutcome("kill", node.name)
        ev = _nemesis_call(out, "kill", lambda: nemesis.kill(acc, node.host, node.pid))
        if ev is not None:
            out.started_at = ev.started_at
            out.applied = ev.took_effect
            if not out.applied:
                out.problem = f"SIGKILL of {node.name} (pid {node.pid}) did not take effect: {ev.error}"
                return out
            # Crash recovery starts at once, on the same database, while the burst goes on.
            try:
                _restart(ctx, cluster, node)
            except (ServiceError, HostError, ClassAborted) as exc:
                out.problem = f"{node.name} did not restart after the kill: {exc}"
                out.applied = False
        return out
    if fault == "partition_minority":
        node = cluster.leader
        peers = [n.host for n in cluster.nodes[1:]]
        out = FaultOutcome("partition", f"{node.name} <-> {', '.join(n.name for n in cluster.nodes[1:])}")
        if cluster.topology == "local":
            ev = _nemesis_call(out, "partition", lambda: _partition_loopback(acc, cluster))
        else:
            ev = _nemesis_call(out, "partition",
                               lambda: nemesis.partition(acc, inv, node.host, peers, port=cluster.nodes[1].spec.port))
        if ev is not None:
            out.started_at = ev.started_at
            sleep_until(time.monotonic() + window - max(0.0, time.time() - ev.started_at))
        healed = _nemesis_call(out, "heal", lambda: nemesis.heal(acc, inv, node.host))
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
    if fault == "drop_random_acks":
        node = cluster.by_role(1)
        out = FaultOutcome("pause", node.name)
        ev = _nemesis_call(out, "pause", lambda: nemesis.pause(acc, node.host, node.pid))
        if ev is not None:
            out.started_at = ev.started_at
            sleep_until(time.monotonic() + window - max(0.0, time.time() - ev.started_at))
        resumed = _nemesis_call(out, "resume", lambda: nemesis.resume(acc, node.host, node.pid))
        if ev is None:
            return out
        out.healed_at = resumed.healed_at if resumed is not None else None
        out.applied = ev.took_effect and resumed is not None and resumed.took_effect
        if not out.applied and not out.problem:
            out.problem = (f"{node.name} was not seen stopped: {ev.error}" if not ev.took_effect else
                           f"{node.name} was not seen continued")
        return out
    if fault == "clock_skew_peer":
        node = cluster.by_role(2)
        out = FaultOutcome("skew", node.name)
        ev = _nemesis_call(out, "kill", lambda: nemesis.kill(acc, node.host, node.pid))
        if ev is None:
            return out
        out.started_at = ev.started_at
        # Stay down for the fault window, longer than the leader's single 250 ms retry, so the writes of
        # that window can only reach node-c through catch-up whatever the machine's speed (holding a
        # fault for its window, not waiting for a condition).
        time.sleep(window)
        try:
            _restart(ctx, cluster, node)
        except (ServiceError, HostError, ClassAborted) as exc:
            out.applied = False
            out.problem = f"{node.name} did not restart under the clock offset: {exc}"
            return out
        out.applied = bool(ev.took_effect)
        if not out.applied:
            out.problem = f"SIGKILL of {node.name} did not take effect"
        return out
    raise ValueError(f"unknown fault class {fault}")


def _partition_loopback(access: Any, cluster: Cluster) -> Any:
    """Upstream's local partition: DROP the leader's outgoing connections to the peers' loopback ports on
    the chaos host. Tagged like the nemesis' own rules, so `nemesis.heal` lifts them and reads the counters."""
    rules = [f"OUTPUT -d 127.0.0.1/32 -p tcp -m tcp --dport {n.spec.port} "
             f"-m comment --comment \"{nemesis.TAG} partition {n.name}\" -j DROP" for n in cluster.nodes[1:]]
    lines = [f"iptables -w 5 -I {r.replace('OUTPUT ', 'OUTPUT 1 ', 1)}" for r in rules]
    lines += [f"iptables -w 5 -C {r} && echo present:{i}" for i, r in enumerate(rules)]
    started = time.time()
    res = access.run(cluster.leader.host, "; ".join(lines), timeout=30)
    present = res.stdout.count("present:")
    return nemesis.FaultEvidence(
        kind="partition", host=cluster.leader.host, target=",".join(str(n.spec.port) for n in cluster.nodes[1:]),
        started_at=started, took_effect=res.error is None and present == len(rules),
        details={"rules": present, "loopback": True},
        error=None if present == len(rules) else f"rules not in effect: {res.describe()}")


def _recover(ctx: PhaseContext, cluster: Cluster, fault: str, outcome: FaultOutcome) -> None:
    """After the burst: restart a killed leader on the same DB, check a skewed node's clock; wait healthy."""
    if fault == "kill_primary_mid_write":
        node = cluster.leader
        if not outcome.applied and service.serve_pid(ctx.access, node.host, port=node.spec.port,
                                                     name=SERVE_NAME) is None:
            _restart(ctx, cluster, node)  # the kill or its restart failed in the nemesis step: start it now
        try:
            _wait_healthy(ctx, cluster, [node])
        except ClassAborted as exc:
            raise RecoveryFailed(str(exc)) from exc
        outcome.healed_at = time.time()
        outcome.events.append({"process": "nemesis", "op": "restart", "type": "info", "time": outcome.healed_at,
                               "value": {"node": node.name, "pid": node.pid}})
    elif fault == "clock_skew_peer":
        node = cluster.by_role(2)
        if not outcome.applied and service.serve_pid(ctx.access, node.host, port=node.spec.port,
                                                     name=SERVE_NAME) is None:
            _restart(ctx, cluster, node)  # the cycle is already an error; the class goes on
        _wait_healthy(ctx, cluster, [node])
        outcome.healed_at = time.time()
        if outcome.applied:
            ev = _nemesis_call(outcome, "read_clock_offset",
                               lambda: nemesis.read_clock_offset(ctx.access, node.host, node.pid))
            if ev is None or not ev.took_effect:
                outcome.applied = False
                outcome.problem = outcome.problem or f"{node.name} (pid {node.pid}) does not run with a skewed clock"


def _landed_mid_burst(outcome: FaultOutcome, events: list[dict[str, Any]]) -> None:
    """The fault must start while the burst's writes are in flight; record how many overlapped the
    nemesis action (from sending the fault to its read-back)."""
    if outcome.started_at is None or not events:
        return
    invokes = [e["time"] for e in events if e.get("type") == "invoke"]
    completes = [e["time"] for e in events if e.get("type") in ("ok", "fail", "info")]
    if not invokes or not completes:
        return
    first, last = min(invokes), max(completes)
    t = outcome.started_at
    done = [e["time"] for e in outcome.events if e.get("type") != "invoke"]
    t_end = min(done) if done else t
    open_ops = _in_flight(events, t, t_end)
    outcome.evidence.append(f"fault at +{t - first:.3f}s of a {last - first:.3f}s burst, "
                            f"{open_ops} writes in flight while it was applied")
    if not first <= t <= last and outcome.applied:
        outcome.applied = False
        outcome.problem = (f"the fault started {t - first:+.3f}s from the burst's first write, outside the burst "
                           f"({last - first:.3f}s): no write was in flight")


def _in_flight(events: list[dict[str, Any]], t0: float, t1: float) -> int:
    """Writes whose [invoke, completion] interval overlaps [t0, t1]."""
    started: dict[str, float] = {}
    count = 0
    for e in events:
        key = f"{e.get('process')}/{e.get('title')}"
        if e.get("type") == "invoke":
            started[key] = e["time"]
        elif key in started and started[key] <= t1 and e.get("time", 0.0) >= t0:
            count += 1
    return count


def _read(ctx: PhaseContext, cluster: Cluster, namespace: str) -> dict[str, Any]:
    args = calls.read({n.name: n.url for n in cluster.nodes}, namespace, page=1000, timeout_s=5)
    doc, why = output.agent_object(service.agent(ctx.access, "chaos", args, timeout=40), "host agent read")
    return doc if doc is not None else {n.name: {"ok": False, "error": why} for n in cluster.nodes}

