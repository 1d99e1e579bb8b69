"""The workload's host-agent verbs (`ops`, `state`) as real processes against a real reference-peer cluster on
loopback, with phase 2's own plans, judged by the replication checker: the clean peer replicates every kind,
and a seeded local-only update or consolidate is named on the nodes that lack it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from phases.workload import plan_bulk, plan_mutations, plan_seed
from refpeer.testing import PeerProc, make_cluster, wait_until
from shipgate.checker.replication import expectations, kinds_satisfied, pair, unmet, verdicts
from shipgate.client import calls
from shipgate.evidence.models import OperationEvent
from shipgate.run.settings import WorkloadSettings

AGENT = calls.SOURCE
NAMES = ("node-a", "node-b", "node-c")


@pytest.fixture
def procs() -> Iterator[list[PeerProc]]:
    started: list[PeerProc] = []
    yield started
    for p in started:
        p.kill()


def agent(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(AGENT), *args], input=stdin, capture_output=True, text=True,
                          timeout=120)


def run_ops(urls: dict[str, str], ops: list[dict]) -> list[dict]:
    res = agent(["ops", "--timeout", "10"], json.dumps({"nodes": urls, "ops": ops}))
    assert res.returncode == 0, res.stderr
    events = [json.loads(line) for line in res.stdout.splitlines()]
    for i, e in enumerate(events):
        OperationEvent.model_validate({**e, "index": i})
        e["index"] = i
    return events


def state(urls: dict[str, str], namespaces: list[str], links: list[str]) -> dict[str, Any]:
    args = ["state", "--nodes", ",".join(f"{n}={u}" for n, u in urls.items())]
    args += [a for ns in namespaces for a in ("--namespace", ns)] + (["--links", ",".join(links)] if links else [])
    res = agent(args)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def judge(urls: dict[str, str], events: list[dict], namespaces: list[str]) -> dict:
    ops = pair(events)
    exps, _ = expectations(ops)
    links = sorted({x.spec["source_id"] for x in exps if x.what == "link"})
    kinds = {o.kind for o in ops}
    last: dict = {}

    def converged() -> bool:
        last["misses"] = unmet(exps, state(urls, namespaces, links))
        return all(all(v.values()) for v in kinds_satisfied(last["misses"], kinds).values())

    wait_until(converged, 8, interval=0.2)
    return verdicts(ops, exps, last["misses"], {})


def cluster(tmp_path: Path, procs: list[PeerProc], defects: str = "") -> dict[str, str]:
    nodes = make_cluster(tmp_path, catchup_secs=0, env={"AI_MEMORY_REF_DEFECTS": defects})
    procs.extend(nodes)
    return {n: p.url for n, p in zip(NAMES, nodes, strict=True)}


W = WorkloadSettings(updates=2, title_updates=1, promotes=2, deletes=2, links=2, consolidates=2, duplicates=1,
                     stores_per_node=1, bulk_rows=40, catchup_bulk_rows=0, namespace="wl")
KINDS = ["update", "update_title", "promote", "delete", "link", "consolidate", "duplicate", "bulk"]


def _seeded(urls: dict[str, str]) -> list[dict]:
    seeds = plan_seed(W, list(NAMES))
    events = run_ops(urls, seeds)
    assert judge(urls, events, ["wl"])["store"].status == "pass"
    ids = {e["title"]: e["id"] for e in events if e["type"] == "ok"}
    for s in seeds:
        s["id"] = ids[s["title"]]
    assert {s["node"] for s in seeds} == set(NAMES)
    return seeds


def test_every_kind_replicates_on_the_clean_peer(tmp_path: Path, procs: list[PeerProc]) -> None:
    urls = cluster(tmp_path, procs)
    seeds = _seeded(urls)
    ops = plan_mutations(W, seeds, list(NAMES), "upsert", set())
    assert {o["kind"] for o in ops} == set(KINDS)
    assert all(o["node"] != s["node"] for o in ops for s in seeds if o.get("target") == s["id"] and o["kind"] != "link")
    # another node, the same owner: from 0.7.0 a mutation by any other agent is refused with 403
    owners = {s["id"]: s["agent"] for s in seeds}
    nodes = {s["id"]: s["node"] for s in seeds}
    assert all(o["agent"] == owners[o["target"]] for o in ops if o.get("target"))
    merges = [o for o in ops if o["kind"] == "consolidate"]
    assert len(merges) == 2
    for o in merges:  # two sources of one writer, consolidated as that writer through another node
        a, b = o["body"]["ids"]
        assert owners[a] == owners[b] == o["agent"] and nodes[a] == nodes[b] != o["node"]
    touched = [o["target"] for o in ops if o.get("target")] + [i for o in merges for i in o["body"]["ids"]]
    assert len(touched) == len(set(touched))  # no seed row is acted on twice
    events = run_ops(urls, ops)
    assert {(e["kind"], e["op"]) for e in events} == {(k, {"update_title": "update"}.get(k, k)) for k in KINDS}
    v = judge(urls, events, ["wl", "wl-bulk"])
    assert {k: x.status for k, x in v.items()} == dict.fromkeys(KINDS, "pass")
    assert v["bulk"].effects == 40 and v["duplicate"].effects == 2
    assert v["consolidate"].effects == 2 * 3  # per merge: the new row, and each source absent


def test_a_local_only_update_is_unreplicated_on_the_other_nodes(tmp_path: Path, procs: list[PeerProc]) -> None:
    urls = cluster(tmp_path, procs, "update_not_fanned_out")
    seeds = _seeded(urls)
    ops = [o for o in plan_mutations(W, seeds, list(NAMES), "upsert", set()) if o["kind"] in ("update", "promote")]
    v = judge(urls, run_ops(urls, ops), ["wl"])
    assert v["promote"].status == "pass" and v["update"].status == "fail"
    sent = {o["target"]: o["node"] for o in ops if o["kind"] == "update"}
    for node, misses in v["update"].unreplicated.items():
        assert all(sent[u.key] != node and u.why.startswith("content") for u in misses)
    assert sum(v["update"].unreplicated_count.values()) == 2 * len(sent)


def test_a_local_only_consolidate_is_unreplicated_on_the_other_nodes(tmp_path: Path, procs: list[PeerProc]) -> None:
    urls = cluster(tmp_path, procs, "consolidate_not_fanned_out")
    seeds = _seeded(urls)
    ops = [o for o in plan_mutations(W, seeds, list(NAMES), "upsert", set()) if o["kind"] in ("consolidate", "delete")]
    events = run_ops(urls, ops)
    v = judge(urls, events, ["wl"])
    assert v["delete"].status == "pass" and v["consolidate"].status == "fail"
    assert v["consolidate"].ok == v["consolidate"].ops == 2  # acknowledged: the defect is in what replicates
    new_ids = {e["id"]: e["node"] for e in events if e["kind"] == "consolidate" and e["type"] == "ok"}
    sources = {i: o["node"] for o in ops if o["kind"] == "consolidate" for i in o["body"]["ids"]}
    for node, misses in v["consolidate"].unreplicated.items():
        for u in misses:
            if u.key in new_ids:
                assert new_ids[u.key] != node and u.why.startswith("absent")
            else:
                assert sources[u.key] != node and u.why.startswith("still present")
    # on each of the two nodes a merge was not sent to: its new row absent, both sources still there
    assert sum(v["consolidate"].unreplicated_count.values()) == 2 * 3 * len(new_ids)


def test_ops_records_refused_writes_as_failures_and_a_bulk_without_ids(tmp_path: Path, procs: list[PeerProc]) -> None:
    urls = cluster(tmp_path, procs)
    dead = {"node-a": "http://127.0.0.1:9", **{n: u for n, u in urls.items() if n != "node-a"}}
    ops = [plan_bulk("wl-b", 5, "node-b", "bulk"), {**plan_bulk("wl-b2", 1, "node-a", "bulk")}]
    events = run_ops(dead, ops)
    done = {e["node"]: e for e in events if e["type"] != "invoke"}
    assert done["node-a"]["type"] == "fail" and done["node-a"]["error"] == "connection refused"
    assert done["node-b"]["type"] == "ok" and done["node-b"]["value"]["created"] == 5
    assert all(e["kind"] == "bulk" and e["op"] == "bulk" for e in events)
