"""Phase 2's mixed replication workload (issue 17): every HTTP write path, sent through every node.

Three stages after the burst, each a history of `hostagent ops` (one sequential writer per node, the nodes at
once) followed by a convergence poll judged per kind by `shipgate.checker.replication`:

1. seed: plain stores through node-a, node-b and node-c (kind `store`);
2. mutations on the converged seed rows, each sent to another node than the one that stored it: updates of
   content and tags, title-changing updates, promotes, deletes, links, consolidations (a new row, its sources
   gone), a duplicate (title, namespace) judged by the release's documented rule, and one bulk import
   (catch-up is still off: the fan-out alone must carry it);
3. after phase 2's quorum probes (`finish_workload`): a bulk import of 1000 rows while node-c is down, then
   node-c restarts with catch-up on: every row must reach it (`bulk_catchup`; the real 0.6.3 stamps one
   `updated_at` on a whole bulk and its catch-up cursor then loses the rows past each peer's 500-row page).

A kind the release does not have (capability probe) is skipped with the reason.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from phases.base import Checks, PhaseContext, write_history
from shipgate import checker
from shipgate.checker.replication import (
    KIND_NEEDS,
    KINDS,
    Expectation,
    Op,
    duplicate_rule,
    expectations,
    kinds_satisfied,
    pair,
    track,
    unmet,
    verdicts,
)
from shipgate.client.hostagent import row_metadata
from shipgate.evidence.models.replication import KindVerdict, ReplicationReport
from shipgate.hosts.inventory import PEER_NAMES
from shipgate.target import service
from shipgate.target.service import ServiceError

MEM = "/api/v1/memories"
CONSOLIDATE = "/api/v1/consolidate"
POLL_S = 0.25


def _store_op(node: str, ns: str, title: str, content: str, tags: list[str], kind: str = "store") -> dict:
    body = {"tier": "mid", "namespace": ns, "title": title, "content": content, "tags": tags, "priority": 5,
            "confidence": 1.0, "source": "api", "metadata": row_metadata()}
    return {"kind": kind, "op": "write" if kind == "store" else kind, "node": node, "method": "POST", "path": MEM,
            "body": body, "ok_status": [201],
            "want_id": True, "title": title, "namespace": ns, "agent": f"ai:workload-{node}",
            "effect": {"rows": [{"title": title, "namespace": ns, "content": content, "tags": tags, "tier": "mid"}]}}


def seed_count(w: Any) -> int:
    """Rows stage 1 stores: one per mutation, a chain for the links, a pair per consolidation, and the plain
    stores."""
    return (w.updates + w.title_updates + w.promotes + w.deletes + w.duplicates + (w.links + 1 if w.links else 0)
            + 2 * w.consolidates + w.stores_per_node * len(PEER_NAMES))


def plan_seed(w: Any, nodes: list[str]) -> list[dict]:
    """The rows the mutations act on. A consolidation's two sources are stored through one node by one writer
    (from 0.7.0 only a row's owner may change it, so the consolidate is sent as the owner of both) and carry a
    `pair` number; their tags share one and differ in one, so the merged row's union is told apart from either
    source's tags."""
    plain = seed_count(w) - 2 * w.consolidates
    ops = [_store_op(nodes[i % len(nodes)], w.namespace, f"mix-{i:03d}", f"seed {i} via {nodes[i % len(nodes)]}",
                     ["seed", f"s{i % 5}"]) for i in range(plain)]
    for j in range(w.consolidates):
        node = nodes[j % len(nodes)]
        for k in range(2):
            op = _store_op(node, w.namespace, f"mix-c{j:02d}-{k}", f"consolidation source {k} of pair {j} via {node}",
                           ["seed", f"c{j}", f"c{j}-{k}"])
            op["pair"] = j
            ops.append(op)
    return ops


def plan_mutations(w: Any, seeds: list[dict], nodes: list[str], rule: str | None, skip: set[str]) -> list[dict]:
    """Each seed row gets at most one mutation, sent to the node after the one that stored it, by the agent that
    stored it: from 0.7.0 only a row's owner may change it (403 "caller does not own this memory")."""
    ops: list[dict] = []
    pos = 0

    def take(n: int) -> list[dict]:
        nonlocal pos
        got, pos = seeds[pos:pos + n], pos + n
        return got

    def via(seed: dict, k: int = 1) -> str:
        return nodes[(nodes.index(seed["node"]) + k) % len(nodes)]

    pairs: dict[int, list[dict]] = {}
    for s in [s for s in seeds if "pair" in s]:
        pairs.setdefault(s["pair"], []).append(s)
    seeds = [s for s in seeds if "pair" not in s]
    ns = w.namespace
    for i, s in enumerate(take(w.updates)):
        content, tags = f"updated {s['title']} #{i}", ["updated", f"u{i}"]
        ops.append({"kind": "update", "op": "update", "node": via(s), "method": "PUT", "path": f"{MEM}/{quote(s['id'])}",
                    "body": {"content": content, "tags": tags}, "ok_status": [200], "target": s["id"], "agent": s["agent"],
                    "title": s["title"], "namespace": ns,
                    "effect": {"rows": [{"id": s["id"], "title": s["title"], "namespace": ns, "content": content,
                                         "tags": tags}]}})
    for s in take(w.title_updates):
        title, content = f"{s['title']}-renamed", f"renamed {s['title']}"
        ops.append({"kind": "update_title", "op": "update", "node": via(s), "method": "PUT", "path": f"{MEM}/{quote(s['id'])}",
                    "body": {"title": title, "content": content}, "ok_status": [200], "target": s["id"], "agent": s["agent"],
                    "title": title, "namespace": ns,
                    "effect": {"rows": [{"id": s["id"], "title": title, "namespace": ns, "content": content}]}})
    for s in take(w.promotes):
        ops.append({"kind": "promote", "op": "promote", "node": via(s), "method": "POST", "path": f"{MEM}/{quote(s['id'])}/promote",
                    "ok_status": [200], "target": s["id"], "agent": s["agent"], "title": s["title"], "namespace": ns,
                    "effect": {"rows": [{"id": s["id"], "title": s["title"], "namespace": ns, "tier": "long"}]}})
    for s in take(w.deletes):
        ops.append({"kind": "delete", "op": "delete", "node": via(s), "method": "DELETE", "path": f"{MEM}/{quote(s['id'])}",
                    "ok_status": [200, 204], "target": s["id"], "agent": s["agent"], "title": s["title"], "namespace": ns,
                    "effect": {"absent": [s["id"]]}})
    dups = take(w.duplicates)
    if rule is not None:
        for s in dups:
            op = _store_op(via(s, 2), ns, s["title"], f"duplicate of {s['title']}", ["dup"], kind="duplicate")
            if rule == "upsert":  # 201 with the existing id, content replaced, still one row with that title
                op["effect"] = {"rows": [{"id": s["id"], **op["effect"]["rows"][0]}], "unique": [[ns, s["title"]]]}
            else:  # 409 naming the existing row, which keeps its content
                op.update(ok_status=[409], want_id=False,
                          effect={"rows": [{"id": s["id"], "title": s["title"], "namespace": ns,
                                            "content": s["body"]["content"]}], "unique": [[ns, s["title"]]]})
            ops.append(op)
    if w.links:
        chain = take(w.links + 1)
        for i, (src, tgt) in enumerate(itertools.pairwise(chain)):
            link = {"source_id": src["id"], "target_id": tgt["id"], "relation": "related_to"}
            ops.append({"kind": "link", "op": "link", "node": nodes[i % len(nodes)], "method": "POST", "path": "/api/v1/links",
                        "body": link, "ok_status": [200, 201], "target": src["id"], "agent": src["agent"], "namespace": ns,
                        "effect": {"links": [link]}})
    for j, sources in sorted(pairs.items()):
        if len(sources) == 2:  # a pair missing a source (its store failed) has nothing to consolidate
            ops.append(_consolidate_op(ns, j, sources, via(sources[0])))
    if w.bulk_rows:
        ops.append(plan_bulk(f"{ns}-bulk", w.bulk_rows, nodes[1 % len(nodes)], "bulk"))
    return [o for o in ops if o["kind"] not in skip]


def _consolidate_op(ns: str, j: int, sources: list[dict], node: str) -> dict:
    """Merge a pair into a new row, sent as the sources' owner: the new row (its id is the answer's) holds the
    summary, tier long and the union of the sources' tags on every node, and no node still holds a source."""
    title, summary = f"mix-consolidated-{j:02d}", f"consolidated pair {j} \u00df\u2202"
    ids = [s["id"] for s in sources]
    tags = sorted({t for s in sources for t in s["body"]["tags"]})
    body = {"ids": ids, "title": title, "summary": summary, "namespace": ns, "tier": "long"}
    return {"kind": "consolidate", "op": "consolidate", "node": node, "method": "POST", "path": CONSOLIDATE,
            "body": body, "ok_status": [201], "want_id": True, "agent": sources[0]["agent"], "title": title,
            "namespace": ns,
            "effect": {"rows": [{"title": title, "namespace": ns, "content": summary, "tags": tags, "tier": "long"}],
                       "absent": ids}}


def plan_bulk(ns: str, rows: int, node: str, kind: str) -> dict:
    body = [{"tier": "mid", "namespace": ns, "title": f"{kind}-{i:04d}", "content": f"{kind} row {i} \u00df\u2202 #{i}",
             "tags": [f"b{i % 3}"], "priority": 1 + i % 10, "confidence": 1.0, "source": "import", "metadata": row_metadata()}
            for i in range(rows)]
    return {"kind": kind, "op": "bulk", "node": node, "method": "POST", "path": f"{MEM}/bulk", "body": body,
            "ok_status": [200, 201], "namespace": ns, "title": f"{kind} x{rows}",
            "effect": {"rows": [{"title": r["title"], "namespace": ns, "content": r["content"], "tags": r["tags"]}
                                for r in body]}}


def _run_ops(ctx: PhaseContext, ops: list[dict], timeout_s: float) -> list[dict]:
    nodes = {h: ctx.inventory.peer_url(h) for h in PEER_NAMES}
    plan = json.dumps({"nodes": nodes, "ops": ops})
    res = service.agent(ctx.access, "chaos", ["ops", "--timeout", str(timeout_s)], stdin=plan,
                        timeout=max(60.0, len(ops) * timeout_s))
    if res.error:
        raise ServiceError("chaos", f"host agent ops: {res.error}")
    events = [json.loads(line) for line in res.stdout.splitlines() if line.strip()]
    if res.exit_code != 0 and not events:
        raise ServiceError("chaos", f"host agent ops exit {res.exit_code}: {res.stderr.strip()[-300:]}")
    return events


def _poll(ctx: PhaseContext, exps: list[Expectation], kinds: set[str], namespaces: list[str], deadline_s: float,
          start: float) -> tuple[dict, dict, dict]:
    """Read every node until each shows every expectation of every kind, or the deadline (the one poll)."""
    nodes = ",".join(f"{h}={ctx.inventory.peer_url(h)}" for h in PEER_NAMES)
    sources = sorted({str(x.spec["source_id"]) for x in exps if x.what == "link"})
    args = ["state", "--nodes", nodes, *[a for ns in namespaces for a in ("--namespace", ns)]]
    if sources:
        args += ["--links", ",".join(sources)]
    ttc: dict[str, dict[str, float | None]] = {}

    def done_by_node(states: Mapping[str, Any]) -> dict[str, bool]:
        sat = kinds_satisfied(unmet(exps, states), kinds)
        track(ttc, sat, time.monotonic() - start)
        return {n: all(sat[k].get(n, False) for k in sat) for n in PEER_NAMES}

    conv = checker.poll(lambda: service.agent_json(ctx.access, "chaos", args, timeout=60), list(PEER_NAMES), None,
                        done_by_node=done_by_node, deadline_s=deadline_s, start=start, interval_s=POLL_S)
    return dict(conv.reads), unmet(exps, conv.reads), ttc


def _stage(ctx: PhaseContext, name: str, ops: list[dict], namespaces: list[str], all_events: list[dict],
           timeout_s: float) -> tuple[list[Op], dict[str, KindVerdict], dict]:
    ctx.progress(f"phase 2: workload {name}: {len(ops)} operations")
    events = _run_ops(ctx, ops, timeout_s)
    end = time.monotonic()
    for e in events:
        e["index"] = len(all_events)
        all_events.append(e)
    done = pair(events)
    exps, uncertain = expectations(done)
    kinds = {o.kind for o in done}
    states, misses, ttc = _poll(ctx, exps, kinds, namespaces, ctx.settings.phase2.workload.deadline_s, end)
    errors = {n: str(s.get("error")) for n, s in states.items() if not s.get("ok")}
    out = verdicts(done, exps, misses, ttc, read_errors=errors, kinds=[k for k in KINDS if k in kinds])
    return done, out, {"uncertain": uncertain[:50], "read_errors": errors,
                       "page_anomalies": _confirmed_anomalies(ctx, states, namespaces)}


def _confirmed_anomalies(ctx: PhaseContext, states: Mapping[str, Any], namespaces: list[str]) -> dict[str, list[str]]:
    """Page anomalies of the stage's last read that a second read shows again: a row landing mid-walk can make
    one walk look capped, a server that caps pages does it every time."""
    suspects = {n: st["anomalies"] for n, st in states.items() if st.get("ok") and st.get("anomalies")}
    if not suspects:
        return {}
    nodes = ",".join(f"{h}={ctx.inventory.peer_url(h)}" for h in suspects)
    again = service.agent_json(ctx.access, "chaos", ["state", "--nodes", nodes,
                                                     *[a for ns in namespaces for a in ("--namespace", ns)]],
                               timeout=60)
    out: dict[str, list[str]] = {}
    for n, found in suspects.items():
        second = again.get(n) or {}
        if not second.get("ok"):  # an unreadable second read confirms nothing away: the first one stands
            out[n] = [f"{a} (second read failed: {second.get('error')})" for a in found]
        elif both := sorted(set(found) & set(second.get("anomalies") or [])):
            out[n] = both
    return out


@dataclass
class WorkloadRun:
    """The workload between its fan-out stages and its catch-up stage. Phase 2 runs its quorum probes in between:
    they restart node-c with catch-up on, so the catch-up stage meets a node-c whose cursors are current and
    repairs the bulk it missed in two pages instead of re-pulling the whole phase."""

    ctx: PhaseContext
    checks: Checks
    facts: dict[str, Any]
    spec: Any
    t0: float
    skip: dict[str, str]
    timeout_s: float
    report: ReplicationReport
    events: list[dict] = field(default_factory=list)
    kinds: dict[str, KindVerdict] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


def run_workload(ctx: PhaseContext, checks: Checks, facts: dict[str, Any], spec: Any) -> WorkloadRun:
    """Stages 1 and 2 (seed, mutations); `spec(host, catchup)` is phase 2's ServeSpec builder, kept for stage 3
    (`finish_workload`)."""
    s = ctx.settings.phase2
    w = s.workload
    nodes = list(PEER_NAMES)
    # A host SSH cannot reach is the gate's problem (error), not a write path that failed to replicate.
    for host, res in ctx.access.run_many([*nodes, "chaos"], "true", timeout=15).items():
        if not res.ok:
            raise ServiceError(host, f"unreachable over SSH before the workload: {res.error or res.exit_code}")
    caps = ctx.capabilities
    skip: dict[str, str] = {}
    if caps is not None:
        for kind, sub in KIND_NEEDS.items():
            why = caps.lacks(sub)
            if why:
                skip[kind] = why
    version = caps.version if caps is not None else None
    rule = duplicate_rule(version or ctx.inventory.target.version)
    if w.duplicates and rule is None:
        skip["duplicate"] = "the release's version is unknown, so its documented duplicate rule is too"
    run = WorkloadRun(ctx, checks, facts, spec, time.monotonic(), skip, s.quorum_timeout_ms / 1000 + 7,
                      ReplicationReport(duplicate_rule=rule, details={"poll_interval_s": POLL_S,
                                                                      "catchup_deadline_s": catchup_deadline(s)}))
    seeds = plan_seed(w, nodes)
    if seeds:
        ops, out, det = _stage(ctx, "seed", seeds, [w.namespace], run.events, run.timeout_s)
        run.report.stages.append("seed")
        run.kinds.update(out)
        run.details["seed"] = det
        by_title = {o.invoke.get("title"): o for o in ops}
        for plan in seeds:
            done = by_title.get(plan["title"])
            plan["id"] = done.done.get("id") if done and done.done and done.type == "ok" else None
        seeds = [p for p in seeds if p["id"]]  # a seed that did not store cannot be mutated; its store failed
    mutations = plan_mutations(w, seeds, nodes, rule, set(skip))
    if mutations:
        ops, out, det = _stage(ctx, "mutations", mutations, [w.namespace, f"{w.namespace}-bulk"], run.events,
                               run.timeout_s)
        run.report.stages.append("mutations")
        run.kinds.update(out)
        run.details["mutations"] = det
        _duplicate_rule_check(checks, rule, ops)
    return run


def finish_workload(run: WorkloadRun) -> None:
    """Stage 3 (a bulk import node-c misses, repaired by catch-up), then the report and its checks."""
    ctx, s = run.ctx, run.ctx.settings.phase2
    w = s.workload
    if w.catchup_bulk_rows and "bulk_catchup" not in run.skip:
        _catchup_stage(run)
    for kind, why in run.skip.items():
        if kind not in run.kinds and _planned(w, kind):
            run.kinds[kind] = KindVerdict(kind=kind, status="skipped", reason=why)
    history_file = ctx.history_dir / "phase2-workload.jsonl"
    write_history(history_file, run.events)
    report = run.report
    report.history = [str(history_file.relative_to(ctx.run_dir))]
    report.kinds = {k: run.kinds[k] for k in KINDS if k in run.kinds}
    report.duration_s = round(time.monotonic() - run.t0, 3)
    report.details.update(run.details)
    run.facts["replication"] = report
    run.facts.setdefault("history", []).append(report.history[0])
    _kind_checks(run.checks, report)
    _page_checks(run)


def _page_checks(run: WorkloadRun) -> None:
    """The workload's namespaces hold up to 1000 rows, where the burst's hold 200: a list that caps a page below
    the requested limit without saying so (0.6.0 and 0.6.1 cap at 200) shows only here."""
    stages = [det for det in run.details.values() if isinstance(det, dict)]
    if not stages:
        return
    for node in PEER_NAMES:
        if all(node in det.get("read_errors", {}) for det in stages):
            run.checks.error(f"workload.{node}.list_honours_limit", "pages honour limit/offset",
                             f"{node} could not be read in any stage")
            continue
        found = [a for det in stages for a in det.get("page_anomalies", {}).get(node, [])]
        run.checks.add(f"workload.{node}.list_honours_limit", "pages honour limit/offset", found or "ok",
                       not found, "; ".join(found[:3]) if found else None)


def _catchup_stage(run: WorkloadRun) -> None:
    ctx, s = run.ctx, run.ctx.settings.phase2
    w = s.workload
    ns = f"{w.namespace}-catchup"
    ctx.progress("phase 2: workload catch-up: node-c down, bulk through node-a")
    service.stop_serve(ctx.access, "node-c")
    bulk = plan_bulk(ns, w.catchup_bulk_rows, "node-a", "bulk_catchup")
    got = _run_ops(ctx, [bulk], run.timeout_s * 4)
    service.start_serve(ctx.access, run.spec("node-c", s.repair_catchup_interval_secs))
    bad = service.wait_healthy(ctx.access, ctx.inventory, ["node-c"], deadline_s=30).get("node-c")
    if bad:
        raise ServiceError("node-c", f"not healthy after restart: {bad}")
    end = time.monotonic()
    for e in got:
        e["index"] = len(run.events)
        run.events.append(e)
    done = pair(got)
    exps, uncertain = expectations(done)
    states, misses, ttc = _poll(ctx, exps, {"bulk_catchup"}, [ns], catchup_deadline(s), end)
    errors = {n: str(x.get("error")) for n, x in states.items() if not x.get("ok")}
    run.kinds.update(verdicts(done, exps, misses, ttc, read_errors=errors, kinds=["bulk_catchup"]))
    run.report.stages.append("catchup")
    run.details["catchup"] = {"uncertain": uncertain[:50], "read_errors": errors,
                              "page_anomalies": _confirmed_anomalies(ctx, states, [ns]),
                              "bulk_answer": next((o.done.get("value") for o in done if o.done), None)}


def catchup_deadline(s: Any) -> float:
    """The catch-up stage's deadline: the fan-out stages' own, plus the 5 s first tick after the restart and one
    interval per 500-row page of everything node-c missed or never pulled (it ran with catch-up off until then)."""
    w = s.workload
    rows = len(s.agents) * s.writes_per_agent + seed_count(w) + w.bulk_rows + w.catchup_bulk_rows
    return w.deadline_s + 5 + (s.repair_catchup_interval_secs or 1) * -(-rows // 500)


def _planned(w: Any, kind: str) -> bool:
    return {"store": True, "update": w.updates, "update_title": w.title_updates, "promote": w.promotes,
            "delete": w.deletes, "link": w.links, "consolidate": w.consolidates, "duplicate": w.duplicates,
            "bulk": w.bulk_rows, "bulk_catchup": w.catchup_bulk_rows}.get(kind, False) > 0


def _duplicate_rule_check(checks: Checks, rule: str | None, ops: list[Op]) -> None:
    dups = [o for o in ops if o.kind == "duplicate"]
    if not dups:
        return
    for o in dups:
        want_id = (o.effect.get("rows") or [{}])[0].get("id")
        got = o.done or {}
        observed = {"status": got.get("status"), "id": got.get("id"),
                    "existing_id": (got.get("value") or {}).get("existing_id")}
        if rule == "upsert":
            expected: dict[str, Any] = {"status": 201, "id": want_id}
            ok = got.get("status") == 201 and got.get("id") == want_id
        else:
            expected = {"status": 409, "existing_id": want_id}
            ok = got.get("status") == 409 and observed["existing_id"] == want_id
        checks.add("duplicate.rule", expected, observed, ok,
                   None if ok else f"the release documents '{rule}' for a duplicate (title, namespace)")


def _kind_checks(checks: Checks, report: ReplicationReport) -> None:
    """Per kind: every operation acknowledged, and per node every acknowledged effect shown."""
    for kind, v in report.kinds.items():
        if v.status == "skipped":
            checks.skipped(kind, "the operation replicates to every node", v.reason or "skipped")
            continue
        checks.add(f"{kind}.acknowledged", v.ops, v.ok, v.ok == v.ops,
                   None if v.ok == v.ops else f"{v.fail} failed, {v.indeterminate} indeterminate")
        for node, ttc in v.time_to_converge_s.items():
            n = v.unreplicated_count.get(node, 0)
            cid = f"{kind}.{node}.replicated"
            if n:
                lst = v.unreplicated.get(node, [])
                more = f" (+{n - 5} more)" if n > 5 else ""
                checks.add(cid, 0, n, False, "; ".join(f"{u.key} {u.why}" for u in lst[:5]) + more)
            elif not v.ok:
                checks.error(cid, 0, v.reason or "nothing acknowledged to judge")
            elif ttc is None:
                checks.error(cid, 0, v.reason or f"{node} could not be read")
            else:
                checks.add(cid, 0, 0, True, f"converged {ttc}s after the stage")
