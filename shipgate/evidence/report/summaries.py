"""Three short summaries generated from a run's data: for an end user, a decision maker, an engineer.

Each says what was tested, what it proved and what failed where, in that reader's terms. Nothing here is
hand-written per run: every figure comes from the artifacts, and a claim is only made when the evidence
for it is on disk (an error run claims nothing about the product).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from shipgate.evidence.models import Phase2Report, Phase3Report, Phase4Report
from shipgate.evidence.models.summary import unscoped_decision
from shipgate.evidence.report.load import RunData
from shipgate.nemesis.faults import FAULTS

PLAIN: dict[int, str] = {
    1: "the basics on every node (store, recall, backup and restore, MCP tools)",
    2: "replication of concurrent writes to all three nodes, and refusing writes when a quorum is lost",
    3: "moving data between SQLite and Postgres without losing or changing a record",
    4: "surviving crashes, network partitions, paused peers and clock skew while writing",
}
FAULT_PLAIN: dict[str, str] = {f.name: f.plain for f in FAULTS}
BRIEF: dict[int, str] = {1: "the basics", 2: "replication", 3: "migration", 4: "resilience under faults"}
SHORT: dict[int, str] = {1: "functional", 2: "federation", 3: "migration", 4: "chaos"}


@dataclass
class Summary:
    key: str
    title: str
    paragraphs: list[str]
    items: list[str] = field(default_factory=list)


def _and(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def check_counts(data: RunData) -> Counter[str]:
    return Counter(c.status for a in data.phases if a.report for c in a.report.checks)


def phase_statuses(data: RunData) -> dict[int, str]:
    """Worst status per phase over its artifacts (fail > error > skipped > pass)."""
    rank = {"pass": 0, "skipped": 1, "error": 2, "fail": 3}
    out: dict[int, str] = {}
    for a in data.phases:
        s = a.status
        if a.phase not in out or rank.get(s, 2) > rank.get(out[a.phase], 2):
            out[a.phase] = s
    return out


def target_name(data: RunData) -> str:
    """The target in a sentence: the scope's name (a stand-in is never called by the version it imitates)."""
    s = data.summary
    if s and s.scope:
        return s.scope.target_name
    if s and s.target and s.target.version:
        return s.target.version
    for a in data.phases:
        version = getattr(a.report, "version", None)
        if version:
            return version
    if s and s.ai_memory_git_ref:
        return f"ai-memory {s.ai_memory_git_ref}"
    return "the target"


def sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def scope_headline(data: RunData) -> str:
    return data.summary.scope_headline() if data.summary else "no campaign summary: not a release verdict"


def decision(data: RunData) -> str:
    """What the shown verdict means for the release; from the scope, so never more than the campaign tested."""
    s = data.summary
    if s and s.scope:
        return s.scope.decision(data.verdict)
    return unscoped_decision(data.verdict)


def chaos_plain(data: RunData) -> str:
    """Phase 4 in plain words, naming only the fault classes that were asked for and the shape that ran."""
    shape = data.summary.scope.shape if data.summary and data.summary.scope else None
    classes = list(shape.fault_classes) if shape and shape.fault_classes else None
    if classes is None:
        for a in data.phases:
            if isinstance(a.report, Phase4Report) and a.report.faults:
                classes = list(a.report.faults)
    if not classes:
        return PLAIN[4]
    text = "surviving " + _and([FAULT_PLAIN.get(c, c) for c in classes]) + " while writing"
    if shape and shape.cycles is not None:
        text += f" ({shape.cycles} cycles x {shape.writes} writes per class)"
    return text


def plain(data: RunData, phase: int) -> str:
    return chaos_plain(data) if phase == 4 else PLAIN[phase]


def _facts(data: RunData) -> list[str]:
    """Headline figures the evidence supports (writes acknowledged, lost, migrated, chaos cycles), each from
    the full data: totals, never the length of a capped sample."""
    out: list[str] = []
    for a in data.phases:
        r = a.report
        if isinstance(r, Phase2Report) and r.ok is not None and r.total_writes is not None:
            missing = sum(len(v) for v in r.missing_writes.values())
            out.append(f"{r.ok} of {r.total_writes} concurrent writes were acknowledged"
                       + (f", {missing} acknowledged writes were missing somewhere at the deadline" if missing else ""))
        elif isinstance(r, Phase3Report) and r.src_count is not None:
            text = f"{r.src_count} memories went SQLite → Postgres → SQLite and {r.dst_count} came back"
            rt = r.content.get("roundtrip")
            if rt is not None:
                text += f", {rt.identical} of {rt.compared} identical to the source"
                if rt.rows_differing:
                    text += f" ({rt.rows_differing} changed"
                    text += f", {rt.mismatched_fields} field mismatches)" if rt.mismatched_fields is not None else ")"
            else:
                text += " (content not compared)"
            out.append(text)
        elif isinstance(r, Phase4Report):
            cycles = sum(f.cycles_run for f in r.faults.values())
            lost = sum(len(f.lost) for f in r.faults.values())
            if cycles:
                out.append(f"{cycles} chaos cycles ran across {len(r.faults)} fault class"
                           f"{'es' if len(r.faults) != 1 else ''} ({', '.join(r.faults)}) with {lost} "
                           "acknowledged writes lost")
            elif r.convergence_by_fault:
                out.append("chaos convergence bounds were recorded for " + _and(sorted(r.convergence_by_fault)))
    return out


