"""The one judge of operation histories, used by phase 2 (burst, mixed workload) and phase 4 (chaos cycles).

A history is a list of events shaped like `OperationEvent` (Jepsen style): each operation is an `invoke`
followed by one completion, `ok`, `fail` (definitely did not happen) or `info` (indeterminate). The
operation's kind is its `op` field (`write` for a create; issue 17 adds e.g. `update`, `delete`,
`promote`, `link`, `bulk`), and the row an operation is about is named by `title` and, once known, `id`.
Events also say which clock stamped them (`clock`); the judge orders nothing by time, so it ignores it.

**A 201 without an id is indeterminate (`info`), in every phase: the server claims a commit but gives no
handle to verify it by, so it is no evidence of durability (never counted as acknowledged, never required
on every node) and no definite failure (its row landing is never blamed); a phase that expects every write
acknowledged still fails on it, because it is not an acknowledgement.** `outcome()` is that rule and the
only place outcomes are decided: an `ok` of a kind in `CREATES` (the memory create, `write`; add a kind
only if its answer must carry the new row's id) needs an id; other kinds are taken as the client typed
them (a link or a bulk import may answer 201 with no id of its own).

API (pure functions and dataclasses; nothing here talks to a host):

* `tally(events) -> Tally`: pairs invokes and completions per `process` (one outstanding operation per
  process, as Jepsen; the kind is the invoke's `op`; an invoke never completed is indeterminate and
  listed in `incomplete`) and groups the operations by kind. `Tally[kind]` (or `Tally.get(kind)`, an
  empty `KindTally` when absent) gives:
  `ops` (`Op`: kind, process, invoke, completion, outcome, reason; `.title`, `.id`, `.status`, `.node`,
  `.latency_ms`), `ok`/`fail`/`quorum_not_met`/`indeterminate`/`completed`/`incomplete` (counts over
  completed operations; `indeterminate` excludes 503s, which are `quorum_not_met`), `acked`
  (id -> title of every ok with an id), `attempted`/`failed`/`unsure` (title sets: every title invoked,
  titles whose only outcome was `fail`, titles with an `info` or no completion), `latencies_ms` (of the
  oks) and `responses` (a Counter of the non-ok answers, for a one-line breakdown).
* `judge_rows(kind_tally, reads, nodes) -> RowJudgement`: the rules against the rows every node holds
  afterwards. `reads` maps node -> the host agent's read (`{"ok", "rows": [{id, title, ...}],
  "anomalies", "error"}`). Each rule is a function of its own, usable alone:
  `lost_on` (an acknowledged id absent from a node whose rows do not carry its title under another id),
  `unexpected_on` (a title no operation attempted, a title whose write definitely failed, or an acknowledged
  title under another id), `duplicates_on` (a title or an id twice on one node) and `diverged` (a row on
  some readable nodes only, lost rows aside). Indeterminate rows that landed are counted (`landed`), never
  blamed. `RowJudgement.lost` / `.unexpected` / `.duplicates` flatten the per-node findings into lines.

For a kind whose completion does not return the row (update, delete, link), put the target's `id` on the
invoke or the completion and the expected content in `value`; `judge_rows` is written for creates (rows
that must exist), so judge the content of other kinds with your own predicate over the same reads, and
poll them with `shipgate.checker.convergence.poll`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Outcome = Literal["ok", "fail", "info"]
COMPLETIONS = ("ok", "fail", "info")
CREATES = frozenset({"write"})  # kinds whose acknowledgement is the new row's id


def outcome(completion: Mapping[str, Any], kind: str | None = None) -> tuple[Outcome, str | None]:
    """The one rule: what a completion means, and why when it is not what the client typed."""
    kind = kind or str(completion.get("op", "write"))
    typed = completion.get("type")
    if typed == "fail":
        return "fail", None
    if typed == "ok":
        if kind in CREATES and not completion.get("id"):
            return "info", "201 without an id: the server gave no handle to verify the write by"
        return "ok", None
    if typed == "info":
        return "info", None
    return "info", f"unknown completion type {typed!r}"


@dataclass(frozen=True)
class Op:
    """One operation: its invoke and its completion (None: never completed), judged by `outcome`."""

    kind: str
    process: str
    invoke: Mapping[str, Any] | None
    completion: Mapping[str, Any] | None
    outcome: Outcome
    reason: str | None = None

    def _get(self, key: str) -> Any:
        for e in (self.completion, self.invoke):
            if e is not None and e.get(key) is not None:
                return e[key]
        return None

    @property
    def title(self) -> str | None:
        t = self._get("title")
        return None if t is None else str(t)

    @property
    def id(self) -> str | None:
        i = self._get("id")
        return None if i is None else str(i)

    @property
    def status(self) -> int | None:
        return self.completion.get("status") if self.completion else None

    @property
    def node(self) -> str | None:
        return self._get("node")

    @property
    def latency_ms(self) -> float | None:
        v = self.completion.get("latency_ms") if self.completion else None
        return float(v) if isinstance(v, (int, float)) else None


@dataclass
class KindTally:
    """Every operation of one kind, and the sets the row rules need."""

    kind: str
    ops: list[Op] = field(default_factory=list)

    def _completed(self, which: Outcome) -> list[Op]:
        return [o for o in self.ops if o.completion is not None and o.outcome == which]

    @property
    def completed(self) -> int:
        return sum(1 for o in self.ops if o.completion is not None)

    @property
    def incomplete(self) -> list[Op]:
        return [o for o in self.ops if o.completion is None]

    @property
    def ok(self) -> int:
        return len(self._completed("ok"))

    @property
    def fail(self) -> int:
        return len(self._completed("fail"))

    @property
    def quorum_not_met(self) -> int:
        return sum(1 for o in self._completed("info") if o.status == 503)

    @property
    def indeterminate(self) -> int:
        return sum(1 for o in self._completed("info") if o.status != 503)

    @property
    def acked(self) -> dict[str, str]:
        return {o.id: o.title or "" for o in self._completed("ok") if o.id}

    @property
    def acked_titles(self) -> set[str]:
        return {o.title for o in self._completed("ok") if o.title is not None}

    @property
    def attempted(self) -> set[str]:
        return {o.title for o in self.ops if o.title is not None}

    @property
    def unsure(self) -> set[str]:
        return {o.title for o in self.ops if o.title is not None and (o.completion is None or o.outcome == "info")}

    @property
    def failed(self) -> set[str]:
        """Titles whose every operation definitely failed (a retry that succeeded or is unsure is not)."""
        return {o.title for o in self._completed("fail") if o.title is not None} - self.acked_titles - self.unsure

    @property
    def latencies_ms(self) -> list[float]:
        return [v for o in self._completed("ok") if (v := o.latency_ms) is not None]

    @property
    def responses(self) -> Counter[str]:
        """Non-ok answers by status (or error), with the judge's reason when it overruled the client."""
        out: Counter[str] = Counter()
        for o in self.ops:
            if o.outcome == "ok":
                continue
            c = o.completion or {}
            key = str(c.get("status") or c.get("error") or "no completion")
            why = o.reason or (c.get("error") if c.get("status") is not None else None)
            out[f"{key} ({str(why)[:80]})" if why else key] += 1
        return out


