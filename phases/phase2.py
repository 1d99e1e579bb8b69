"""Phase 2: federation. A W=2-of-3 cluster, a truly concurrent multi-agent burst, polled convergence
compared by identity, the retry probe (one fan-out attempt to node-b refused: the row must still get there),
and the quorum probes (one peer down -> 201; both peers refused, then both silent -> the release's quorum-miss
answer within the quorum timeout + margin, rows converging after the heal).

Catch-up is off during the burst (by default) so that convergence measures the write path itself:
a fan-out that is cancelled after quorum (the historical r14 bug) leaves rows missing that only a
background repair could hide. The repair path is tested separately, when node-b and node-c come
back after the probes, and by the workload's last stage (node-c misses a bulk import), run after them.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

from phases.base import Checks, PhaseContext, Stopwatch, write_history
from phases.workload import finish_workload, run_workload
from shipgate import checker, nemesis
from shipgate.client import calls, output
from shipgate.evidence.models import Phase2Report, ProbeResult, Quantiles, RetryProbeResult
from shipgate.hosts.inventory import PEER_NAMES
from shipgate.nemesis import FaultEvidence
from shipgate.target import cluster, service, startup
from shipgate.target.quorum import QuorumMissRule, quorum_miss_rule
from shipgate.target.service import WORKDIR, ServeSpec, ServiceError

LETTER = {"node-a": "a", "node-b": "b", "node-c": "c"}
POLL_INTERVAL_S = 0.25


def _spec(ctx: PhaseContext, host: str, catchup: float | None) -> ServeSpec:
    s = ctx.settings.phase2
    others = [ctx.inventory.peer_url(p) for p in PEER_NAMES if p != host]
    return ServeSpec(host=host, port=ctx.inventory.federation_port, db=f"{WORKDIR}/phase2.db", peers=others,
                     quorum_writes=s.quorum_writes, quorum_timeout_ms=s.quorum_timeout_ms,
                     catchup_interval_secs=catchup, **startup.serve_options(ctx))


def run(ctx: PhaseContext) -> Any:
    s = ctx.settings.phase2
    watch = Stopwatch()
    checks = Checks()
    facts: dict[str, Any] = {}
    try:
        _steps(ctx, checks, facts)
    except ServiceError as exc:
        checks.error(f"host.{exc.host}", "reachable and serving", str(exc))
    finally:
        for host in PEER_NAMES:
            with contextlib.suppress(ServiceError):
                service.stop_serve(ctx.access, host)
    return Phase2Report.from_checks(checks.items, timing=watch.timing(), settings=s.model_dump(mode="json"),
                                    target=ctx.target_ref(), agents=list(s.agents),
                                    converge_deadline_s=s.convergence_deadline_s, **facts)


def _start_cluster(ctx: PhaseContext, hosts: list[str], catchup: float | None, fresh: bool) -> None:
    cluster.start_serves(ctx.access, ctx.inventory, [_spec(ctx, host, catchup) for host in hosts], fresh=fresh)


def _steps(ctx: PhaseContext, checks: Checks, facts: dict[str, Any]) -> None:
    s = ctx.settings.phase2
    inv = ctx.inventory
    node_a = inv.peer_url("node-a")
    ctx.progress("phase 2: starting a W=2 cluster")
    _start_cluster(ctx, list(PEER_NAMES), s.burst_catchup_interval_secs, fresh=True)

    # Burst: every agent starts together (a barrier on the chaos host); each writes sequentially.
    ctx.progress(f"phase 2: burst {len(s.agents)} agents x {s.writes_per_agent} writes -> node-a")
    burst = service.agent(ctx.access, "chaos", calls.burst(
        node_a, s.namespace, node="node-a", agents=s.agents, writes=s.writes_per_agent,
        timeout_s=s.quorum_timeout_ms / 1000 + 7, source="api",
    ), timeout=max(120.0, len(s.agents) * s.writes_per_agent * 1.0))
    burst_end = time.monotonic()
    if burst.error:
        raise ServiceError("chaos", f"burst agent: {burst.error}")
    history_file = ctx.history_dir / "phase2-burst.jsonl"
    events, bad = output.agent_events(burst)
    if bad:
        raise ServiceError("chaos", f"burst agent printed {len(bad)} lines that are not JSON objects: {bad[0][:200]!r}")
    events = [{**e, "clock": "chaos"} for e in events]
    write_history(history_file, events)
    facts["history"] = [str(history_file.relative_to(ctx.run_dir))]
    writes = checker.tally(events).get("write")
    facts["total_writes"] = writes.completed
    facts["ok"] = writes.ok
    facts["quorum_not_met"] = writes.quorum_not_met
    facts["indeterminate"] = writes.indeterminate
    facts["fail"] = writes.fail
    facts["latency_ms"] = Quantiles.of(writes.latencies_ms)
    expected_total = len(s.agents) * s.writes_per_agent
    checks.add("burst.all_writes_recorded", expected_total, writes.completed, writes.completed == expected_total,
               None if writes.completed == expected_total else
               f"burst agent exit {burst.exit_code}: {burst.stderr[-300:]}")
    checks.add("burst.acknowledged", expected_total, writes.ok, writes.ok == expected_total,
               _status_breakdown(writes))

    # Convergence, polled until every acknowledged write is on every node (or the deadline).
    ctx.progress(f"phase 2: {writes.ok} acknowledged; polling convergence (deadline {s.convergence_deadline_s:.0f}s)")
    hosts = list(PEER_NAMES)
    conv = checker.poll(lambda: _read(ctx, s.namespace, hosts), hosts, checker.holds_ids(writes.acked),
                        deadline_s=s.convergence_deadline_s, start=burst_end, interval_s=POLL_INTERVAL_S)
    rows = checker.judge_rows(writes, conv.reads, hosts)
    readable = [h for h in hosts if h not in rows.read_errors]
    facts["counts"] = {LETTER[h]: rows.counts.get(h) for h in PEER_NAMES}
    facts["time_to_converge_s"] = conv.node_seconds
    facts["missing_writes"] = {h: rows.lost_by_node.get(h, []) for h in readable}
    unexpected = {h: rows.unexpected_by_node.get(h, []) for h in readable}
    duplicates = {h: rows.duplicates_by_node.get(h, []) for h in readable}
    anomalies = {h: rows.anomalies.get(h, []) for h in readable}
    details = facts.setdefault("details", {})
    details.update(unexpected_writes=unexpected, duplicates=duplicates, list_anomalies=anomalies,
                   read_errors=rows.read_errors)
    ok = writes.ok
    threshold = int(s.min_node_fraction * ok)
    for host in PEER_NAMES:
        count = rows.counts.get(host)
        if count is None:
            checks.error(f"convergence.{host}.count", f">= {threshold}", rows.read_errors.get(host, "unreadable"))
            continue
        missing = rows.lost_by_node.get(host, [])
        checks.add(f"convergence.{host}.count", f">= {threshold} (floor {s.min_node_fraction} x ok={ok})",
                   count, count >= threshold and ok > 0,
                   "no write was acknowledged" if not ok else
                   (f"{len(missing)} acknowledged writes missing, e.g. {', '.join(missing[:5])}" if missing else None))
        checks.add(f"convergence.{host}.all_acknowledged", 0, len(missing), not missing,
                   f"missing: {', '.join(missing[:10])}" if missing else None)
        found = anomalies.get(host, [])
        checks.add(f"list.{host}.honours_limit", "pages honour limit/offset", found or "ok", not found,
                   "; ".join(found) if found else None)
    checks.add("convergence.no_duplicates", 0, len(rows.duplicates), not rows.duplicates,
               "; ".join(rows.duplicates[:5]) or None)
    checks.add("convergence.no_unexpected", 0, len(rows.unexpected), not rows.unexpected,
               "; ".join(rows.unexpected[:5]) or None)

    workload = run_workload(ctx, checks, facts, lambda host, catchup: _spec(ctx, host, catchup)) \
        if s.workload.enabled else None
    if _serving(ctx, checks, "before_probes"):
        _retry_probe(ctx, checks, facts)
        _probes(ctx, checks, facts)
    if workload is not None:
        finish_workload(workload)


def _serving(ctx: PhaseContext, checks: Checks, when: str) -> bool:
    """The probes' premise: all three peers up. A host SSH cannot reach is the gate's problem (error);
    a reachable host whose serve died is the product's (fail)."""
    for host, res in ctx.access.run_many(list(PEER_NAMES), "true", timeout=15).items():
        if not res.ok:
            raise ServiceError(host, f"unreachable over SSH {when.replace('_', ' ')}: {res.error or res.exit_code}")
    bad = {h: w for h, w in service.wait_healthy(ctx.access, ctx.inventory, list(PEER_NAMES), deadline_s=10).items()
           if w}
    for host, why in bad.items():
        checks.add(f"serve.{host}.alive_{when}", "healthy", why, False, service.serve_log_tail(ctx.access, host)[-300:])
    if bad:
        checks.skipped("probes", "probe 1 and probe 2", f"not run: {', '.join(bad)} not serving")
    return not bad


