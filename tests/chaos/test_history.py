"""The one history judge on hand-made histories: outcomes (a 201 without an id above all), pairing by
process, the tally by kind, and each row rule alone."""

from __future__ import annotations

from typing import Any

from shipgate.checker.history import (
    diverged,
    duplicates_on,
    judge_rows,
    lost_on,
    outcome,
    tally,
    unexpected_on,
)

NODES = ("node-a", "node-b", "node-c")


def op(process: str, kind: str, title: str, done: str, status: int | None = None, wid: str | None = None,
       t: float = 1000.0, **extra: Any) -> list[dict[str, Any]]:
    base = {"process": process, "op": kind, "title": title, "namespace": "ns"}
    return [{**base, "type": "invoke", "time": t},
            {**base, "type": done, "status": status, "id": wid, "latency_ms": 4.0, "time": t + 0.1, **extra}]


def rows(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"id": i, "title": title} for i, title in pairs]


def read(*pairs: tuple[str, str]) -> dict[str, Any]:
    return {"ok": True, "rows": rows(*pairs), "anomalies": []}


def test_a_201_without_an_id_is_indeterminate_whatever_the_client_typed() -> None:
    # the host agent already types it info; a client that typed it ok is overruled by the judge
    assert outcome({"type": "info", "status": 201, "error": "201 without a JSON body carrying an id"})[0] == "info"
    verdict, why = outcome({"op": "write", "type": "ok", "status": 201})
    assert verdict == "info" and "no handle" in (why or "")
    assert outcome({"op": "write", "type": "ok", "status": 201, "id": "x"}) == ("ok", None)
    assert outcome({"op": "link", "type": "ok", "status": 201}) == ("ok", None)  # a link has no id of its own
    assert outcome({"op": "delete", "type": "ok", "status": 200}) == ("ok", None)  # a delete returns no row
    assert outcome({"type": "fail", "status": 400}) == ("fail", None)
    assert outcome({"type": "bogus"})[0] == "info"


def test_a_201_without_an_id_is_counted_indeterminate_and_its_row_never_blamed_or_required() -> None:
    events = op("w1", "write", "t1", "ok", 201, "id1") + op("w2", "write", "t2", "ok", 201, None)
    w = tally(events)["write"]
    assert (w.ok, w.fail, w.indeterminate, w.quorum_not_met) == (1, 0, 1, 0)
    assert w.acked == {"id1": "t1"} and w.unsure == {"t2"}
    landed = judge_rows(w, dict.fromkeys(NODES, read(("id1", "t1"), ("id2", "t2"))), NODES)
    assert (landed.lost, landed.unexpected, landed.diverged, landed.landed) == ([], [], [], 1)
    absent = judge_rows(w, dict.fromkeys(NODES, read(("id1", "t1"))), NODES)
    assert (absent.lost, absent.unexpected, absent.landed) == ([], [], 0)
    assert any(k.startswith("201 (201 without an id") for k in w.responses)


def test_tally_is_keyed_by_kind_and_pairs_by_process() -> None:
    events = (op("w1", "write", "a", "ok", 201, "ia") + op("w1", "update", "a", "ok", 200, "ia", t=1001)
              + op("w2", "delete", "b", "fail", 404, t=1002) + op("w3", "write", "c", "info", 503, t=1003))
    t = tally(events)
    assert sorted(k.kind for k in t) == ["delete", "update", "write"]
    assert (t["write"].ok, t["write"].quorum_not_met) == (1, 1)
    assert t["update"].ok == 1 and t["update"].ops[0].id == "ia"
    assert t["delete"].fail == 1 and t["delete"].failed == {"b"}
    assert t["promote"].ops == [] and t["promote"].ok == 0  # a kind that never ran is empty, not a KeyError


def test_interleaved_processes_pair_correctly_and_an_unfinished_invoke_is_incomplete() -> None:
    a, b = op("w1", "write", "a", "ok", 201, "ia"), op("w2", "write", "b", "ok", 201, "ib")
    events = [a[0], b[0], b[1], a[1], {"process": "w3", "op": "write", "title": "c", "type": "invoke", "time": 1.0}]
    w = tally(events)["write"]
    assert {(o.process, o.title, o.id) for o in w.ops if o.outcome == "ok"} == {("w1", "a", "ia"), ("w2", "b", "ib")}
    assert w.completed == 2 and [o.title for o in w.incomplete] == ["c"]
    assert "c" in w.unsure and "c" in w.attempted and w.indeterminate == 0


def test_failed_means_every_attempt_failed() -> None:
    events = (op("w1", "write", "a", "fail", 400) + op("w1", "write", "a", "ok", 201, "ia", t=1001)
              + op("w2", "write", "b", "fail", 400) + op("w2", "write", "b", "info", None, t=1001)
              + op("w3", "write", "c", "fail", 409))
    assert tally(events)["write"].failed == {"c"}


def test_lost_rule_alone() -> None:
    w = tally(op("w1", "write", "a", "ok", 201, "ia") + op("w1", "write", "b", "ok", 201, "ib", t=1001))["write"]
    assert lost_on(w, rows(("ia", "a"))) == ["b"]
    assert lost_on(w, rows(("ia", "a"), ("other", "b"))) == []  # under another id: unexpected, not lost


def test_unexpected_rule_alone() -> None:
    w = tally(op("w1", "write", "a", "ok", 201, "ia") + op("w2", "write", "f", "fail", 400))["write"]
    found = unexpected_on(w, rows(("other", "a"), ("if", "f"), ("ig", "ghost")), "node-b")
    assert found == ["a on node-b has id other, acknowledged as ia", "f on node-b: its write definitely failed",
                     "ghost on node-b: no write produced it"]


def test_duplicates_rule_alone() -> None:
    assert duplicates_on(rows(("i1", "a"), ("i2", "a"), ("i3", "b"), ("i3", "c")), "node-c") == [
        "a x2 on node-c", "id i3 x2 on node-c"]


def test_diverged_rule_alone() -> None:
    present = {"node-a": {"a", "b", "x"}, "node-b": {"a", "b"}, "node-c": {"a"}}
    assert diverged(present, NODES, lost=["b"]) == ["x only on node-a"]
    assert diverged({"node-a": {"a"}}, NODES) == []  # one readable node cannot disagree with itself


def test_unreadable_node_is_a_read_error_and_judged_by_nothing_else() -> None:
    w = tally(op("w1", "write", "a", "ok", 201, "ia"))["write"]
    j = judge_rows(w, {"node-a": read(("ia", "a")), "node-b": {"ok": False, "error": "refused"}}, NODES)
    assert j.read_errors == {"node-b": "refused", "node-c": "no answer"}
    assert j.counts == {"node-a": 1, "node-b": None, "node-c": None}
    assert j.lost == [] and j.converged is False


def test_lost_lines_name_every_node_in_node_order() -> None:
    w = tally(op("w1", "write", "a", "ok", 201, "ia"))["write"]
    j = judge_rows(w, {"node-a": read(("ia", "a")), "node-b": read(), "node-c": read()}, NODES)
    assert j.lost == ["a missing on node-b, node-c"] and j.lost_by_node == {"node-b": ["a"], "node-c": ["a"]}
