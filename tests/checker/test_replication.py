"""The replication checker on hand-made histories: each kind's effect is judged by identity and content on
every node, later operations supersede earlier ones, and failed / indeterminate operations are never blamed."""

from __future__ import annotations

from typing import Any

from shipgate.checker.replication import (
    duplicate_rule,
    expectations,
    kinds_satisfied,
    pair,
    track,
    unmet,
    verdicts,
)

NODES = ("node-a", "node-b", "node-c")
OP_OF = {"store": "write", "update_title": "update", "bulk_catchup": "bulk"}  # the HTTP path, as phases/workload.py


class H:
    """A history builder: each call appends one invoke and its completion, as `hostagent ops` writes them."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def op(self, kind: str, node: str, effect: dict, typ: str = "ok", status: int | None = 200,
           id: str | None = None) -> H:
        base = {"process": f"workload-{node}", "op": OP_OF.get(kind, kind), "kind": kind, "node": node}
        self.events.append({**base, "type": "invoke", "time": 1.0, "value": effect, "index": len(self.events)})
        done = {**base, "type": typ, "status": status, "time": 1.1, "index": len(self.events)}
        if id:
            done["id"] = id
        self.events.append(done)
        return self


def row(id: str, title: str, content: str = "c", tier: str = "mid", tags: list[str] | None = None,
        ns: str = "mix") -> dict[str, Any]:
    return {"id": id, "title": title, "namespace": ns, "content": content, "tier": tier, "tags": tags or []}


def state(*rows: dict, links: dict[str, list[dict]] | None = None) -> dict[str, Any]:
    return {"ok": True, "rows": list(rows), "links": links or {}}


def judge(h: H, states: dict[str, dict], skipped: dict[str, str] | None = None):
    ops = pair(h.events)
    exps, uncertain = expectations(ops)
    misses = unmet(exps, states)
    ttc: dict = {}
    track(ttc, kinds_satisfied(misses, {o.kind for o in ops}), 0.5)
    return verdicts(ops, exps, misses, ttc, skipped=skipped), uncertain


def test_an_update_missing_on_one_node_is_unreplicated_there_only() -> None:
    h = H().op("update", "node-b", {"rows": [{"id": "m1", "title": "t1", "namespace": "mix", "content": "new",
                                              "tags": ["x", "y"]}]})
    good = row("m1", "t1", "new", tags=["y", "x"])
    v, _ = judge(h, {"node-a": state(good), "node-b": state(good), "node-c": state(row("m1", "t1", "old"))})
    u = v["update"]
    assert u.status == "fail" and set(u.unreplicated) == {"node-c"}
    assert u.unreplicated["node-c"][0].key == "m1" and "content 'old'" in u.unreplicated["node-c"][0].why
    assert u.time_to_converge_s == {"node-a": 0.5, "node-b": 0.5, "node-c": None}


def test_tags_are_compared_too() -> None:
    h = H().op("update", "node-a", {"rows": [{"id": "m1", "title": "t1", "namespace": "mix", "content": "n",
                                              "tags": ["x"]}]})
    v, _ = judge(h, {n: state(row("m1", "t1", "n", tags=[] if n == "node-b" else ["x"])) for n in NODES})
    assert v["update"].status == "fail" and "tags" in v["update"].unreplicated["node-b"][0].why


def test_a_rename_kept_under_the_old_title_is_named() -> None:
    h = H().op("update_title", "node-a", {"rows": [{"id": "m1", "title": "t1-renamed", "namespace": "mix",
                                                    "content": "renamed"}]})
    new, old = row("m1", "t1-renamed", "renamed"), row("m1", "t1", "old")
    v, _ = judge(h, {"node-a": state(new), "node-b": state(old), "node-c": state(old)})
    assert v["update_title"].status == "fail"
    assert set(v["update_title"].unreplicated) == {"node-b", "node-c"}
    assert v["update_title"].unreplicated["node-b"][0].why.startswith("title 't1'")


def test_delete_promote_and_link() -> None:
    h = (H().op("delete", "node-a", {"absent": ["m1"]})
         .op("promote", "node-b", {"rows": [{"id": "m2", "title": "t2", "namespace": "mix", "tier": "long"}]})
         .op("link", "node-c", {"links": [{"source_id": "m3", "target_id": "m4", "relation": "related_to"}]},
             status=201))
    link = {"source_id": "m3", "target_id": "m4", "relation": "related_to"}
    full = state(row("m2", "t2", tier="long"), row("m3", "t3"), row("m4", "t4"), links={"m3": [link]})
    stale = state(row("m1", "t1"), row("m2", "t2"), row("m3", "t3"), row("m4", "t4"), links={"m3": []})
    v, _ = judge(h, {"node-a": full, "node-b": full, "node-c": stale})
    assert {k: x.status for k, x in v.items()} == {"promote": "fail", "delete": "fail", "link": "fail"}
    assert v["delete"].unreplicated["node-c"][0].why.startswith("still present")
    assert v["promote"].unreplicated["node-c"][0].why.startswith("tier 'mid'")
    assert v["link"].unreplicated["node-c"][0].why.startswith("link absent")
    assert all(set(x.unreplicated) == {"node-c"} for x in v.values())


def test_bulk_rows_are_judged_under_the_id_the_origin_gave_them() -> None:
    rows = [{"title": f"b{i}", "namespace": "bulk", "content": f"c{i}"} for i in range(3)]
    h = H().op("bulk", "node-b", {"rows": rows})
    origin = state(*(row(f"id{i}", f"b{i}", f"c{i}", ns="bulk") for i in range(3)))
    other_id = state(*(row(f"id{i}" if i else "zzz", f"b{i}", f"c{i}", ns="bulk") for i in range(3)))
    short = state(*(row(f"id{i}", f"b{i}", f"c{i}", ns="bulk") for i in range(2)))
    v, _ = judge(h, {"node-a": other_id, "node-b": origin, "node-c": short})
    b = v["bulk"]
    assert b.effects == 3 and b.status == "fail"
    assert [u.key for u in b.unreplicated["node-a"]] == ["bulk/b0"]
    assert b.unreplicated["node-a"][0].why.startswith("absent (its title is held by id zzz)")
    assert [u.key for u in b.unreplicated["node-c"]] == ["bulk/b2"] and b.unreplicated_count == {"node-a": 1,
                                                                                                 "node-c": 1}


def test_a_later_acknowledged_op_supersedes_and_failed_or_indeterminate_ones_are_not_blamed() -> None:
    h = (H().op("store", "node-a", {"rows": [{"title": "t1", "namespace": "mix", "content": "v1"}]}, status=201,
                id="m1")
         .op("update", "node-b", {"rows": [{"id": "m1", "title": "t1", "namespace": "mix", "content": "v2"}]})
         .op("update", "node-c", {"rows": [{"id": "m1", "title": "t1", "namespace": "mix", "content": "v3"}]},
             typ="fail", status=404)
         .op("delete", "node-a", {"absent": ["m9"]}, typ="info", status=503))
    s = state(row("m1", "t1", "v2"), row("m9", "t9"))
    v, uncertain = judge(h, dict.fromkeys(NODES, s))
    assert v["store"].status == "pass" and v["store"].effects == 0  # superseded by the update
    assert v["update"].status == "fail" and v["update"].unreplicated == {} and v["update"].fail == 1
    assert v["update"].reason == "1 of 2 not acknowledged"
    assert v["delete"].status == "error" and v["delete"].indeterminate == 1 and uncertain == ["m9"]


def test_duplicate_upsert_must_leave_one_row_with_the_new_content() -> None:
    h = H().op("duplicate", "node-c", {"rows": [{"title": "t1", "namespace": "mix", "content": "dup"}],
                                       "unique": [["mix", "t1"]]}, status=201, id="m1")
    ok = state(row("m1", "t1", "dup"))
    two = state(row("m1", "t1", "dup"), row("m7", "t1", "dup"))
    v, _ = judge(h, {"node-a": ok, "node-b": two, "node-c": ok})
    assert v["duplicate"].status == "fail" and v["duplicate"].unreplicated["node-b"][0].why == "2 rows titled 't1'"


def test_unreadable_node_is_an_error_and_a_skipped_kind_keeps_its_reason() -> None:
    h = H().op("promote", "node-a", {"rows": [{"id": "m2", "title": "t2", "namespace": "mix", "tier": "long"}]})
    s = state(row("m2", "t2", tier="long"))
    v, _ = judge(h, {"node-a": s, "node-b": s, "node-c": {"ok": False, "error": "refused"}},
                 skipped={"link": "ai-memory 0.5.0 has no `link` subcommand"})
    assert v["promote"].status == "error" and v["link"].status == "skipped"
    assert v["link"].reason == "ai-memory 0.5.0 has no `link` subcommand"


def test_time_to_converge_resets_when_a_later_poll_regresses() -> None:
    first: dict = {}
    track(first, {"update": {"node-a": True, "node-b": False}}, 0.3)
    track(first, {"update": {"node-a": True, "node-b": True}}, 0.6)
    assert first == {"update": {"node-a": 0.3, "node-b": 0.6}}
    track(first, {"update": {"node-a": False, "node-b": True}}, 0.9)
    assert first == {"update": {"node-a": None, "node-b": 0.6}}


def test_an_invoke_without_completion_is_indeterminate() -> None:
    h = H()
    h.events.append({"process": "workload-node-a", "op": "write", "kind": "delete", "node": "node-a",
                     "type": "invoke", "time": 1.0, "value": {"absent": ["m1"]}})
    ops = pair(h.events)
    assert [o.type for o in ops] == ["info"]
    assert expectations(ops) == ([], ["m1"])


def test_duplicate_rule_follows_the_release() -> None:
    assert duplicate_rule("ai-memory 0.6.3") == "upsert" and duplicate_rule("0.6.0") == "upsert"
    assert duplicate_rule("ai-memory 0.6.3.1") == "conflict" and duplicate_rule("ai-memory 0.6.4") == "conflict"
    assert duplicate_rule("ai-memory 0.10.0") == "conflict" and duplicate_rule(None) is None


def test_a_store_acknowledged_without_an_id_means_what_it_means_in_the_burst_and_phase_4():
    """The one history judge decides: a 201 with no id is indeterminate, so its memory is never blamed."""
    h = H().op("store", "node-a", {"rows": [{"title": "t9", "namespace": "mix", "content": "c"}]}, status=201)
    ops = pair(h.events)
    assert [o.type for o in ops] == ["info"]
    exps, uncertain = expectations(ops)
    assert exps == [] and uncertain