def _probes(ctx: PhaseContext, checks: Checks, facts: dict[str, Any]) -> None:
    """Probe 1: one peer down -> 201. Probe 2: both peers refused; probe 3: both peers silent. Each quorum miss
    must get the release's documented answer within quorum timeout + margin; a refused peer fails at once, so
    only the silent probe shows whether the timeout is honoured. The rows every miss kept must then converge."""
    s = ctx.settings.phase2
    node_a = ctx.inventory.peer_url("node-a")
    timeout_s = s.quorum_timeout_ms / 1000
    caps = ctx.capabilities
    rule = quorum_miss_rule(caps.version if caps else None, min(s.quorum_writes, len(PEER_NAMES)))
    facts["quorum_miss_rule"] = rule.source
    ctx.progress("phase 2: probe 1 (node-b down, expect 201)")
    service.stop_serve(ctx.access, "node-b")
    p1 = service.agent_json(ctx.access, "chaos", calls.probe(node_a, f"{s.namespace}-probe1", "probe1",
                                                             timeout_s=timeout_s + 15), timeout=timeout_s + 40)
    facts["probe1_single_peer_down"] = str(p1.get("status") if p1.get("status") is not None else p1.get("error"))
    facts.setdefault("probes", {})["probe1"] = _probe_model(201, p1)
    checks.add("probe1.single_peer_down", 201, p1.get("status"), p1.get("status") == 201, p1.get("body") or p1.get("error"))

    ctx.progress(f"phase 2: probe 2 (node-b and node-c down, refused; expect {rule.status} fast) x{s.quorum_probes}")
    service.stop_serve(ctx.access, "node-c")
    refused = _miss_probes(ctx, f"{s.namespace}-probe2", "probe2")
    _judge_misses(ctx, checks, facts, "refused", refused, rule, "probe2.both_peers_down", "probe2.body", "probe2.fast")
    facts["probe2_both_peers_down"] = _status_text(refused[0])

    # Repair: node-b and node-c come back (catch-up on) and must receive every kept probe row.
    ctx.progress("phase 2: restarting node-b and node-c; checking catch-up")
    for host in ("node-b", "node-c"):
        service.start_serve(ctx.access, _spec(ctx, host, s.repair_catchup_interval_secs))
    bad = {h: w for h, w in service.wait_healthy(ctx.access, ctx.inventory, ["node-b", "node-c"]).items() if w}
    if bad:
        raise ServiceError(next(iter(bad)), f"not healthy after restart: {next(iter(bad.values()))}")
    # Probe 1 was acknowledged while node-b was down; probe 2's misses kept their rows on node-a.
    if p1.get("status") != 201:
        checks.skipped("catchup.after_restart", "probe rows on node-b and node-c", "probe 1 was not acknowledged")
    else:
        expected = {f"{s.namespace}-probe1": {"probe1"}, f"{s.namespace}-probe2": _kept(refused, rule)}
        seconds, missing = _wait_rows(ctx, expected, ["node-b", "node-c"], s.convergence_deadline_s)
        facts.setdefault("details", {})["catchup_after_restart"] = {"seconds": seconds, "missing": missing}
        checks.add("catchup.after_restart", "node-b and node-c hold the probe rows", missing or "all present",
                   not missing, f"after {seconds}s" if missing else None)
    _silent_probe(ctx, checks, facts, rule)


