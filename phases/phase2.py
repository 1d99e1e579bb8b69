"""Phase 2: federation. A W=2-of-3 cluster, a truly concurrent multi-agent burst, polled convergence
compared by identity, and the two quorum probes (one peer down -> 201, both down -> fast 503).

Catch-up is off during the burst (by default) so that convergence measures the write path itself:
a fan-out that is cancelled after quorum (the historical r14 bug) leaves rows missing that only a
background repair could hide. The repair path is tested separately, when node-b and node-c come
back after the probes.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

from phases.base import Checks, PhaseContext, Stopwatch, write_history
from shipgate.evidence.models import Phase2Report, ProbeResult, Quantiles
from shipgate.hosts.inventory import PEER_NAMES
from shipgate.target import cluster, service
from shipgate.target.service import WORKDIR, ServeSpec, ServiceError

LETTER = {"node-a": "a", "node-b": "b", "node-c": "c"}


def _spec(ctx: PhaseContext, host: str, catchup: float | None) -> ServeSpec:
    s = ctx.settings.phase2
    others = [ctx.inventory.peer_url(p) for p in PEER_NAMES if p != host]
    return ServeSpec(host=host, port=ctx.inventory.federation_port, db=f"{WORKDIR}/phase2.db", peers=others,
                     quorum_writes=s.quorum_writes, quorum_timeout_ms=s.quorum_timeout_ms,
                     catchup_interval_secs=catchup, flags=ctx.serve_flags)


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
    burst = service.agent(ctx.access, "chaos", [
        "burst", "--url", node_a, "--node", "node-a", "--namespace", s.namespace, "--agents", ",".join(s.agents),
        "--writes", str(s.writes_per_agent), "--timeout", str(s.quorum_timeout_ms / 1000 + 7), "--source", "api",
    ], timeout=max(120.0, len(s.agents) * s.writes_per_agent * 1.0))
    burst_end = time.monotonic()
    if burst.error:
        raise ServiceError("chaos", f"burst agent: {burst.error}")
    history_file = ctx.history_dir / "phase2-burst.jsonl"
    events = [json.loads(line) for line in burst.stdout.splitlines() if line.strip()]
    write_history(history_file, events)
    facts["history"] = [str(history_file.relative_to(ctx.run_dir))]
    done = [e for e in events if e.get("type") != "invoke"]
    ok = [e for e in done if e.get("type") == "ok"]
    facts["total_writes"] = len(done)
    facts["ok"] = len(ok)
    facts["quorum_not_met"] = sum(1 for e in done if e.get("status") == 503)
    facts["indeterminate"] = sum(1 for e in done if e.get("status") is None and e.get("type") == "info")
    facts["fail"] = len(done) - len(ok) - facts["quorum_not_met"] - facts["indeterminate"]
    facts["latency_ms"] = Quantiles.of(e["latency_ms"] for e in ok if isinstance(e.get("latency_ms"), (int, float)))
    expected_total = len(s.agents) * s.writes_per_agent
    checks.add("burst.all_writes_recorded", expected_total, len(done), len(done) == expected_total,
               None if len(done) == expected_total else f"burst agent exit {burst.exit_code}: {burst.stderr[-300:]}")
    checks.add("burst.acknowledged", expected_total, len(ok), len(ok) == expected_total,
               _status_breakdown(done))

    # Convergence, polled until every acknowledged write is on every node (or the deadline).
    ctx.progress(f"phase 2: {len(ok)} acknowledged; polling convergence (deadline {s.convergence_deadline_s:.0f}s)")
    acked = {e["id"]: e["title"] for e in ok}
    attempted = {e["title"] for e in events if e.get("type") == "invoke"}
    conv = poll_convergence(ctx, s.namespace, acked, list(PEER_NAMES), s.convergence_deadline_s,
                            start=burst_end, attempted=attempted)
    facts["counts"] = {LETTER[h]: conv["counts"].get(h) for h in PEER_NAMES}
    facts["time_to_converge_s"] = conv["time_to_converge_s"]
    facts["missing_writes"] = conv["missing"]
    details = facts.setdefault("details", {})
    details.update(unexpected_writes=conv["unexpected"], duplicates=conv["duplicates"],
                   list_anomalies=conv["anomalies"], read_errors=conv["errors"])
    threshold = int(s.min_node_fraction * len(ok))
    for host in PEER_NAMES:
        count = conv["counts"].get(host)
        if count is None:
            checks.error(f"convergence.{host}.count", f">= {threshold}", conv["errors"].get(host, "unreadable"))
            continue
        missing = conv["missing"].get(host, [])
        checks.add(f"convergence.{host}.count", f">= {threshold} (floor {s.min_node_fraction} x ok={len(ok)})",
                   count, count >= threshold and len(ok) > 0,
                   "no write was acknowledged" if not ok else
                   (f"{len(missing)} acknowledged writes missing, e.g. {', '.join(missing[:5])}" if missing else None))
        checks.add(f"convergence.{host}.all_acknowledged", 0, len(missing), not missing,
                   f"missing: {', '.join(missing[:10])}" if missing else None)
        anomalies = conv["anomalies"].get(host, [])
        checks.add(f"list.{host}.honours_limit", "pages honour limit/offset", anomalies or "ok", not anomalies,
                   "; ".join(anomalies) if anomalies else None)
    checks.add("convergence.no_duplicates", 0, sum(len(v) for v in conv["duplicates"].values()),
               not any(conv["duplicates"].values()))
    checks.add("convergence.no_unexpected", 0, sum(len(v) for v in conv["unexpected"].values()),
               not any(conv["unexpected"].values()),
               "rows in the namespace that no write produced" if any(conv["unexpected"].values()) else None)

    if _serving(ctx, checks, "before_probes"):
        _probes(ctx, checks, facts)


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
    s = ctx.settings.phase2
    node_a = ctx.inventory.peer_url("node-a")
    timeout_s = s.quorum_timeout_ms / 1000
    ctx.progress("phase 2: probe 1 (node-b down, expect 201)")
    service.stop_serve(ctx.access, "node-b")
    p1 = service.agent_json(ctx.access, "chaos", ["probe", "--url", node_a, "--namespace", f"{s.namespace}-probe1",
                                                  "--title", "probe1", "--timeout", str(timeout_s + 15)],
                            timeout=timeout_s + 40)
    facts["probe1_single_peer_down"] = str(p1.get("status") if p1.get("status") is not None else p1.get("error"))
    facts.setdefault("probes", {})["probe1"] = _probe_model(201, p1)
    checks.add("probe1.single_peer_down", 201, p1.get("status"), p1.get("status") == 201, p1.get("body") or p1.get("error"))

    ctx.progress("phase 2: probe 2 (node-b and node-c down, expect a fast 503)")
    service.stop_serve(ctx.access, "node-c")
    p2 = service.agent_json(ctx.access, "chaos", ["probe", "--url", node_a, "--namespace", f"{s.namespace}-probe2",
                                                  "--title", "probe2", "--timeout", str(timeout_s + s.probe_margin_s + 10)],
                            timeout=timeout_s + s.probe_margin_s + 40)
    facts["probe2_both_peers_down"] = str(p2.get("status") if p2.get("status") is not None else p2.get("error"))
    facts["probes"]["probe2"] = _probe_model(503, p2)
    try:
        body = json.loads(p2.get("body") or "")
    except ValueError:
        body = None
    checks.add("probe2.both_peers_down", 503, p2.get("status"), p2.get("status") == 503, p2.get("body") or p2.get("error"))
    checks.add("probe2.body", {"error": "quorum_not_met", "needed": s.quorum_writes},
               body, isinstance(body, dict) and body.get("error") == "quorum_not_met"
               and body.get("needed") == s.quorum_writes and isinstance(body.get("got"), int))
    limit_ms = (timeout_s + s.probe_margin_s) * 1000
    checks.add("probe2.fast", f"<= {limit_ms:.0f} ms", p2.get("latency_ms"),
               isinstance(p2.get("latency_ms"), (int, float)) and p2["latency_ms"] <= limit_ms,
               "a hang instead of a fast 503" if (p2.get("latency_ms") or 0) > limit_ms else None)

    # Repair: node-b and node-c come back (catch-up on) and must receive both probes' rows.
    ctx.progress("phase 2: restarting node-b and node-c; checking catch-up")
    for host in ("node-b", "node-c"):
        service.start_serve(ctx.access, _spec(ctx, host, s.repair_catchup_interval_secs))
    bad = {h: w for h, w in service.wait_healthy(ctx.access, ctx.inventory, ["node-b", "node-c"]).items() if w}
    if bad:
        raise ServiceError(next(iter(bad)), f"not healthy after restart: {next(iter(bad.values()))}")
    # Probe 1 was acknowledged while node-b was down; probe 2 was refused (503) but node-a kept the
    # row. Both must reach node-b and node-c through catch-up.
    expected = {f"{s.namespace}-probe1": "probe1"}
    if p2.get("status") == 503:
        expected[f"{s.namespace}-probe2"] = "probe2"
    if p1.get("status") != 201:
        checks.skipped("catchup.after_restart", "probe rows on node-b and node-c", "probe 1 was not acknowledged")
        return
    deadline = time.monotonic() + s.convergence_deadline_s
    catch: dict[str, Any] = {}
    t0 = time.monotonic()
    missing_now: dict[str, list[str]] = {}
    while True:
        missing_now = {}
        for ns, title in expected.items():
            conv = _read(ctx, ns, ["node-b", "node-c"])
            for host in ("node-b", "node-c"):
                node = conv.get(host) or {}
                titles = {r.get("title") for r in node.get("rows", [])} if node.get("ok") else set()
                if title not in titles:
                    missing_now.setdefault(host, []).append(title)
        if not missing_now or time.monotonic() >= deadline:
            break
        time.sleep(0.25)  # poll interval
    catch["seconds"] = round(time.monotonic() - t0, 3)
    catch["missing"] = missing_now
    facts.setdefault("details", {})["catchup_after_restart"] = catch
    checks.add("catchup.after_restart", "node-b and node-c hold the probe rows", missing_now or "all present",
               not missing_now, f"after {catch['seconds']}s" if missing_now else None)


def _read(ctx: PhaseContext, namespace: str, hosts: list[str]) -> dict[str, Any]:
    nodes = ",".join(f"{h}={ctx.inventory.peer_url(h)}" for h in hosts)
    return service.agent_json(ctx.access, "chaos", ["read", "--nodes", nodes, "--namespace", namespace,
                                                    "--page", "1000"], timeout=60)


def poll_convergence(ctx: PhaseContext, namespace: str, acked: dict[str, str], hosts: list[str],
                     deadline_s: float, *, start: float, attempted: set[str]) -> dict[str, Any]:
    """Read every node until each holds every acknowledged write (by id), or the deadline passes.

    Returns counts, per-node missing titles, unexpected rows, duplicate titles, list anomalies and
    time-to-converge per node (seconds after `start`, None when it never converged). A row no
    attempted write produced is unexpected; a 503'd write that surfaces is not (503 keeps the row)."""
    deadline = time.monotonic() + deadline_s
    converged_at: dict[str, float | None] = dict.fromkeys(hosts)
    last: dict[str, Any] = {}
    while True:
        last = _read(ctx, namespace, hosts)
        for host in hosts:
            node = last.get(host) or {}
            if converged_at[host] is None and node.get("ok"):
                ids = {r.get("id") for r in node["rows"]}
                if all(i in ids for i in acked):
                    converged_at[host] = round(time.monotonic() - start, 3)
        if all(v is not None for v in converged_at.values()) or time.monotonic() >= deadline:
            break
        time.sleep(0.25)  # poll interval
    counts: dict[str, int | None] = {}
    missing: dict[str, list[str]] = {}
    unexpected: dict[str, list[str]] = {}
    duplicates: dict[str, list[str]] = {}
    anomalies: dict[str, list[str]] = {}
    errors: dict[str, str] = {}
    for host in hosts:
        node = last.get(host) or {}
        if not node.get("ok"):
            counts[host] = None
            errors[host] = str(node.get("error") or "no answer")
            continue
        rows = node["rows"]
        counts[host] = len(rows)
        ids = {r.get("id") for r in rows}
        missing[host] = sorted(title for i, title in acked.items() if i not in ids)
        titles = [r.get("title") for r in rows]
        duplicates[host] = sorted({t for t in titles if titles.count(t) > 1})
        unexpected[host] = sorted(str(t) for t in titles if t not in attempted)
        anomalies[host] = node.get("anomalies", [])
    return {"counts": counts, "missing": missing, "unexpected": unexpected, "duplicates": duplicates,
            "anomalies": anomalies, "errors": errors, "time_to_converge_s": converged_at}


def _probe_model(expected: int, raw: dict[str, Any]) -> ProbeResult:
    body: Any = raw.get("body")
    with contextlib.suppress(ValueError):
        body = json.loads(body) if isinstance(body, str) else body
    latency = raw.get("latency_ms")
    return ProbeResult(expected_status=expected, status=raw.get("status") if isinstance(raw.get("status"), int) else None,
                       latency_ms=latency if isinstance(latency, (int, float)) else None, body=body,
                       error=raw.get("error"))


def _status_breakdown(done: list[dict]) -> str | None:
    by: dict[str, int] = {}
    for e in done:
        key = str(e.get("status") or e.get("error"))
        if e.get("type") != "ok" and e.get("status") is not None and e.get("error"):
            key += f" ({str(e['error'])[:80]})"  # a 201 that is not an acknowledgement says why
        by[key] = by.get(key, 0) + 1
    if set(by) <= {"201"}:
        return None
    return "responses: " + ", ".join(f"{k} x{v}" for k, v in sorted(by.items()))