@dataclass
class Tally:
    """A history's operations grouped by kind (`op`)."""

    kinds: dict[str, KindTally] = field(default_factory=dict)

    def get(self, kind: str) -> KindTally:
        return self.kinds.get(kind) or KindTally(kind)

    def __getitem__(self, kind: str) -> KindTally:
        return self.get(kind)

    def __iter__(self) -> Iterator[KindTally]:
        return iter(self.kinds.values())


def tally(events: Iterable[Mapping[str, Any]]) -> Tally:
    """Pair invokes with completions per process, judge each completion, group by kind."""
    out = Tally()
    open_: dict[str, Mapping[str, Any]] = {}

    def add(kind: str, process: str, inv: Mapping[str, Any] | None, done: Mapping[str, Any] | None) -> None:
        verdict, why = outcome(done, kind) if done is not None else ("info", "invoked, never completed")
        out.kinds.setdefault(kind, KindTally(kind)).ops.append(Op(kind, process, inv, done, verdict, why))

    for e in events:
        process = str(e.get("process", ""))
        if e.get("type") == "invoke":
            if process in open_:
                stale = open_.pop(process)
                add(str(stale.get("op", "write")), process, stale, None)
            open_[process] = e
        elif e.get("type") in COMPLETIONS:
            inv = open_.pop(process, None)
            add(str((inv or e).get("op", "write")), process, inv, e)
    for process, inv in open_.items():
        add(str(inv.get("op", "write")), process, inv, None)
    return out


# --- the rules against the rows every node holds ---------------------------------------------------------


def rows_of(read: Mapping[str, Any] | None) -> list[Mapping[str, Any]] | None:
    """A node's rows, or None when it could not be read."""
    if not read or not read.get("ok"):
        return None
    return [r for r in (read.get("rows") or []) if isinstance(r, Mapping)]