RETRY_IDS = ("fanout_retry.refused_once", "fanout_retry.acknowledged", "fanout_retry.node-b.delivered",
             "fanout_retry.node-c.delivered")


def _catchup_off(ctx: PhaseContext) -> bool:
    """Is nothing but the write path running? Catch-up off by the flag, or a release without catch-up."""
    flags = ctx.serve_flags
    return ctx.settings.phase2.burst_catchup_interval_secs == 0 or (
        flags is not None and "catchup-interval-secs" not in flags)


def _retry_probe(ctx: PhaseContext, checks: Checks, facts: dict[str, Any]) -> None:
    """One fan-out attempt fails and nothing else does: node-a's first packet to node-b carrying the probe row's
    title is refused (a TCP reset), later ones pass. The write is acknowledged through node-c; node-b gets the
    row only if the release retries the failed attempt (0.6.2+: once, 250 ms later). Catch-up is off, so
    nothing else can carry it there: 0.6.0 and 0.6.1 leave it missing for good."""
    s = ctx.settings.phase2
    if not s.retry_probe:
        for cid in RETRY_IDS:
            checks.skipped(cid, "the fan-out retry probe", "phase2.retry_probe is off")
        return
    if not _catchup_off(ctx):
        for cid in RETRY_IDS:
            checks.skipped(cid, "the fan-out retry probe", "catch-up runs during the burst "
                           "(burst_catchup_interval_secs), so it, not a retry, could repair the refused fan-out")
        return
    marker = f"retry-probe-{time.time_ns() % 10**12:012d}"
    namespace = f"{s.namespace}-retry"
    deadline = 2 * s.quorum_timeout_ms / 1000 + 0.25 + s.probe_margin_s
    ctx.progress("phase 2: retry probe (node-a's first fan-out packet of one row to node-b refused; "
                 f"expect the row on node-b by a retry within {deadline:g}s)")
    evidence: list[FaultEvidence] = []
    result = RetryProbeResult(marker=marker, deadline_s=deadline)
    try:
        evidence.append(nemesis.refuse_once(ctx.access, ctx.inventory, "node-a", "node-b", marker))
        if evidence[0].took_effect:
            raw = service.agent_json(ctx.access, "chaos", calls.probe(ctx.inventory.peer_url("node-a"), namespace,
                                                                      marker, timeout_s=_client_timeout(ctx)),
                                     timeout=_client_timeout(ctx) + 30)
            result.write = _probe_model(201, raw)
            if raw.get("status") == 201:
                result.delivered_s = _arrivals(ctx, namespace, marker, deadline)
    finally:
        evidence.append(nemesis.heal(ctx.access, ctx.inventory, "node-a", what="refuse"))
    healed = evidence[-1]
    refused = healed.details.get("dropped_packets") if healed.took_effect else None
    result.refused_packets = refused if isinstance(refused, int) else None
    facts["retry_probe"] = result
    facts.setdefault("details", {})["retry_fault"] = [e.model_dump(mode="json") for e in evidence]
    happened = result.refused_packets == 1
    checks.add(RETRY_IDS[0], "node-a's first packet to node-b carrying the row refused, exactly once",
               [e.summary() for e in evidence], True if happened and all(e.took_effect for e in evidence) else None,
               None if happened else f"{result.refused_packets} packets refused: the fault did not happen as "
                                     "designed, so the probe proves nothing")
    write = result.write
    if write is None:
        for cid in RETRY_IDS[1:]:
            checks.skipped(cid, "the fan-out retry probe", "not run: the refuse rule could not be installed")
        return
    checks.add(RETRY_IDS[1], 201, write.status if write.status is not None else write.error, write.status == 201,
               None if write.status == 201 else json.dumps(write.body)[:300] if write.body else write.error)
    if write.status != 201:
        for cid in RETRY_IDS[2:]:
            checks.skipped(cid, "the probe row on node-b and node-c", "not run: the write was not acknowledged")
        return
    for host, cid in (("node-b", RETRY_IDS[2]), ("node-c", RETRY_IDS[3])):
        seconds = result.delivered_s.get(host)
        if host == "node-b" and not happened:
            checks.skipped(cid, "the probe row on node-b after its refused fan-out", "not judged: the fault did "
                           f"not happen as designed ({result.refused_packets} packets refused)")
            continue
        why = (None if seconds is not None else
               f"not on {host} {deadline:g}s after the acknowledgement, with catch-up off: "
               + ("its one fan-out attempt there was refused and never retried" if host == "node-b"
                  else "nothing refused its fan-out there, so the write path itself lost it"))
        checks.add(cid, f"the row on {host} within {deadline:g}s", seconds if seconds is not None else "absent",
                   seconds is not None, why)


