"""The chaos checker: judges a cycle's operation history against what the nodes hold afterwards.

The rules on rows (lost, unexpected, duplicate, diverged) and the meaning of each completion are
`shipgate.checker.history`'s, shared with phase 2; this module adds what a chaos cycle needs on top (the
fault's evidence, a complete history, readable nodes, something acknowledged), one function per rule,
composed by `check_cycle`.

Kept apart from the fault injection (`shipgate.nemesis.primitives`) and the client (the host agent's `burst`), as
in Jepsen: the checker only sees a history of operations (invoke, then ok / fail / info) and the final
reads of every node, and decides. Its rules:

* An **acknowledged** write (`ok`, a 201 with an id; a 201 without one is indeterminate) must be on every node after convergence, under the
  id the server returned. Missing anywhere: **lost**.
* A write that definitely failed (`fail`: a 4xx, or a refused connection) must be nowhere, and no row may
  appear that no write produced: **unexpected**.
* A title (or id) present twice on one node: **duplicate**.
* An **indeterminate** write (`info`: a 503, which keeps the leader's row, or a timeout/reset) may land
  or not; those that landed are counted, never blamed.
* After convergence every node must hold the same set of the cycle's rows: a row on some nodes only
  (typically an indeterminate write whose fan-out died with the leader) is **diverged**.

Per fault class it also reproduces the upstream metric
`convergence_bound = floor3(Σ min(count_node1, count_node2) / Σ ok)`, but, unlike upstream, a class with
Σ ok = 0 has no bound (None, an `error`), never 1.0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shipgate.checker.history import KindTally, RowJudgement, judge_rows, rows_of, tally
from shipgate.evidence.models import Check, CheckStatus, CycleRecord, FaultResult, Quantiles
from shipgate.evidence.models.common import phase_status

UPSTREAM_BOUND_PASS = 0.995


@dataclass
class CycleCheck:
    """The checker's verdict on one cycle: the CycleRecord (history line) plus what the class needs."""

    record: CycleRecord
    latencies_ms: list[float] = field(default_factory=list)
    lost_by_node: dict[str, list[str]] = field(default_factory=dict)
    diverged: list[str] = field(default_factory=list)
    anomalies: dict[str, list[str]] = field(default_factory=dict)
    read_errors: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def status(self) -> CheckStatus:
        return self.record.status or "error"


def count_string(read: Mapping[str, Any] | None) -> str:
    """Upstream's count field: the row count as a string, or 'ERR' when the node could not be read."""
    rows = rows_of(read)
    return "ERR" if rows is None else str(len(rows))


# --- the cycle's rules: each returns the problems it finds (an empty list: the rule holds) ---------------


def history_complete(writes: KindTally, requested: int) -> list[str]:
    """Every requested write has a completion: a short history proves less than it claims."""
    if writes.completed != requested:
        return [f"history has {writes.completed} completed writes, {requested} were requested"]
    return []


def fault_took_effect(applied: bool | None, problem: str | None) -> list[str]:
    """A fault that did not land (or whose landing was not shown) proves nothing."""
    return [] if applied is True else [problem or "no evidence that the fault took effect"]


def nodes_readable(rows: RowJudgement) -> list[str]:
    if not rows.read_errors:
        return []
    return ["unreadable: " + "; ".join(f"{n}: {why}" for n, why in rows.read_errors.items())]


def something_acknowledged(writes: KindTally) -> list[str]:
    return [] if writes.ok else ["no write was acknowledged: the cycle proves nothing"]


def anomalies_found(rows: RowJudgement) -> bool:
    """Lost, unexpected, duplicate or diverged rows: the product's fault, whatever else went wrong."""
    return bool(rows.lost or rows.unexpected or rows.duplicates or rows.diverged)


def cycle_status(rows: RowJudgement, problems: Sequence[str]) -> CheckStatus:
    """An anomaly fails the cycle; otherwise any problem makes it an error (no evidence, no green)."""
    if anomalies_found(rows):
        return "fail"
    return "error" if problems else "pass"


