"""Phase 4: the chaos campaign. Real fault classes, each over many short cycles, judged by the checker.

Jepsen's split is kept: the *client* is the host agent's `burst` (run on the chaos host over SSH, in a
thread), the *nemesis* is `shipgate.nemesis` (the primitives read the kernel back; `faults.FAULTS` holds
one class per fault: its mechanism, what it needs of the cluster, its inject and recover steps), the
*cluster* is `shipgate.target.cluster`, and the *checker* (`shipgate.checker.chaos`) only sees the operation
history and the final reads of every node. This module is the generator: which class, which cycle, when
the fault lands.

Per class the cluster is started once (fresh databases) and reused across cycles; each cycle has its own
namespace. Per cycle: a paced burst of writes to the leader; the fault lands mid-burst at a moment drawn
from a recorded seed (partition, pause and loss heal after `fault_window_ms`; a killed leader is restarted
at once on the same database while the burst goes on, so crash recovery under load is part of the test);
the class recovers; convergence is polled with a deadline; the checker judges.

`clock_skew_peer`: node-c always runs under a libfaketime offset (read back from the process as
evidence). A skewed clock alone changes nothing a reader can see while every fan-out reaches node-c, so
at the cycle's fault moment node-c *rejoins*: it is SIGKILLed and restarted on the same database under
the offset, misses the writes of its downtime, and must repair them through catch-up while its clock is
wrong (the class of the `skew_cursor` defect: a cursor derived from the local clock).

Catch-up: the classes that need no repair (`needs_catchup=False`: partition_minority, drop_random_acks,
packet_loss; the setting `fanout_faults`) run with catch-up off, as phase 2's burst, so convergence
measures the fan-out itself: a post-quorum fan-out that is cancelled (`fanout_abort`) would otherwise be
repaired within one catch-up tick and never seen. `kill_primary_mid_write` and `clock_skew_peer` need
repair (a crashed leader's unsent fan-outs, a rejoining peer's missed writes), so they run with catch-up
on (`catchup_interval_secs`, recorded).

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

import random
import secrets
import threading
import time
from typing import Any

from phases.base import PhaseContext, Stopwatch, write_history
from shipgate import checker
from shipgate.client import calls, output
from shipgate.clock import sleep_until
from shipgate.evidence.atomic import write_text
from shipgate.evidence.models import Check, ClockOffset, FaultResult, Phase4Report
from shipgate.hosts import clock
from shipgate.hosts.result import CommandResult, HostError
from shipgate.nemesis.faults import FaultOutcome, FaultParams, fault_class
from shipgate.run.settings import Phase4Settings
from shipgate.target import service, startup
from shipgate.target.cluster import ClassAborted, Cluster, RecoveryFailed, topology
from shipgate.target.service import ServiceError

SERVE_NAME = "phase4"
FAULT_FRACTION = (0.15, 0.5)  # the fault moment, as a fraction of the burst, drawn per cycle
POLL_INTERVAL_S = 0.1


def _topology(ctx: PhaseContext, fault: str, s: Phase4Settings) -> Cluster:
    """The class's cluster: catch-up off for the classes that measure the fan-out itself, and the node
    environment the class asks for (node-c's clock offset)."""
    catchup = 0 if fault in s.fanout_faults else s.catchup_interval_secs
    return topology(ctx.access, ctx.inventory, s.topology, db_stem=f"phase4-{fault}", name=SERVE_NAME,
                    quorum_timeout_ms=s.quorum_timeout_ms, catchup_interval_secs=catchup, options=startup.serve_options(ctx),
                    env=fault_class(fault).node_env(_params(s)))


def _params(s: Phase4Settings) -> FaultParams:
    return FaultParams(window_s=s.fault_window_ms / 1000, skew_offset=s.skew_offset)


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
    """The class's time budget: 60 s + 6 s per cycle, plus what the class needs per cycle beyond that (the
    real product's first catch-up tick, 5 s after start-up, where a restarted node must repair before it
    converges)."""
    if s.class_budget_s is not None:
        return s.class_budget_s
    per_cycle = 6.0 + (fault_class(fault).budget_per_cycle_s if fault else 0.0)
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
        cluster.start()
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
        cluster.stop()
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
    cls = fault_class(fault)
    outcome: FaultOutcome = cls.inject(cluster, _params(s))
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
    cls.recover(cluster, outcome)
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

