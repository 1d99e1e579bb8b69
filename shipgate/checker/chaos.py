"""The chaos checker: judges a cycle's operation history against what the nodes hold afterwards.

Kept apart from the fault injection (`shipgate.nemesis.primitives`) and the client (the host agent's `burst`), as
in Jepsen: the checker only sees a history of operations (invoke, then ok / fail / info) and the final
reads of every node, and decides. Its rules:

* An **acknowledged** write (`ok`, a 201 with an id) must be on every node after convergence, under the
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

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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


def _completions(events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [e for e in events if e.get("op", "write") == "write" and e.get("type") in ("ok", "fail", "info")]


def count_string(read: Mapping[str, Any] | None) -> str:
    """Upstream's count field: the row count as a string, or 'ERR' when the node could not be read."""
    if not read or not read.get("ok"):
        return "ERR"
    return str(len(read.get("rows") or []))


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
    """Judge one cycle.

    `events`: the cycle's operation history (dicts shaped like OperationEvent). `reads`: node -> the host
    agent's read result (`{"ok", "rows": [{id, title, ...}], "anomalies", "error"}`) taken after the
    convergence poll. `nodes` is the upstream order node0, node1, node2 (the leader first).
    `fault_applied` False or None makes the cycle an `error` whatever the data says: a fault that did
    not land proves nothing."""
    done = _completions(events)
    attempted = {str(e.get("title")) for e in events if e.get("op", "write") == "write" and e.get("title")}
    acked: dict[str, str] = {}  # id -> title
    acked_titles: dict[str, str] = {}  # title -> id
    failed_titles: set[str] = set()
    indeterminate_titles: set[str] = set()
    ok = qnm = fail = indeterminate = 0
    latencies: list[float] = []
    problems: list[str] = []
    for e in done:
        title = str(e.get("title"))
        if e["type"] == "ok":
            ok += 1
            if e.get("id"):
                acked[str(e["id"])] = title
                acked_titles[title] = str(e["id"])
            if isinstance(e.get("latency_ms"), (int, float)):
                latencies.append(float(e["latency_ms"]))
        elif e["type"] == "fail":
            fail += 1
            failed_titles.add(title)
        elif e.get("status") == 503:
            qnm += 1
            indeterminate_titles.add(title)
        else:
            indeterminate += 1
            indeterminate_titles.add(title)
    if len(done) != writes:
        problems.append(f"history has {len(done)} completed writes, {writes} were requested")

    counts: dict[str, int | None] = {}
    read_errors: dict[str, str] = {}
    anomalies: dict[str, list[str]] = {}
    lost_by_node: dict[str, list[str]] = {}
    unexpected: list[str] = []
    duplicates: list[str] = []
    present: dict[str, set[str]] = {}  # node -> titles held
    for node in nodes:
        read = reads.get(node) or {}
        if not read.get("ok"):
            counts[node] = None
            read_errors[node] = str(read.get("error") or "no answer")
            continue
        rows = [r for r in (read.get("rows") or []) if isinstance(r, Mapping)]
        counts[node] = len(rows)
        if read.get("anomalies"):
            anomalies[node] = [str(a) for a in read["anomalies"]]
        ids = Counter(str(r.get("id")) for r in rows)
        titles = Counter(str(r.get("title")) for r in rows)
        id_of_title = {str(r.get("title")): str(r.get("id")) for r in rows}
        present[node] = set(titles)
        duplicates += [f"{t} x{n} on {node}" for t, n in sorted(titles.items()) if n > 1]
        duplicates += [f"id {i} x{n} on {node}" for i, n in sorted(ids.items()) if n > 1]
        for wid, title in sorted(acked.items(), key=lambda kv: kv[1]):
            if wid in ids:
                continue
            if title in titles:
                unexpected.append(f"{title} on {node} has id {id_of_title[title]}, acknowledged as {wid}")
            else:
                lost_by_node.setdefault(node, []).append(title)
        for title in sorted(titles):
            if title not in attempted:
                unexpected.append(f"{title} on {node}: no write produced it")
            elif title in failed_titles and title not in acked_titles and title not in indeterminate_titles:
                unexpected.append(f"{title} on {node}: its write definitely failed")

    lost_titles: dict[str, list[str]] = {}
    for node, titles in lost_by_node.items():
        for title in titles:
            lost_titles.setdefault(title, []).append(node)
    lost = [f"{t} missing on {', '.join(ns)}" for t, ns in sorted(lost_titles.items())]
    readable = [n for n in nodes if n in present]
    everywhere = set.intersection(*(present[n] for n in readable)) if readable else set()
    anywhere = set.union(*(present[n] for n in readable)) if readable else set()
    diverged = [f"{t} only on {', '.join(n for n in readable if t in present[n])}"
                for t in sorted(anywhere - everywhere) if t not in lost_titles]
    landed = len(indeterminate_titles & anywhere)

    if fault_applied is not True:
        problems.append(fault_problem or "no evidence that the fault took effect")
    if read_errors:
        problems.append("unreadable: " + "; ".join(f"{n}: {why}" for n, why in read_errors.items()))
    if ok == 0:
        problems.append("no write was acknowledged: the cycle proves nothing")
    if lost or unexpected or duplicates or diverged:
        status: CheckStatus = "fail"
    elif problems:
        status = "error"
    else:
        status = "pass"

    upstream = [count_string(reads.get(n)) for n in nodes] + ["ERR"] * (3 - len(nodes))
    record = CycleRecord(
        cycle=cycle, fault=fault, writes=writes, ok=ok, quorum_not_met=qnm, fail=fail,
        indeterminate=indeterminate, namespace=namespace, seed=seed, status=status,
        fault_started_at=fault_started_at, fault_healed_at=fault_healed_at, fault_applied=fault_applied,
        fault_evidence=list(fault_evidence), counts=counts, count_node0=upstream[0],
        count_node1=upstream[1], count_node2=upstream[2], lost=lost, unexpected=unexpected,
        duplicates=duplicates, indeterminate_landed=landed,
        converged=not lost_by_node and not diverged and not read_errors,
        time_to_converge_s=time_to_converge_s, history=history,
    )
    return CycleCheck(record=record, latencies_ms=latencies, lost_by_node=lost_by_node, diverged=diverged,
                      anomalies=anomalies, read_errors=read_errors, problems=problems)


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
