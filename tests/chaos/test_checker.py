"""The chaos checker on hand-made histories: each anomaly class is found and named, and a class with
nothing acknowledged is an error (never upstream's degenerate 1.0)."""

from __future__ import annotations

from typing import Any

import pytest

from shipgate.checker.chaos import check_cycle, convergence_bound, summarise_class
from shipgate.evidence.models import CycleRecord, FaultResult

NODES = ("node-a", "node-b", "node-c")


def history(results: list[tuple[str, str, int | None, str | None]]) -> list[dict[str, Any]]:
    """(title, type, status, id) -> invoke + completion events, as the host agent's burst writes them."""
    events: list[dict[str, Any]] = []
    for n, (title, kind, status, wid) in enumerate(results):
        base = {"process": "w1", "op": "write", "title": title, "namespace": "ns"}
        events.append({**base, "type": "invoke", "time": 1000.0 + n})
        events.append({**base, "type": kind, "status": status, "id": wid, "latency_ms": 5.0 + n,
                       "time": 1000.5 + n})
    return events


def read(*rows: tuple[str, str]) -> dict[str, Any]:
    return {"ok": True, "rows": [{"id": i, "title": t} for i, t in rows], "anomalies": []}


def cycle(events: list[dict[str, Any]], reads: dict[str, dict[str, Any]], applied: bool | None = True,
          writes: int | None = None):
    return check_cycle(cycle=1, fault="partition_minority", namespace="ns",
                       writes=writes if writes is not None else len(events) // 2, events=events, reads=reads,
                       nodes=NODES, fault_applied=applied, time_to_converge_s=0.5)


OK3 = [("w1", "ok", 201, "id1"), ("w2", "ok", 201, "id2"), ("w3", "ok", 201, "id3")]
ALL3 = read(("id1", "w1"), ("id2", "w2"), ("id3", "w3"))


def test_clean_cycle_passes_with_upstream_counts_as_strings() -> None:
    c = cycle(history(OK3), dict.fromkeys(NODES, ALL3))
    assert c.status == "pass"
    r = c.record
    assert (r.ok, r.fail, r.quorum_not_met, r.indeterminate) == (3, 0, 0, 0)
    assert (r.count_node0, r.count_node1, r.count_node2) == ("3", "3", "3")
    assert r.lost == [] and r.unexpected == [] and r.duplicates == [] and r.converged is True
    assert c.latencies_ms == [5.0, 6.0, 7.0]


def test_lost_acknowledged_write_is_listed_with_its_nodes() -> None:
    partial = read(("id1", "w1"), ("id3", "w3"))
    c = cycle(history(OK3), {"node-a": ALL3, "node-b": partial, "node-c": partial})
    assert c.status == "fail"
    assert c.record.lost == ["w2 missing on node-b, node-c"]
    assert c.lost_by_node == {"node-b": ["w2"], "node-c": ["w2"]}
    assert c.record.converged is False


def test_row_nobody_wrote_and_row_of_a_failed_write_are_unexpected() -> None:
    events = history([*OK3, ("w4", "fail", 400, None)])
    extra = read(("id1", "w1"), ("id2", "w2"), ("id3", "w3"), ("id9", "ghost"), ("id4", "w4"))
    c = cycle(events, {"node-a": extra, "node-b": ALL3, "node-c": ALL3})
    assert c.status == "fail"
    assert "ghost on node-a: no write produced it" in c.record.unexpected
    assert "w4 on node-a: its write definitely failed" in c.record.unexpected


def test_acknowledged_title_under_another_id_is_unexpected_not_lost() -> None:
    other = read(("id1", "w1"), ("idX", "w2"), ("id3", "w3"))
    c = cycle(history(OK3), {"node-a": ALL3, "node-b": ALL3, "node-c": other})
    assert c.status == "fail"
    assert c.record.lost == []
    assert c.record.unexpected == ["w2 on node-c has id idX, acknowledged as id2"]


