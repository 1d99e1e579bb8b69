"""The one convergence poll, driven by a scripted sequence of reads and a virtual clock: when it stops,
what it reports, and the predicates phase 2 and phase 4 use."""

from __future__ import annotations

from typing import Any

from shipgate.checker.convergence import converged, holds_ids, holds_titles, poll, replicas_agree

NAMES = ["node-a", "node-b", "node-c"]


def _read(*titles: str, ok: bool = True) -> dict[str, Any]:
    return {"ok": ok, "rows": [{"id": f"id-{t}", "title": t} for t in titles]}


class Script:
    """Reads served in order (the last one repeats) on a virtual clock that the poll's sleeps advance."""

    def __init__(self, *reads: dict[str, Any], read_cost: float = 0.05) -> None:
        self.reads, self.now, self.cost, self.sleeps = list(reads), 100.0, read_cost, []

    def read(self) -> dict[str, Any]:
        self.now += self.cost
        return self.reads.pop(0) if len(self.reads) > 1 else self.reads[0]

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def test_converged_needs_every_acknowledged_id_everywhere_and_equal_replicas() -> None:
    acked = {"id-w1", "id-w2"}
    assert converged(dict.fromkeys(NAMES, _read("w1", "w2")), NAMES, acked)
    assert not converged({"node-a": _read("w1", "w2"), "node-b": _read("w1"), "node-c": _read("w1", "w2")},
                         NAMES, acked)
    # every acknowledged write present, but an indeterminate row only on the leader: not yet converged
    assert not converged({"node-a": _read("w1", "w2", "w3"), "node-b": _read("w1", "w2"),
                          "node-c": _read("w1", "w2")}, NAMES, acked)
    assert not converged({**dict.fromkeys(NAMES, _read("w1", "w2")), "node-c": _read(ok=False)}, NAMES, acked)


def test_predicates() -> None:
    assert holds_ids({"id-a"})(_read("a", "b")) and not holds_ids({"id-c"})(_read("a"))
    assert not holds_ids(set())(_read(ok=False))  # an unreadable node holds nothing, not even the empty set
    assert holds_titles({"a"})(_read("a")) and not holds_titles({"z"})(_read("a"))
    assert replicas_agree(dict.fromkeys(NAMES, _read("a")), NAMES)
    assert not replicas_agree({"node-a": _read("a"), "node-b": _read()}, ["node-a", "node-b"])


def test_poll_stops_at_the_first_read_where_the_condition_holds_and_times_it_from_start() -> None:
    s = Script({"node-a": _read("w1"), "node-b": _read(), "node-c": _read()},
               {"node-a": _read("w1"), "node-b": _read("w1"), "node-c": _read()},
               dict.fromkeys(NAMES, _read("w1")))
    c = poll(s.read, NAMES, holds_ids({"id-w1"}), deadline_s=10, start=99.0, interval_s=0.25,
             clock=s.clock, sleep=s.sleep)
    assert c.polls == 3 and s.sleeps == [0.25, 0.25]
    assert c.node_seconds == {"node-a": 1.05, "node-b": 1.35, "node-c": 1.65}
    assert c.seconds == 1.65 and c.elapsed_s == 0.65
    assert c.reads == dict.fromkeys(NAMES, _read("w1"))


def test_poll_gives_up_at_the_deadline_with_the_last_reads_and_no_time() -> None:
    stuck = {"node-a": _read("w1"), "node-b": _read("w1"), "node-c": _read()}
    s = Script(stuck)
    c = poll(s.read, NAMES, holds_ids({"id-w1"}), deadline_s=1.0, start=100.0, interval_s=0.3,
             clock=s.clock, sleep=s.sleep)
    assert c.seconds is None and c.node_seconds["node-c"] is None and c.node_seconds["node-a"] == 0.05
    assert c.reads == stuck
    assert s.now >= 101.0  # the last read is at or after the deadline
    assert all(x <= 0.3 for x in s.sleeps) and s.sleeps[-1] < 0.3  # the last wait is cut at the deadline


def test_every_node_must_be_done_on_one_read_not_across_reads() -> None:
    # node-c was done once, then unreadable: a read where not every node is done is not convergence
    s = Script({"node-a": _read(), "node-b": _read("w1"), "node-c": _read("w1")},
               {"node-a": _read("w1"), "node-b": _read("w1"), "node-c": _read(ok=False)},
               dict.fromkeys(NAMES, _read("w1")))
    c = poll(s.read, NAMES, holds_ids({"id-w1"}), deadline_s=10, start=100.0, interval_s=0.1,
             clock=s.clock, sleep=s.sleep)
    assert c.polls == 3 and c.seconds is not None


def test_agree_keeps_polling_while_replicas_differ() -> None:
    leader_only = {"node-a": _read("w1", "w2"), "node-b": _read("w1"), "node-c": _read("w1")}
    s1 = Script(leader_only)
    loose = poll(s1.read, NAMES, holds_ids({"id-w1"}), deadline_s=5, start=100.0, interval_s=0.1,
                 clock=s1.clock, sleep=s1.sleep)
    assert loose.polls == 1
    s2 = Script(leader_only, dict.fromkeys(NAMES, _read("w1", "w2")))
    strict = poll(s2.read, NAMES, holds_ids({"id-w1"}), deadline_s=5, start=100.0, interval_s=0.1,
                  agree=True, clock=s2.clock, sleep=s2.sleep)
    assert strict.polls == 2 and strict.seconds is not None