def _arrivals(ctx: PhaseContext, namespace: str, title: str, deadline_s: float) -> dict[str, float | None]:
    """Seconds until node-b and node-c each held the row (null: not by the deadline)."""
    hosts = ["node-b", "node-c"]
    conv = checker.poll(lambda: _read(ctx, namespace, hosts), hosts, checker.holds_titles({title}),
                        deadline_s=deadline_s, start=time.monotonic(), interval_s=POLL_INTERVAL_S)
    return {h: conv.node_seconds.get(h) for h in hosts}


def _client_timeout(ctx: PhaseContext) -> float:
    """How long a probe write may take before the client gives up: the judged limit plus 10 s to see a late answer."""
    s = ctx.settings.phase2
    return s.quorum_timeout_ms / 1000 + s.probe_margin_s + 10


def _limit_ms(ctx: PhaseContext) -> float:
    s = ctx.settings.phase2
    return (s.quorum_timeout_ms / 1000 + s.probe_margin_s) * 1000


def _miss_probes(ctx: PhaseContext, namespace: str, prefix: str) -> list[dict]:
    """`quorum_probes` sequential writes that cannot reach quorum; stops after the first one past the limit (a
    hang would otherwise cost the client timeout once per probe)."""
    s = ctx.settings.phase2
    runs: list[dict] = []
    for i in range(1, s.quorum_probes + 1):
        raw = service.agent_json(ctx.access, "chaos", calls.probe(ctx.inventory.peer_url("node-a"), namespace,
                                                                  f"{prefix}-{i}", timeout_s=_client_timeout(ctx)),
                                 timeout=_client_timeout(ctx) + 30)
        raw["title"] = f"{prefix}-{i}"
        runs.append(raw)
        latency = raw.get("latency_ms")
        if not isinstance(latency, (int, float)) or latency > _limit_ms(ctx):
            break
    return runs