def test_duplicate_titles_and_ids_are_found() -> None:
    dup = read(("id1", "w1"), ("id2", "w2"), ("id3", "w3"), ("id2b", "w2"), ("id3", "w3"))
    c = cycle(history(OK3), {"node-a": ALL3, "node-b": dup, "node-c": ALL3})
    assert c.status == "fail"
    assert "w2 x2 on node-b" in c.record.duplicates
    assert "id id3 x2 on node-b" in c.record.duplicates


def test_indeterminate_writes_that_landed_are_counted_not_blamed() -> None:
    events = history([*OK3, ("w4", "info", 503, None), ("w5", "info", None, None), ("w6", "info", None, None)])
    landed = read(("id1", "w1"), ("id2", "w2"), ("id3", "w3"), ("id4", "w4"), ("id5", "w5"))
    c = cycle(events, dict.fromkeys(NODES, landed))
    assert c.status == "pass"
    assert (c.record.quorum_not_met, c.record.indeterminate, c.record.indeterminate_landed) == (1, 2, 2)


def test_indeterminate_write_on_the_leader_only_is_divergence() -> None:
    events = history([*OK3, ("w4", "info", None, None)])
    leader = read(("id1", "w1"), ("id2", "w2"), ("id3", "w3"), ("id4", "w4"))
    c = cycle(events, {"node-a": leader, "node-b": ALL3, "node-c": ALL3})
    assert c.status == "fail"
    assert c.diverged == ["w4 only on node-a"]
    assert c.record.lost == []


def test_fault_without_evidence_makes_a_clean_cycle_an_error() -> None:
    c = cycle(history(OK3), dict.fromkeys(NODES, ALL3), applied=False)
    assert c.status == "error"
    assert any("fault" in p for p in c.problems)


def test_unreadable_node_is_an_error_and_counts_err() -> None:
    c = cycle(history(OK3), {"node-a": ALL3, "node-b": {"ok": False, "error": "refused"}, "node-c": ALL3})
    assert c.status == "error"
    assert c.record.count_node1 == "ERR"
    assert c.read_errors == {"node-b": "refused"}


def test_incomplete_history_is_an_error() -> None:
    c = cycle(history(OK3), dict.fromkeys(NODES, ALL3), writes=5)
    assert c.status == "error"
    assert "3 completed writes, 5 were requested" in c.problems[0]


def _rec(ok: int, n1: str, n2: str) -> CycleRecord:
    return CycleRecord(cycle=0, fault="f", writes=max(ok, 100), ok=ok, quorum_not_met=0, fail=max(ok, 100) - ok,
                       count_node1=n1, count_node2=n2)


def test_bound_reproduces_upstream_formula_including_the_limit_20_artifact() -> None:
    assert convergence_bound([_rec(100, "20", "20")] * 5) == 0.2  # runs r19/r20/r24
    assert convergence_bound([_rec(3, "3", "ERR"), _rec(3, "3", "3")]) == 0.5  # ERR counts as 0
    assert convergence_bound([_rec(1000, "996", "999")]) == 0.996
    assert convergence_bound([_rec(3, "2", "3")]) == 0.666  # floored, not rounded
    assert convergence_bound([_rec(1000, "995", "995")]) == 0.995  # exact, no float artefact


def test_bound_is_none_not_one_when_nothing_was_acknowledged() -> None:
    assert convergence_bound([_rec(0, "0", "0")] * 3) is None


def test_class_with_nothing_acknowledged_is_an_error() -> None:
    events = history([("w1", "fail", 400, None), ("w2", "fail", 400, None)])
    c = cycle(events, dict.fromkeys(NODES, read()))
    v = summarise_class("partition_minority", [c], cycles_requested=1)
    assert v.result.convergence_bound is None
    assert v.result.status == "error"
    bound = next(ch for ch in v.checks if ch.id == "partition_minority.convergence_bound")
    assert bound.status == "error" and "Σ ok = 0" in (bound.detail or "")