def _failures(data: RunData, limit: int = 6) -> list[str]:
    """Where it broke: the campaign's cause first, then failing/erroring checks and unreadable artifacts."""
    out: list[str] = []
    cause = data.summary.cause if data.summary else None
    nothing_ran = bool(cause and data.summary and not data.summary.phases_run)
    if cause:
        out.append(f"campaign: {cause}")
    if nothing_ran:
        out.append("no phase ran, so no phase left evidence")
    for a in data.phases:
        if a.report is None:
            if not (nothing_ran and (a.issue or "").startswith("artifact missing")):
                out.append(f"{a.name}: {a.issue or 'unreadable'}")
            continue
        for c in a.report.checks:
            if c.status in ("fail", "error"):
                out.append(f"{a.name}: {c.reason()}")
    for i in data.issues:
        out.append(f"{i.file}: {i.message}")
    if len(out) > limit:
        return [*out[:limit], f"… and {len(out) - limit} more (see the phases below)"]
    return out


def summaries(data: RunData) -> list[Summary]:
    statuses = phase_statuses(data)
    requested = list(data.summary.phases_requested) if data.summary else sorted(statuses)
    counts = check_counts(data)
    target = target_name(data)
    scope = data.summary.scope if data.summary else None
    tested = _and([BRIEF[p] for p in requested if p in BRIEF]) or "nothing (no phase was requested)"
    failed_phases = [p for p, s in sorted(statuses.items()) if s == "fail"]
    error_phases = [p for p, s in sorted(statuses.items()) if s not in ("pass", "fail")]
    missing = [p for p in requested if p not in statuses]
    facts = _facts(data)
    v = data.verdict
    cause = data.summary.cause if data.summary else None
    headline = scope_headline(data)
    stand_in = scope is not None and scope.target_kind in ("refpeer", "refpeer_defects")

    # End user
    who = target[0].upper() + target[1:]
    if stand_in:
        who += " (a stand-in for ai-memory, not a release of it)"
    if v == "pass":
        user = [f"{who} was tested on a three-node cluster for {tested}. Every check passed: "
                + _and([plain(data, p) for p in requested if p in PLAIN]) + " all behaved as promised."]
        if facts:
            user.append("In numbers: " + "; ".join(facts) + ".")
    elif v == "fail":
        user = [f"{who} was tested on a three-node cluster for {tested}. It broke a promise in "
                + _and([plain(data, p) for p in failed_phases]) + "."]
        if not stand_in:
            user.append("Until a fixed version passes, memories written under these conditions may not be "
                        "stored, replicated or migrated as expected.")
    else:
        user = [f"{who} was meant to be tested for {tested}, but the gate could not finish its checks, "
                "so this run says nothing either way about it. Nothing is known to be broken, and "
                "nothing is known to work."]
        if cause:
            user.insert(0, f"The gate stopped: {cause}.")
    user.append(f"This run is {headline}.")
    if data.upstream and data.summary and data.summary.upstream:
        up = data.summary.upstream.overall_pass
        user.append(f"This run was imported from the previous gate, which recorded overall_pass = "
                    f"{'true' if up else 'false' if up is False else 'nothing'}; our re-audit says {v}.")

    # Decision maker
    boss = [f"Verdict {v.upper()} (exit code {data.exit_code if data.exit_code is not None else 'unknown'}), "
            f"{headline}. {decision(data)}"]
    if cause:
        boss.append(f"Cause: {cause}.")
    n_phases = len(requested)
    n_pass = sum(1 for p in requested if statuses.get(p) == "pass")
    boss.append(f"{n_pass} of {n_phases} requested phases passed; checks: {counts.get('pass', 0)} passed, "
                f"{counts.get('fail', 0)} failed, {counts.get('error', 0)} could not be established, "
                f"{counts.get('skipped', 0)} skipped.")
    if scope is not None:
        boss.append(f"Tested: {scope.target}; {scope.shape.describe()}.")
    if failed_phases:
        boss.append("Broken: " + _and([f"phase {p} ({SHORT[p]})" for p in failed_phases]) + ".")
    if error_phases or missing:
        boss.append("Without evidence: " + _and([f"phase {p} ({SHORT.get(p, '?')})" for p in
                                                 sorted(set(error_phases + missing))]) + ".")
    if data.summary and data.summary.duration_s is not None:
        boss.append(f"The campaign took {data.summary.duration_s / 60:.1f} minutes.")

    # Engineer
    eng: list[str] = [f"Scope: {headline}."]
    if cause:
        eng.append(f"Cause: {cause}.")
    ops = sum(len(v) for v in data.operations.values())
    writes = sum(1 for evs in data.operations.values() for e in evs if e.type != "invoke" and e.op == "write")
    eng.append(f"Evidence: {len(data.phases)} phase artifacts, {ops} history events ({writes} completed client "
               f"writes) in {len(data.operations)} history files, {len(data.cycles)} chaos cycle records.")
    if scope is not None:
        eng.append(f"Settings: {scope.shape.describe()}"
                   + (f" (replay with --seed {scope.shape.seed})" if scope.shape.seed is not None else "") + ".")
    if facts:
        eng.append("; ".join(facts) + ".")
    fails = _failures(data)
    if fails:
        eng.append("Where it went wrong:")
    elif v == "pass":
        eng.append("No check failed or errored; every requested artifact loaded and validated.")
    return [
        Summary("user", "For people who use ai-memory", user),
        Summary("decision", "For the release decision", boss),
        Summary("engineer", "For engineers", eng, fails),
    ]
