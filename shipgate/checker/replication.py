"""The replication checker: judges phase 2's mixed workload per operation kind, on every node.

Pure, like the chaos checker: it sees the workload's history (invoke, then ok / fail / info, each with a
`kind`) and what each node holds (rows of the workload's namespaces, links of some ids), and decides. Rules:

* Every invoke carries the operation's intended effect (`value`): rows that must exist with given fields,
  ids that must be absent, links that must exist, titles that must be unique. An **acknowledged** operation
  (`ok`) must show its effect on every node, compared by identity *and* content: the updated content and
  tags, the new title, the new tier, the deleted row absent, the link present, every bulk row under the id
  the node that took the bulk gave it. A node lacking it lists the operation as **unreplicated**.
* Effects fold in history order: a later acknowledged operation on the same memory supersedes an earlier one,
  so a store followed by an update expects the updated row (and a missing update is blamed on the update).
* A definitely failed operation (`fail`) has no effect and is not judged for replication; it fails the kind's
  acknowledgement. An **indeterminate** one (`info`) may or may not have landed: the memory it touched is
  not judged at all (counted, never blamed).
* Time to converge, per kind and node: from the end of the kind's stage to the first poll in which the node
  showed every acknowledged effect of the kind, and still did at the last poll.

The poll itself (reading the nodes until every kind converged or the deadline) lives with the phase; this
module only turns (history, node states) into verdicts. Pairing and the meaning of each completion are the one
history judge's (`history.tally`), shared with the burst and phase 4.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shipgate.checker.history import Outcome, tally
from shipgate.evidence.models.replication import KindVerdict, UnreplicatedOp

# The kinds phase 2 plans, in report order. `update` changes content and tags; `update_title` renames as
# well (real 0.6.3 never replicates a rename: refpeer defect update_title_not_replicated); `consolidate` merges
# rows into a new one and deletes them, both of which must reach every node; `bulk_catchup`
# is a bulk made while a peer was down, which only catch-up can bring to it.
KINDS: tuple[str, ...] = ("store", "update", "update_title", "promote", "delete", "link", "consolidate",
                          "duplicate", "bulk", "bulk_catchup")
# The CLI subcommand whose presence (capability probe) stands for the HTTP path of a kind: a release without it
# does not have the operation, and the kind is skipped with that reason.
KIND_NEEDS: dict[str, str] = {"update": "update", "update_title": "update", "promote": "promote",
                              "delete": "delete", "link": "link", "consolidate": "consolidate"}
MAX_LISTED = 50
_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)(?:\.(\d+))?")


def duplicate_rule(version: str | None) -> str | None:
    """The documented answer to a second POST of an existing (title, namespace): `upsert` (201 with the existing
    id, content replaced) up to 0.6.3, `conflict` (409 with `existing_id`) from v0.6.3.1 (crate 0.6.4, CHANGELOG
    "G6 -- UNIQUE(title, namespace) silent merge"); None when the version is unknown."""
    m = _VERSION.search(version or "")
    if not m:
        return None
    parts = tuple(int(p or 0) for p in m.groups())
    return "upsert" if parts < (0, 6, 3, 1) else "conflict"


@dataclass
class Op:
    """One workload operation, as the one history judge (`shipgate.checker.history`) paired and judged it."""

    kind: str
    process: str
    node: str | None
    invoke: Mapping[str, Any]
    done: Mapping[str, Any] | None = None
    index: int | None = None
    outcome: Outcome = "info"

    @property
    def type(self) -> Outcome:
        """ok / fail / info by `history.outcome` (a store's 201 without an id is info here as everywhere)."""
        return self.outcome

    @property
    def effect(self) -> Mapping[str, Any]:
        v = self.invoke.get("value")
        return v if isinstance(v, Mapping) else {}


def pair(events: Sequence[Mapping[str, Any]]) -> list[Op]:
    """The workload's operations (events with a `kind`), paired and judged by `history.tally`, in history
    order; an invoke with no completion (the agent died) is indeterminate."""
    position = {id(e): i for i, e in enumerate(events)}
    ops: list[Op] = []
    for kt in tally([e for e in events if e.get("kind")]):
        for o in kt.ops:
            if o.invoke is None:  # a completion with no invoke: nothing was asked, nothing to judge
                continue
            index = o.completion.get("index", position.get(id(o.completion))) if o.completion else None
            ops.append(Op(kind=str(o.invoke["kind"]), process=o.process, node=o.invoke.get("node"),
                          invoke=o.invoke, done=o.completion, index=None if index is None else int(index),
                          outcome=o.outcome))
    ops.sort(key=lambda o: position.get(id(o.invoke), 0))
    return ops


@dataclass
class Expectation:
    """What every node must show once an acknowledged operation replicated."""

    kind: str
    key: str
    what: str  # row | absent | link | unique
    spec: Mapping[str, Any]
    sent_to: str | None = None
    index: int | None = None


def _row_key(row: Mapping[str, Any]) -> str:
    return str(row["id"]) if row.get("id") else f"{row.get('namespace')}/{row.get('title')}"


def expectations(ops: Iterable[Op]) -> tuple[list[Expectation], list[str]]:
    """The final expected state, folded in history order; and the keys left unjudged (indeterminate ops)."""
    final: dict[tuple[str, str], Expectation] = {}
    uncertain: set[str] = set()
    for op in sorted(ops, key=lambda o: (o.index is None, o.index or 0)):
        eff = op.effect
        new: list[Expectation] = []
        returned = op.done.get("id") if op.done else None
        for row in eff.get("rows") or []:
            row = dict(row)
            if not row.get("id") and returned and len(eff.get("rows") or []) == 1:
                row["id"] = returned
            new.append(Expectation(op.kind, _row_key(row), "row", row))
        for id_ in eff.get("absent") or []:
            new.append(Expectation(op.kind, str(id_), "absent", {"id": id_}))
        for ln in eff.get("links") or []:
            new.append(Expectation(op.kind, f"{ln['source_id']}>{ln['target_id']}:{ln.get('relation')}", "link", ln))
        for ns, title in eff.get("unique") or []:
            new.append(Expectation(op.kind, f"{ns}/{title}", "unique", {"namespace": ns, "title": title}))
        if op.type == "info":
            uncertain.update(x.key for x in new)
            continue
        if op.type != "ok":
            continue
        for x in new:
            x.sent_to, x.index = op.node, op.index
            slot = "link" if x.what == "link" else "unique" if x.what == "unique" else "row"
            final[(slot, x.key)] = x
    kept = [x for x in final.values() if x.key not in uncertain]
    return kept, sorted(uncertain)


@dataclass
class NodeView:
    """One node's state, indexed for the checks."""

    by_id: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    by_title: dict[tuple[str, str], list[Mapping[str, Any]]] = field(default_factory=dict)
    links: dict[str, list[Mapping[str, Any]]] = field(default_factory=dict)

    @classmethod
    def of(cls, state: Mapping[str, Any]) -> NodeView:
        v = cls(links={k: list(x) for k, x in (state.get("links") or {}).items()})
        for r in state.get("rows") or []:
            v.by_id[str(r.get("id"))] = r
            v.by_title.setdefault((str(r.get("namespace")), str(r.get("title"))), []).append(r)
        return v


def _short(v: Any, n: int = 60) -> str:
    s = repr(v)
    return s if len(s) <= n else s[: n - 3] + "..."


def _differs(spec: Mapping[str, Any], row: Mapping[str, Any]) -> str | None:
    for f in ("title", "namespace", "content", "tier", "priority"):
        if f in spec and row.get(f) != spec[f]:
            return f"{f} {_short(row.get(f))} (expected {_short(spec[f])})"
    if "tags" in spec and sorted(row.get("tags") or []) != sorted(spec["tags"] or []):
        return f"tags {_short(row.get('tags'))} (expected {_short(spec['tags'])})"
    return None


def _why(x: Expectation, node: str, view: NodeView, views: Mapping[str, NodeView | None]) -> str | None:
    """Why `node` does not show expectation `x` (None: it does)."""
    s = x.spec
    if x.what == "row":
        want_id = s.get("id")
        if not want_id:  # a bulk row: its id is the one the node that took the bulk gave it
            origin = views.get(x.sent_to or "")
            found = origin.by_title.get((str(s.get("namespace")), str(s.get("title")))) if origin else None
            if not found:
                here = view.by_title.get((str(s.get("namespace")), str(s.get("title"))))
                if node == x.sent_to or not here:
                    return "absent" if node == x.sent_to or origin else "absent (origin unreadable)"
                return "present here, absent on the node that took it"
            want_id = found[0].get("id")
        row = view.by_id.get(str(want_id))
        if row is None:
            other = view.by_title.get((str(s.get("namespace")), str(s.get("title"))))
            return f"absent (its title is held by id {other[0].get('id')})" if other else "absent"
        return _differs(s, row)
    if x.what == "absent":
        row = view.by_id.get(str(s["id"]))
        return f"still present (title {_short(row.get('title'))})" if row is not None else None
    if x.what == "link":
        have = view.links.get(str(s["source_id"]))
        if have is None:
            return "links of the source not read"
        for ln in have:
            if ln.get("source_id") == s["source_id"] and ln.get("target_id") == s["target_id"] and (
                    s.get("relation") is None or ln.get("relation") == s.get("relation")):
                return None
        return f"link absent ({len(have)} other link(s) of the source)"
    if x.what == "unique":
        n = len(view.by_title.get((str(s["namespace"]), str(s["title"])), []))
        return None if n == 1 else f"{n} rows titled {_short(s['title'])}"
    return f"unknown expectation {x.what}"


def unmet(exps: Sequence[Expectation], states: Mapping[str, Mapping[str, Any]]
          ) -> dict[str, list[UnreplicatedOp] | None]:
    """node -> the expectations it does not show (None: the node could not be read)."""
    views: dict[str, NodeView | None] = {
        n: NodeView.of(s) if s and s.get("ok") else None for n, s in states.items()}
    out: dict[str, list[UnreplicatedOp] | None] = {}
    for node, view in views.items():
        if view is None:
            out[node] = None
            continue
        misses: list[UnreplicatedOp] = []
        for x in exps:
            why = _why(x, node, view, views)
            if why is not None:
                misses.append(UnreplicatedOp(index=x.index, kind=x.kind, sent_to=x.sent_to, key=x.key, why=why))
        out[node] = misses
    return out


def kinds_satisfied(misses: Mapping[str, list[UnreplicatedOp] | None], kinds: Iterable[str]
                    ) -> dict[str, dict[str, bool]]:
    """kind -> node -> whether the node shows every expectation of the kind (an unreadable node: False)."""
    return {k: {n: m is not None and not any(u.kind == k for u in m) for n, m in misses.items()} for k in kinds}


def track(first: dict[str, dict[str, float | None]], satisfied: Mapping[str, Mapping[str, bool]], t: float) -> None:
    """Update time-to-converge in place: set at the first satisfied poll, reset when a later poll regresses."""
    for kind, nodes in satisfied.items():
        slot = first.setdefault(kind, {})
        for node, ok in nodes.items():
            if not ok:
                slot[node] = None
            elif slot.get(node) is None:
                slot[node] = round(t, 3)


def verdicts(ops: Sequence[Op], exps: Sequence[Expectation], misses: Mapping[str, list[UnreplicatedOp] | None],
             ttc: Mapping[str, Mapping[str, float | None]], *, skipped: Mapping[str, str] | None = None,
             read_errors: Mapping[str, str] | None = None, kinds: Sequence[str] = KINDS) -> dict[str, KindVerdict]:
    """One verdict per kind that was planned or skipped: pass (every op acknowledged and shown on every node),
    fail (an op not acknowledged, or unreplicated somewhere), error (nothing acknowledged to judge, or a node
    unreadable), skipped (the release does not have the operation)."""
    out: dict[str, KindVerdict] = {}
    skipped = skipped or {}
    for kind in kinds:
        if kind in skipped:
            out[kind] = KindVerdict(kind=kind, status="skipped", reason=skipped[kind])
            continue
        mine = [o for o in ops if o.kind == kind]
        if not mine:
            continue
        types = [o.type for o in mine]
        effects = [x for x in exps if x.kind == kind]
        unrep: dict[str, list[UnreplicatedOp]] = {}
        counts: dict[str, int] = {}
        unreadable: list[str] = []
        for node, m in misses.items():
            if m is None:
                unreadable.append(node)
                continue
            lst = [u for u in m if u.kind == kind]
            if lst:
                unrep[node], counts[node] = lst[:MAX_LISTED], len(lst)
        n_ok, n_fail = types.count("ok"), types.count("fail")
        verdict = KindVerdict(kind=kind, status="pass", ops=len(mine), ok=n_ok, fail=n_fail,
                              indeterminate=types.count("info"), effects=len(effects),
                              nodes=sorted({o.node for o in mine if o.node}), unreplicated=unrep,
                              unreplicated_count=counts,
                              time_to_converge_s={n: (ttc.get(kind) or {}).get(n) for n in misses})
        if n_fail or unrep:
            verdict.status = "fail"
            first = next(iter(unrep.items()), None)
            verdict.reason = (f"{first[0]}: {first[1][0].key} {first[1][0].why}" if first
                              else f"{n_fail} of {len(mine)} not acknowledged")
        elif unreadable:
            verdict.status = "error"
            verdict.reason = "; ".join(f"{n}: {(read_errors or {}).get(n, 'unreadable')}" for n in unreadable)
        elif not n_ok:
            verdict.status = "error"
            verdict.reason = f"none of {len(mine)} acknowledged (indeterminate): nothing to judge"
        out[kind] = verdict
    return out