def test_class_pass_and_model_round_trip() -> None:
    cycles = [cycle(history(OK3), dict.fromkeys(NODES, ALL3)) for _ in range(3)]
    v = summarise_class("partition_minority", cycles, cycles_requested=3)
    assert v.result.status == "pass", [c for c in v.checks if c.status != "pass"]
    assert v.result.convergence_bound == 1.0
    assert v.result.cycles_with_fault_evidence == 3 and v.result.ok == 9
    assert v.result.latency_ms is not None and v.result.latency_ms.count == 9
    FaultResult.model_validate_json(v.result.model_dump_json(by_alias=True))


def test_class_with_lost_writes_fails_and_lists_them() -> None:
    partial = read(("id1", "w1"), ("id3", "w3"))
    cycles = [cycle(history(OK3), {"node-a": ALL3, "node-b": partial, "node-c": ALL3})]
    v = summarise_class("kill_primary_mid_write", cycles, cycles_requested=1, min_bound=0.5)
    assert v.result.status == "fail"
    assert v.result.lost == ["c1: w2 missing on node-b"]
    lost = next(ch for ch in v.checks if ch.id.endswith("lost_acknowledged"))
    assert lost.status == "fail" and "w2 missing on node-b" in (lost.detail or "")


@pytest.mark.parametrize("max_lost, status", [(0, "fail"), (1, "pass")])
def test_max_lost_threshold_is_honoured(max_lost: int, status: str) -> None:
    many = [(f"w{i}", "ok", 201, f"id{i}") for i in range(1000)]
    full = read(*[(f"id{i}", f"w{i}") for i in range(1000)])
    short = read(*[(f"id{i}", f"w{i}") for i in range(999)])
    c = cycle(history(many), {"node-a": full, "node-b": full, "node-c": short})
    v = summarise_class("drop_random_acks", [c], cycles_requested=1, max_lost=max_lost)
    lost = next(ch for ch in v.checks if ch.id.endswith("lost_acknowledged"))
    assert lost.status == status
    assert v.result.convergence_bound == 0.999


def test_timed_out_class_never_passes_even_when_its_cycles_did() -> None:
    cycles = [cycle(history(OK3), dict.fromkeys(NODES, ALL3))]
    v = summarise_class("clock_skew_peer", cycles, cycles_requested=50, timed_out=True, time_budget_s=150)
    assert v.result.status == "error" and v.result.timed_out is True
    done = next(ch for ch in v.checks if ch.id.endswith("cycles_completed"))
    assert done.status == "error" and "time budget" in (done.detail or "")


def test_cycle_without_fault_evidence_makes_the_class_an_error() -> None:
    cycles = [cycle(history(OK3), dict.fromkeys(NODES, ALL3)),
              cycle(history(OK3), dict.fromkeys(NODES, ALL3), applied=False)]
    v = summarise_class("drop_random_acks", cycles, cycles_requested=2)
    assert v.result.status == "error"
    assert v.result.cycles_with_fault_evidence == 1


def test_list_anomaly_fails_the_class() -> None:
    capped = {**ALL3, "anomalies": ["limit=1000 offset=0 returned only 20 rows but more exist"]}
    cycles = [cycle(history(OK3), {"node-a": ALL3, "node-b": capped, "node-c": ALL3})]
    v = summarise_class("partition_minority", cycles, cycles_requested=1)
    assert v.result.status == "fail"


def test_a_201_without_an_id_is_indeterminate_in_a_cycle_as_in_phase_2() -> None:
    events = history([*OK3, ("w4", "info", 201, None)])
    landed = read(("id1", "w1"), ("id2", "w2"), ("id3", "w3"), ("id4", "w4"))
    c = cycle(events, dict.fromkeys(NODES, landed))
    assert c.status == "pass"
    assert (c.record.ok, c.record.fail, c.record.indeterminate, c.record.indeterminate_landed) == (3, 0, 1, 1)