def check_cycle(
    *,
    cycle: int,
    fault: str,
    namespace: str,
    writes: int,
    events: Sequence[Mapping[str, Any]],
    reads: Mapping[str, Mapping[str, Any]],
    nodes: Sequence[str],
    fault_applied: bool | None,
    fault_problem: str | None = None,
    time_to_converge_s: float | None = None,
    seed: int | None = None,
    fault_started_at: float | None = None,
    fault_healed_at: float | None = None,
    fault_evidence: Sequence[str] = (),
    history: str | None = None,
) -> CycleCheck:
    """Judge one cycle: the rules above over the history's writes and the nodes' rows, composed.

    `events`: the cycle's operation history (dicts shaped like OperationEvent). `reads`: node -> the host
    agent's read result (`{"ok", "rows": [{id, title, ...}], "anomalies", "error"}`) taken after the
    convergence poll. `nodes` is the upstream order node0, node1, node2 (the leader first).
    `fault_applied` False or None makes the cycle an `error` whatever the data says: a fault that did
    not land proves nothing."""
    w = tally(events).get("write")
    rows = judge_rows(w, reads, nodes)
    problems = [*history_complete(w, writes), *fault_took_effect(fault_applied, fault_problem),
                *nodes_readable(rows), *something_acknowledged(w)]
    upstream = [count_string(reads.get(n)) for n in nodes] + ["ERR"] * (3 - len(nodes))
    record = CycleRecord(
        cycle=cycle, fault=fault, writes=writes, ok=w.ok, quorum_not_met=w.quorum_not_met, fail=w.fail,
        indeterminate=w.indeterminate, namespace=namespace, seed=seed, status=cycle_status(rows, problems),
        fault_started_at=fault_started_at, fault_healed_at=fault_healed_at, fault_applied=fault_applied,
        fault_evidence=list(fault_evidence), counts=rows.counts, count_node0=upstream[0],
        count_node1=upstream[1], count_node2=upstream[2], lost=rows.lost, unexpected=rows.unexpected,
        duplicates=rows.duplicates, indeterminate_landed=rows.landed, converged=rows.converged,
        time_to_converge_s=time_to_converge_s, history=history,
    )
    return CycleCheck(record=record, latencies_ms=w.latencies_ms, lost_by_node=rows.lost_by_node,
                      diverged=rows.diverged, anomalies=rows.anomalies, read_errors=rows.read_errors,
                      problems=problems)


def _num(count: str | None) -> int:
    """Upstream's `tonumber? // 0`: a count that is not a number counts as 0."""
    try:
        return int(count) if count is not None else 0
    except ValueError:
        return 0