def _judge_misses(ctx: PhaseContext, checks: Checks, facts: dict[str, Any], kind: str, runs: list[dict],
                  rule: QuorumMissRule, status_id: str, body_id: str, time_id: str) -> None:
    s = ctx.settings.phase2
    needed = min(s.quorum_writes, len(PEER_NAMES))
    facts.setdefault("probes", {})[status_id.split(".")[0]] = _probe_model(rule.status, runs[0])
    facts.setdefault("probe_runs", {})[kind] = [_probe_model(rule.status, r) for r in runs]
    latencies = [r["latency_ms"] for r in runs if isinstance(r.get("latency_ms"), (int, float))]
    facts.setdefault("probe_latency_ms", {})[kind] = Quantiles.of(latencies)
    stopped = (f"stopped after probe {len(runs)} of {s.quorum_probes}: no answer within the limit"
               if len(runs) < s.quorum_probes else None)
    statuses = [r.get("status") for r in runs]
    wrong = [r for r in runs if r.get("status") != rule.status]
    checks.add(status_id, f"{rule.status} x{s.quorum_probes} ({rule.source})", statuses,
               not wrong and not stopped,
               "; ".join(x for x in (stopped, *(f"{r['title']}: {r.get('body') or r.get('error')}"
                                                for r in wrong[:3])) if x) or None)
    bodies = [_body(r) for r in runs]
    bad_body = next((b for b in bodies if not rule.body_ok(b, needed)), None)
    checks.add(body_id, rule.shape, bad_body if bad_body is not None else bodies[0],
               bad_body is None and all(rule.body_ok(b, needed) for b in bodies))
    limit = _limit_ms(ctx)
    slow = [f"{r['title']}: {r.get('latency_ms')} ms{' (' + str(r.get('error')) + ')' if r.get('error') else ''}"
            for r in runs if not isinstance(r.get("latency_ms"), (int, float)) or r["latency_ms"] > limit]
    checks.add(time_id, f"<= {limit:.0f} ms each (quorum timeout {s.quorum_timeout_ms} ms + {s.probe_margin_s:g} s)",
               max(latencies) if latencies else None, not slow and bool(latencies),
               f"a hang instead of a timely answer: {'; '.join(slow)}" if slow else None)


