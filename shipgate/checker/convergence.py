"""The one convergence poll: read every node until a condition holds or a deadline passes.

The checker never talks to a host: the caller passes `read`, a callable returning node -> the host agent's
read (`{"ok", "rows": [...], "anomalies", "error"}`), made wherever the reads are made (the chaos host).

API:

* `poll(read, nodes, node_done, *, deadline_s, start, interval_s, agree=False) -> Convergence`: reads
  until one read finds every node satisfying `node_done(read_of_node)` (and, with `agree`, every node
  holding the same titles), or `deadline_s` after the poll began. Never a fixed sleep: the wait between reads is the poll
  interval, cut short at the deadline, and there is always a read at or after the deadline.
  `Convergence.reads` are the last reads (judge them, e.g. with `history.judge_rows`); `.seconds` is the
  time from `start` (a `time.monotonic()` instant, e.g. the burst's end) to the read where the whole
  condition held (None: not before the deadline); `.node_seconds` the same per node (first read where
  that node was done); `.elapsed_s` the poll's own duration; `.polls` the number of reads.
* Predicates: `holds_ids(ids)` (every id present on the node), `holds_titles(titles)`, and
  `replicas_agree(reads, nodes)` (all readable and equal title sets). Issue 17's kinds pass their own
  `node_done` (an updated content, a deleted id absent, a tier, a link).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shipgate.checker.history import rows_of
from shipgate.clock import Pending, PollTimeout, poll_until

Reads = Mapping[str, Mapping[str, Any]]
NodeDone = Callable[[Mapping[str, Any]], bool]


def holds_ids(ids: Collection[str]) -> NodeDone:
    """A node is done when it can be read and holds every id."""
    want = {str(i) for i in ids}

    def done(read: Mapping[str, Any]) -> bool:
        rows = rows_of(read)
        return rows is not None and want <= {str(r.get("id")) for r in rows}

    return done


def holds_titles(titles: Collection[str]) -> NodeDone:
    want = {str(t) for t in titles}

    def done(read: Mapping[str, Any]) -> bool:
        rows = rows_of(read)
        return rows is not None and want <= {str(r.get("title")) for r in rows}

    return done


def replicas_agree(reads: Reads, nodes: Sequence[str]) -> bool:
    """Every node readable, and all hold the same titles (an indeterminate row on some nodes only is not)."""
    sets = []
    for node in nodes:
        rows = rows_of(reads.get(node))
        if rows is None:
            return False
        sets.append(frozenset(str(r.get("title")) for r in rows))
    return len(set(sets)) <= 1


def converged(reads: Reads, nodes: Sequence[str], ids: Collection[str]) -> bool:
    """Phase 4's condition: every acknowledged id on every node, and the replicas agree."""
    done = holds_ids(ids)
    return all(done(reads.get(n) or {}) for n in nodes) and replicas_agree(reads, nodes)


@dataclass
class Convergence:
    reads: dict[str, Mapping[str, Any]]
    seconds: float | None
    node_seconds: dict[str, float | None] = field(default_factory=dict)
    elapsed_s: float = 0.0
    polls: int = 0


def poll(
    read: Callable[[], Reads],
    nodes: Sequence[str],
    node_done: NodeDone | None,
    *,
    done_by_node: Callable[[Reads], Mapping[str, bool]] | None = None,
    deadline_s: float,
    start: float,
    interval_s: float,
    agree: bool = False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Convergence:
    """Read until the condition holds or the deadline passes (see the module docstring). `done_by_node`, instead
    of `node_done`, judges all reads at once, for conditions one node's read cannot decide alone (a bulk row's
    identity is the id the receiving node gave it)."""
    if (node_done is None) == (done_by_node is None):
        raise TypeError("poll needs exactly one of node_done and done_by_node")
    began = clock()
    node_seconds: dict[str, float | None] = dict.fromkeys(nodes)
    last: dict[str, Any] = {"reads": {}, "now": began, "polls": 0}

    def attempt() -> Convergence | Pending:
        reads = dict(read())
        now = clock()
        last.update(reads=reads, now=now, polls=last["polls"] + 1)
        if done_by_node is not None:
            by_node = done_by_node(reads)
            done = {node: bool(by_node.get(node)) for node in nodes}
        else:
            done = {node: node_done(reads.get(node) or {}) for node in nodes}  # type: ignore[misc]
        for node in nodes:
            if node_seconds[node] is None and done[node]:
                node_seconds[node] = round(now - start, 3)
        if all(done.values()) and (not agree or replicas_agree(reads, nodes)):
            return Convergence(reads, round(now - start, 3), node_seconds, round(now - began, 3), last["polls"])
        return Pending(done)

    try:
        return poll_until(attempt, deadline_s=deadline_s, interval_s=interval_s, what="convergence",
                          clock=_Clock(clock, sleep))
    except PollTimeout:
        return Convergence(last["reads"], None, node_seconds, round(last["now"] - began, 3), last["polls"])


@dataclass(frozen=True)
class _Clock:
    """The callables this module's callers (and tests) hand in, as the Clock `poll_until` waits on."""

    now: Callable[[], float]
    sleep: Callable[[float], None]