def convergence_bound(records: Iterable[CycleRecord]) -> float | None:
    """Upstream's Σ min(count_node1, count_node2) / Σ ok, floored to 3 decimals; None when Σ ok = 0."""
    total_ok = 0
    total_min = 0
    for r in records:
        total_ok += r.ok
        total_min += min(_num(r.count_node1), _num(r.count_node2))
    if total_ok == 0:
        return None
    return (total_min * 1000 // total_ok) / 1000  # integer floor: no 0.995 -> 0.994 float artefact


@dataclass
class ClassVerdict:
    result: FaultResult
    checks: list[Check]


def summarise_class(
    fault: str,
    cycles: Sequence[CycleCheck],
    *,
    cycles_requested: int,
    min_bound: float = UPSTREAM_BOUND_PASS,
    max_lost: int = 0,
    timed_out: bool = False,
    time_budget_s: float | None = None,
    history: Sequence[str] = (),
) -> ClassVerdict:
    """One fault class over all its cycles: the FaultResult and the checks that decide it.

    Pass = every requested cycle ran, every cycle's fault took effect, bound >= min_bound,
    lost acknowledged writes <= max_lost, and no unexpected, duplicate or diverged row."""
    records = [c.record for c in cycles]
    bound = convergence_bound(records)
    lost = [f"c{r.cycle}: {item}" for r in records for item in r.lost]
    unexpected = [f"c{r.cycle}: {item}" for r in records for item in r.unexpected]
    duplicates = [f"c{r.cycle}: {item}" for r in records for item in r.duplicates]
    diverged = [f"c{c.record.cycle}: {item}" for c in cycles for item in c.diverged]
    evidence = sum(1 for r in records if r.fault_applied is True)
    total_ok = sum(r.ok for r in records)
    checks: list[Check] = []

    def add(name: str, expected: Any, observed: Any, status: CheckStatus, detail: str | None = None) -> None:
        checks.append(Check(id=f"{fault}.{name}", expected=expected, observed=observed, status=status,
                            detail=detail))

    if timed_out:
        add("cycles_completed", cycles_requested, len(records), "error",
            f"the class exceeded its time budget of {time_budget_s:.0f}s after {len(records)} cycles: "
            "a class that did not finish never passes" if time_budget_s else "the class timed out")
    else:
        add("cycles_completed", cycles_requested, len(records),
            "pass" if len(records) == cycles_requested else "error",
            None if len(records) == cycles_requested else "fewer cycles ran than requested")
    missing_evidence = [r.cycle for r in records if r.fault_applied is not True]
    add("fault_took_effect", f"{len(records)} of {len(records)} cycles", f"{evidence} of {len(records)} cycles",
        "pass" if records and not missing_evidence else "error",
        ("cycles without evidence: " + ", ".join(f"c{n}" for n in missing_evidence[:20])
         + "; " + "; ".join(p for c in cycles if c.record.cycle in missing_evidence[:3] for p in c.problems[:1]))
        if missing_evidence else (None if records else "no cycle ran"))
    unreadable = [c for c in cycles if c.read_errors]
    add("nodes_readable", "every node read after every cycle",
        f"{len(cycles) - len(unreadable)} of {len(cycles)} cycles",
        "pass" if cycles and not unreadable else "error",
        "; ".join(f"c{c.record.cycle}: {', '.join(f'{n}: {w}' for n, w in c.read_errors.items())}"
                  for c in unreadable[:3]) or None)
    if bound is None:
        add("convergence_bound", f">= {min_bound}", None, "error",
            "Σ ok = 0: nothing was acknowledged, so there is nothing to converge (upstream would report 1.0)")
    else:
        add("convergence_bound", f">= {min_bound}", bound, "pass" if bound >= min_bound else "fail",
            f"Σ min(count_node1, count_node2) / Σ ok over {len(records)} cycles, Σ ok = {total_ok}")
    add("lost_acknowledged", f"<= {max_lost}", len(lost), "pass" if len(lost) <= max_lost else "fail",
        ("lost: " + "; ".join(lost[:10]) + (f" (+{len(lost) - 10} more)" if len(lost) > 10 else "")) if lost else None)
    add("unexpected", 0, len(unexpected), "fail" if unexpected else "pass", "; ".join(unexpected[:5]) or None)
    add("duplicates", 0, len(duplicates), "fail" if duplicates else "pass", "; ".join(duplicates[:5]) or None)
    add("replicas_agree", 0, len(diverged), "fail" if diverged else "pass",
        ("rows on some nodes only after the convergence deadline: " + "; ".join(diverged[:5])) if diverged else None)
    anomalies = sorted({f"{n}: {a}" for c in cycles for n, items in c.anomalies.items() for a in items})
    add("list_honours_limit", "pages honour limit/offset", anomalies[:5] or "ok", "fail" if anomalies else "pass",
        "; ".join(anomalies[:3]) or None)

    ttc = [r.time_to_converge_s for r in records if r.time_to_converge_s is not None]
    result = FaultResult(
        fault=fault, status=phase_status(checks), cycles_requested=cycles_requested, cycles_run=len(records),
        cycles_with_fault_evidence=evidence, writes=sum(r.writes for r in records), ok=total_ok,
        quorum_not_met=sum(r.quorum_not_met for r in records), fail=sum(r.fail for r in records),
        indeterminate=sum(r.indeterminate for r in records),
        indeterminate_landed=sum(r.indeterminate_landed or 0 for r in records), convergence_bound=bound,
        lost=lost, unexpected=unexpected, duplicates=duplicates, time_to_converge_s=Quantiles.of(ttc),
        latency_ms=Quantiles.of(v for c in cycles for v in c.latencies_ms), timed_out=timed_out,
        history=list(history),
    )
    return ClassVerdict(result=result, checks=checks)