def _silent_probe(ctx: PhaseContext, checks: Checks, facts: dict[str, Any], rule: QuorumMissRule) -> None:
    """Both peers stay up but say nothing to node-a (iptables DROP both ways, or SIGSTOP): the only failure in
    which the quorum timeout, not a refused connection, has to end the write."""
    s = ctx.settings.phase2
    namespace = f"{s.namespace}-probe3"
    ids = ("probe3.both_peers_silent", "probe3.body", "probe3.within_timeout", "probe3.converged_after_heal")
    ctx.progress(f"phase 2: probe 3 (node-b and node-c silent by {s.silent_fault}; expect {rule.status} within "
                 f"{_limit_ms(ctx):.0f} ms) x{s.quorum_probes}")
    evidence: list[FaultEvidence] = []
    runs: list[dict] = []
    pids: dict[str, int | None] = {}
    try:
        if s.silent_fault == "partition":
            evidence.append(nemesis.partition(ctx.access, ctx.inventory, "node-a", ["node-b", "node-c"]))
        else:
            for host in ("node-b", "node-c"):
                pids[host] = service.serve_pid(ctx.access, host, port=ctx.inventory.federation_port)
                if pids[host] is not None:
                    evidence.append(nemesis.pause(ctx.access, host, pids[host]))
        if len(evidence) == (1 if s.silent_fault == "partition" else 2) and all(e.took_effect for e in evidence):
            runs = _miss_probes(ctx, namespace, "probe3")
    finally:
        if s.silent_fault == "partition":
            evidence.append(nemesis.heal(ctx.access, ctx.inventory, "node-a"))
        else:
            evidence += [nemesis.resume(ctx.access, h, pid) for h, pid in pids.items() if pid is not None]
    facts.setdefault("details", {})["silent_fault"] = [e.model_dump(mode="json") for e in evidence]
    applied = [e for e in evidence if e.kind in ("partition", "pause")]
    lifted = [e for e in evidence if e.kind in ("heal", "resume")]
    dropped = sum(int(str(e.details.get("dropped_packets") or 0)) for e in lifted if e.kind == "heal")
    in_effect = (len(applied) == (1 if s.silent_fault == "partition" else 2) and all(e.took_effect for e in applied)
                 and (s.silent_fault != "partition" or dropped > 0))
    checks.add("probe3.silence_in_effect", f"node-b and node-c silent to node-a ({s.silent_fault}), then lifted",
               [e.summary() for e in evidence], True if in_effect and all(e.took_effect for e in lifted) else None,
               None if in_effect else "the fault could not be established, so probe 3 proves nothing")
    if not runs:
        for cid in ids:
            checks.skipped(cid, "probe 3", "not run: node-b and node-c could not be silenced")
        return
    _judge_misses(ctx, checks, facts, "silent", runs, rule, *ids[:3])
    if not s.repair_catchup_interval_secs:
        checks.skipped(ids[3], "probe 3 rows on every node", "catch-up is off (repair_catchup_interval_secs)")
        return
    seconds, missing = _wait_rows(ctx, {namespace: _kept(runs, rule)}, list(PEER_NAMES), s.convergence_deadline_s)
    facts["details"]["converged_after_heal"] = {"seconds": seconds, "missing": missing}
    checks.add(ids[3], "node-a, node-b and node-c hold every row the silent misses kept", missing or "all present",
               not missing, f"after {seconds}s" if missing else None)