def lost_on(t: KindTally, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Titles of acknowledged writes whose id is absent and whose title is not there under another id."""
    ids = {str(r.get("id")) for r in rows}
    titles = {str(r.get("title")) for r in rows}
    return [title for wid, title in sorted(t.acked.items(), key=lambda kv: kv[1])
            if wid not in ids and title not in titles]


def unexpected_on(t: KindTally, rows: Sequence[Mapping[str, Any]], node: str) -> list[str]:
    """Rows no operation can explain: an acknowledged title under another id, a title never attempted, or
    the row of a write that definitely failed."""
    ids = {str(r.get("id")) for r in rows}
    id_of_title = {str(r.get("title")): str(r.get("id")) for r in rows}
    out = [f"{title} on {node} has id {id_of_title[title]}, acknowledged as {wid}"
           for wid, title in sorted(t.acked.items(), key=lambda kv: kv[1])
           if wid not in ids and title in id_of_title]
    attempted, failed = t.attempted, t.failed
    for title in sorted(id_of_title):
        if title not in attempted:
            out.append(f"{title} on {node}: no write produced it")
        elif title in failed:
            out.append(f"{title} on {node}: its write definitely failed")
    return out


def duplicates_on(rows: Sequence[Mapping[str, Any]], node: str) -> list[str]:
    """A title or an id held twice by one node."""
    titles = Counter(str(r.get("title")) for r in rows)
    ids = Counter(str(r.get("id")) for r in rows)
    return ([f"{t} x{n} on {node}" for t, n in sorted(titles.items()) if n > 1]
            + [f"id {i} x{n} on {node}" for i, n in sorted(ids.items()) if n > 1])


def diverged(present: Mapping[str, set[str]], nodes: Sequence[str], lost: Iterable[str] = ()) -> list[str]:
    """Titles on some readable nodes only (lost titles are reported as lost, not again here)."""
    readable = [n for n in nodes if n in present]
    if not readable:
        return []
    everywhere = set.intersection(*(present[n] for n in readable))
    anywhere = set.union(*(present[n] for n in readable))
    skip = set(lost)
    return [f"{t} only on {', '.join(n for n in readable if t in present[n])}"
            for t in sorted(anywhere - everywhere) if t not in skip]


@dataclass
class RowJudgement:
    """What the rules found on the nodes, per node, plus the cross-node findings."""

    nodes: list[str]
    counts: dict[str, int | None] = field(default_factory=dict)
    read_errors: dict[str, str] = field(default_factory=dict)
    anomalies: dict[str, list[str]] = field(default_factory=dict)
    lost_by_node: dict[str, list[str]] = field(default_factory=dict)
    unexpected_by_node: dict[str, list[str]] = field(default_factory=dict)
    duplicates_by_node: dict[str, list[str]] = field(default_factory=dict)
    diverged: list[str] = field(default_factory=list)
    landed: int = 0

    @property
    def lost(self) -> list[str]:
        """One line per lost title: 'title missing on node-b, node-c'."""
        where: dict[str, list[str]] = {}
        for node in self.nodes:
            for title in self.lost_by_node.get(node, []):
                where.setdefault(title, []).append(node)
        return [f"{t} missing on {', '.join(ns)}" for t, ns in sorted(where.items())]

    @property
    def unexpected(self) -> list[str]:
        return [x for n in self.nodes for x in self.unexpected_by_node.get(n, [])]

    @property
    def duplicates(self) -> list[str]:
        return [x for n in self.nodes for x in self.duplicates_by_node.get(n, [])]

    @property
    def converged(self) -> bool:
        return not self.lost_by_node and not self.diverged and not self.read_errors


def judge_rows(t: KindTally, reads: Mapping[str, Mapping[str, Any]], nodes: Sequence[str]) -> RowJudgement:
    """Every row rule on every node; an unreadable node is a read error, judged by nothing else."""
    j = RowJudgement(nodes=list(nodes))
    present: dict[str, set[str]] = {}
    for node in nodes:
        rows = rows_of(reads.get(node))
        if rows is None:
            j.counts[node] = None
            j.read_errors[node] = str((reads.get(node) or {}).get("error") or "no answer")
            continue
        j.counts[node] = len(rows)
        if (reads.get(node) or {}).get("anomalies"):
            j.anomalies[node] = [str(a) for a in reads[node]["anomalies"]]
        present[node] = {str(r.get("title")) for r in rows}
        for name, found in (("lost", lost_on(t, rows)), ("unexpected", unexpected_on(t, rows, node)),
                            ("duplicates", duplicates_on(rows, node))):
            if found:
                getattr(j, f"{name}_by_node")[node] = found
    lost_titles = {title for titles in j.lost_by_node.values() for title in titles}
    j.diverged = diverged(present, nodes, lost_titles)
    anywhere = set().union(*present.values()) if present else set()
    j.landed = len(t.unsure & anywhere)
    return j