def _kept(runs: list[dict], rule: QuorumMissRule) -> set[str]:
    """Titles of probe writes answered as the documented miss: the product kept each row locally."""
    return {r["title"] for r in runs if r.get("status") == rule.status}


def _wait_rows(ctx: PhaseContext, expected: dict[str, set[str]], hosts: list[str],
               deadline_s: float) -> tuple[float, dict[str, list[str]]]:
    """Poll until every host holds every expected title (of its namespace) or the deadline; (seconds, missing)."""
    wanted = {ns: titles for ns, titles in expected.items() if titles}
    titles = set().union(*wanted.values()) if wanted else set()
    if not titles:
        return 0.0, {}
    conv = checker.poll(lambda: _read_merged(ctx, list(wanted), hosts), hosts, checker.holds_titles(titles),
                        deadline_s=deadline_s, start=time.monotonic(), interval_s=POLL_INTERVAL_S)
    held = {h: {str(r.get("title")) for r in checker.rows_of(conv.reads.get(h)) or []} for h in hosts}
    missing = {h: sorted(titles - held[h]) for h in hosts if titles - held[h]}
    return conv.elapsed_s, missing


def _body(raw: dict[str, Any]) -> Any:
    try:
        return json.loads(raw.get("body") or "")
    except ValueError:
        return None


def _status_text(raw: dict[str, Any]) -> str:
    return str(raw.get("status") if raw.get("status") is not None else raw.get("error"))


def _read_merged(ctx: PhaseContext, namespaces: list[str], hosts: list[str]) -> dict[str, Any]:
    """Every host's rows of several namespaces as one read per host (unreadable if any namespace is)."""
    merged: dict[str, Any] = {h: {"ok": True, "rows": []} for h in hosts}
    for ns in namespaces:
        reads = _read(ctx, ns, hosts)
        for h in hosts:
            node = reads.get(h) or {}
            if not node.get("ok"):
                merged[h] = {"ok": False, "error": node.get("error") or "no answer"}
            elif merged[h]["ok"]:
                merged[h]["rows"] += node.get("rows") or []
    return merged


def _read(ctx: PhaseContext, namespace: str, hosts: list[str]) -> dict[str, Any]:
    nodes = {h: ctx.inventory.peer_url(h) for h in hosts}
    return service.agent_json(ctx.access, "chaos", calls.read(nodes, namespace, page=1000), timeout=60)


def _probe_model(expected: int, raw: dict[str, Any]) -> ProbeResult:
    body: Any = raw.get("body")
    with contextlib.suppress(ValueError):
        body = json.loads(body) if isinstance(body, str) else body
    latency = raw.get("latency_ms")
    return ProbeResult(expected_status=expected, status=raw.get("status") if isinstance(raw.get("status"), int) else None,
                       latency_ms=latency if isinstance(latency, (int, float)) else None, body=body,
                       error=raw.get("error"))


def _status_breakdown(writes: checker.KindTally) -> str | None:
    """The answers that were not acknowledgements, with why the judge did not count them (None: all were)."""
    if not writes.responses:
        return None
    by = {**({"201": writes.ok} if writes.ok else {}), **writes.responses}
    return "responses: " + ", ".join(f"{k} x{v}" for k, v in sorted(by.items()))
