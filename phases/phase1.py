"""Phase 1: functional checks on every peer, the three in parallel.

Upstream checked store / recall / stats / backup counts / curator / MCP tool count / version. We
also prove the backup is the database (sha256 against the manifest, restore gives the same rows),
make one real MCP `tools/call` and compare it with the CLI, and check that a write made through
`serve` survives a restart of `serve`.
"""

from __future__ import annotations

import contextlib
import json
import shlex
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from phases.base import Checks, PhaseContext, Stopwatch, cli, host_unreachable
from shipgate.client import calls, output
from shipgate.evidence.models import BackupEvidence, CuratorReport, Phase1NodeReport, Stats
from shipgate.hosts.inventory import PEER_NAMES
from shipgate.target import service, startup
from shipgate.target.service import WORKDIR, ServeSpec, ServiceError

NAMESPACE = "ship-gate-phase1"
NO_LLM = "no LLM client configured"

# Rows of a SQLite database as a digest, so "restores to the same rows" is a real comparison.
ROWS_DIGEST = (
    "import hashlib,json,sqlite3,sys\n"
    "out={}\n"
    "for p in sys.argv[1:]:\n"
    "    c=sqlite3.connect('file:'+p+'?mode=ro',uri=True)\n"
    "    rows=c.execute('select id,title,namespace,content from memories order by id').fetchall()\n"
    "    out[p]={'rows':len(rows),'digest':hashlib.sha256(json.dumps(rows).encode()).hexdigest()}\n"
    "print(json.dumps(out))\n"
)


def run(ctx: PhaseContext) -> list[Any]:
    """One report per peer (phase1-node-a.json ...).

    An interruption (Ctrl-C, SIGTERM) does not wait for the nodes' current commands, which may hang until
    their own timeouts: CI runners send SIGKILL seconds after SIGINT, and the teardown must come first."""
    pool = ThreadPoolExecutor(len(PEER_NAMES))
    try:
        return list(pool.map(lambda h: run_node(ctx, h), PEER_NAMES))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def run_node(ctx: PhaseContext, host: str) -> Any:
    s = ctx.settings.phase1
    watch = Stopwatch()
    checks = Checks()
    hostname = ctx.hostname(host)
    facts: dict[str, Any] = {"host": hostname}
    try:
        _node_steps(ctx, host, checks, facts)
    except _HostGone as gone:
        checks.error("host.reachable", True, f"{host}: {gone}")
    except ServiceError as exc:
        checks.error("serve.restart_survival", True, str(exc))
    finally:
        _cleanup(ctx, host)
    ctx.progress(f"phase 1 {host}: {checks.passed()}/{len(checks)} checks pass")
    return Phase1NodeReport.from_checks(checks.items, timing=watch.timing(), settings=s.model_dump(mode="json"), node=host,
                                        target=ctx.target_ref(), **facts)


class _HostGone(RuntimeError):
    pass


def _run(ctx: PhaseContext, host: str, command: str, timeout: float = 60, stdin: str | None = None):
    res = ctx.access.run(host, command, timeout=timeout, stdin=stdin)
    if host_unreachable(res):
        raise _HostGone(res.error or "unreachable")
    return res


def _node_steps(ctx: PhaseContext, host: str, checks: Checks, facts: dict[str, Any]) -> None:
    s = ctx.settings.phase1
    hostname = facts["host"]
    db = f"{WORKDIR}/phase1.db"
    backup_dir = f"{WORKDIR}/phase1-backup"
    scratch = f"{WORKDIR}/phase1-restored.db"
    _run(ctx, host, f"mkdir -p {WORKDIR} && rm -rf {db} {db}-wal {db}-shm {backup_dir} {scratch}*", timeout=20)

    # version
    res = _run(ctx, host, "cat /etc/ai-memory/version 2>/dev/null || ai-memory --version", timeout=20)
    version = res.stdout.strip().splitlines()[0] if res.ok and res.stdout.strip() else None
    facts["version"] = version
    checks.add("version", "ai-memory <semver>", version,
               None if version is None else version.startswith("ai-memory "),
               None if version else f"exit {res.exit_code}: {res.stderr.strip()[-200:]}")

    # store
    content = f"functional check on {hostname}"
    res = _run(ctx, host, cli(db, "store", "--title", f"phase1-{hostname}", "--content", content,
                              "--tier", "mid", "--namespace", NAMESPACE, "--json"))
    stored, why = output.document(res)
    raw_id = stored.get("id") if isinstance(stored, dict) else None
    mem_id = raw_id if isinstance(raw_id, str) and raw_id else None
    checks.add("store", "exit 0 with the stored memory's id", raw_id, None if why else bool(mem_id),
               why or (None if mem_id else f"no string id in the store JSON (id is {type(raw_id).__name__})"))

    _recall_checks(ctx, host, checks, facts, db, content, mem_id)

    # stats
    res = _run(ctx, host, cli(db, "stats", "--json"))
    stats, why = output.document(res)
    if isinstance(stats, dict) and isinstance(stats.get("total"), int):
        facts["stats"] = checks.model(stats, Stats, "stats")
        checks.add("stats.total", ">= 1", stats["total"], stats["total"] >= 1)
    else:
        checks.error("stats.total", ">= 1", why or f"no integer total in {str(stats)[:200]}")

    _backup_checks(ctx, host, checks, facts, db, backup_dir, scratch)

    # curator
    res = _run(ctx, host, cli(db, "curator", "--once", "--dry-run", "--max-ops", "10", "--json"))
    curator, why = output.document(res)
    if isinstance(curator, dict) and isinstance(curator.get("errors"), list):
        facts["curator"] = checks.model(curator, CuratorReport, "curator")
        errs = curator["errors"]
        checks.add("curator.errors", f"<= 1, and only {NO_LLM!r}", errs,
                   len(errs) == 0 or (len(errs) == 1 and errs[0] == NO_LLM))
    else:
        checks.error("curator.errors", "<= 1", why or "no errors list in the curator report")

    caps = ctx.capabilities
    profile = s.mcp_profile if caps is None or caps.has("mcp", "profile") else ""
    _mcp_checks(ctx, host, checks, facts, db, mem_id, f"phase1-{hostname}", s.tool_count_min, profile)
    _restart_checks(ctx, host, checks, facts)


def _recall_checks(ctx: PhaseContext, host: str, checks: Checks, facts: dict[str, Any], db: str, content: str,
                   mem_id: str | None) -> None:
    """Recall at the release's default tier must answer within `recall_deadline_s`: a CLI that never returns
    (real 0.6.3 deadlocks when its embedder cannot load with no egress) is a product failure the gate has
    established, not a fact it could not establish. The result is then judged at the keyword tier when the
    default one hung and the release has `--tier`, so a hang never hides whether recall finds what was stored."""
    deadline = ctx.settings.phase1.recall_deadline_s
    res = _run(ctx, host, cli(db, "recall", content, "--limit", "5", "--json"), timeout=deadline)
    hung = bool(res.error) and res.error.startswith("timeout")
    checks.add("recall.answers", f"an answer within {deadline:g} s", res.error if hung else f"exit {res.exit_code}",
               not hung, "recall at the default tier did not answer (killed at the deadline); real releases "
               "(0.6.3 to 0.10.0 measured) deadlock there when the embedding model cannot be downloaded"
               if hung else None)
    tier = None
    caps = ctx.capabilities
    if hung and (caps is None or caps.has("recall", "tier")):
        tier = "keyword"
        res = _run(ctx, host, cli(db, "recall", content, "--limit", "5", "--tier", tier, "--json"), timeout=deadline)
    facts["recall_tier"] = tier
    recalled, why = output.document(res)
    mems = recalled.get("memories") if isinstance(recalled, dict) else None
    on = f" (tier {tier}: the default tier hung)" if tier else None
    if isinstance(mems, list):
        facts["recall_count"] = len(mems)
        found = any(isinstance(m, dict) and m.get("id") == mem_id for m in mems)
        checks.add("recall.count", ">= 1", len(mems), len(mems) >= 1, on)
        checks.add("recall.finds_stored", mem_id, [m.get("id") for m in mems if isinstance(m, dict)], found, on)
    elif hung and tier is None:
        facts["recall_count"] = 0
        checks.skipped("recall.count", ">= 1", "recall hung and the target has no --tier to retry with")
    else:
        facts["recall_count"] = 0
        checks.error("recall.count", ">= 1", (why or "no memories list in the recall JSON") + (on or ""))


def _backup_checks(ctx: PhaseContext, host: str, checks: Checks, facts: dict[str, Any], db: str,
                   backup_dir: str, scratch: str) -> None:
    res = _run(ctx, host, cli(db, "backup", "--to", backup_dir, "--keep", "1"))
    if not res.ok:
        checks.add("backup.runs", "exit 0", f"exit {res.exit_code}", False if not res.error else None,
                   (res.error or res.stderr.strip())[-300:])
    listing = _run(ctx, host, (
        f"cd {backup_dir} 2>/dev/null || exit 0; "
        "for f in ai-memory-*.db; do [ -e \"$f\" ] && echo \"snap $f $(sha256sum \"$f\" | cut -d' ' -f1)\"; done; "
        "for f in ai-memory-*.manifest.json; do [ -e \"$f\" ] && echo \"manifest $f\"; done; true"))
    # "snap <file name, which may hold spaces> <sha256>" and "manifest <file name>"
    snaps = [line[len("snap "):].rsplit(" ", 1) for line in listing.stdout.splitlines() if line.startswith("snap ")]
    manifests = [line[len("manifest "):] for line in listing.stdout.splitlines() if line.startswith("manifest ")]
    facts["snapshot_count"] = len(snaps)
    facts["manifest_count"] = len(manifests)
    checks.add("backup.snapshot_count", 1, len(snaps), len(snaps) == 1)
    checks.add("backup.manifest_count", 1, len(manifests), len(manifests) == 1)
    if len(snaps) != 1 or len(manifests) != 1:
        checks.skipped("backup.sha256_matches_manifest", "manifest sha256 == sha256(snapshot)",
                       "needs exactly one snapshot and one manifest")
        checks.skipped("backup.restores_same_rows", "same rows", "needs exactly one snapshot and one manifest")
        return
    snap_name, snap_sha = (snaps[0] + [""])[:2]
    res = _run(ctx, host, f"cat {shlex.quote(backup_dir + '/' + manifests[0])}")
    try:
        manifest = json.loads(res.stdout)
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict):
        checks.add("backup.sha256_matches_manifest", snap_sha, res.stdout[:200], False, "manifest is not JSON")
    else:
        facts["backup"] = BackupEvidence(
            snapshot=snap_name, manifest=manifests[0], actual_sha256=snap_sha,
            manifest_sha256=manifest.get("sha256") if isinstance(manifest.get("sha256"), str) else None,
            bytes=manifest.get("bytes") if isinstance(manifest.get("bytes"), int) else None)
        same_name = manifest.get("snapshot") == snap_name
        same_sha = manifest.get("sha256") == snap_sha
        checks.add("backup.sha256_matches_manifest", snap_sha, manifest.get("sha256"), same_sha and same_name,
                   None if same_sha and same_name else
                   f"the manifest names {manifest.get('snapshot')!r}, the snapshot is {snap_name!r}" if not same_name
                   else f"sha256 of {snap_name} differs from the manifest's: the manifest does not describe the snapshot")
    res = _run(ctx, host, cli(scratch, "restore", "--from", f"{backup_dir}/{snap_name}"))
    if not res.ok:
        checks.add("backup.restores_same_rows", "restore exit 0", f"exit {res.exit_code}",
                   None if res.error else False, (res.error or res.stderr.strip())[-300:])
        return
    res = _run(ctx, host, f"python3 -c {shlex.quote(ROWS_DIGEST)} {db} {scratch}")
    try:
        digests = json.loads(res.stdout)
        src, dst = digests[db], digests[scratch]
        checks.add("backup.restores_same_rows", src, dst, src == dst)
    except (ValueError, KeyError, TypeError):
        checks.error("backup.restores_same_rows", "same rows", f"cannot read the databases: {res.stderr[-300:]}")


def _mcp_checks(ctx: PhaseContext, host: str, checks: Checks, facts: dict[str, Any], db: str,
                mem_id: str | None, title: str, tool_min: int, profile: str) -> None:
    call = {"name": "memory_get", "arguments": {"id": mem_id}} if mem_id else None
    res = service.agent(ctx.access, host, calls.mcp(db, profile=profile, timeout_s=20, call=call), timeout=40)
    facts["mcp_profile_requested"] = profile or None
    doc, why = output.agent_object(res, "host agent mcp")
    if doc is None:
        checks.error("mcp.tool_count", f">= {tool_min}", str(why))
        return
    init = _obj(doc.get("initialize"))
    server = _obj(_obj(init.get("result")).get("serverInfo")).get("name")
    checks.add("mcp.initialize", "serverInfo.name == 'ai-memory'", server, server == "ai-memory",
               (doc.get("error") or f"initialize reply: {json.dumps(init)[:200]}") if server is None else None)
    names = doc.get("tool_names")
    if isinstance(names, list):
        facts["mcp_tool_count"] = len(names)
        facts["mcp_tool_names"] = [str(n) for n in names]
        checks.add("mcp.tool_count", f">= {tool_min}", len(names), len(names) >= tool_min,
                   f"asked for profile {profile!r} via AI_MEMORY_PROFILE" if profile else None)
    else:
        facts["mcp_tool_count"] = 0
        checks.error("mcp.tool_count", f">= {tool_min}", doc.get("error") or "no tools/list reply")
    if not call:
        checks.skipped("mcp.tools_call_agrees_with_cli", title, "no memory id from the CLI store")
        return
    reply = _obj(doc.get("call_reply"))
    content = _obj(reply.get("result")).get("content")
    text = ""
    for part in content if isinstance(content, list) else []:
        if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
            text += part["text"]
    try:
        got = json.loads(text)
    except ValueError:
        got = None
    got_title = _find_title(got)
    checks.add("mcp.tools_call_agrees_with_cli", title, got_title if got_title else (reply.get("error") or text[:200]),
               got_title == title if (got is not None or "error" in reply) else None,
               None if got is not None else doc.get("error"))


def _obj(value: Any) -> dict:
    """A JSON object from the target, or {} when it sent another type (a wrong type is a finding, not a crash)."""
    return value if isinstance(value, dict) else {}


def _find_title(doc: Any) -> str | None:
    """memory_get answers with the memory, or with {memory: ..., links: ...}."""
    if isinstance(doc, dict):
        if isinstance(doc.get("title"), str):
            return doc["title"]
        for key in ("memory", "result"):
            if isinstance(doc.get(key), dict) and isinstance(doc[key].get("title"), str):
                return doc[key]["title"]
    return None


def _restart_checks(ctx: PhaseContext, host: str, checks: Checks, facts: dict[str, Any]) -> None:
    """A write acknowledged by serve is still there after serve restarts (SIGTERM, then start)."""
    s = ctx.settings.phase1
    spec = ServeSpec(host=host, port=s.serve_port, db=f"{WORKDIR}/phase1-serve.db", name="phase1",
                     **startup.serve_options(ctx))
    ctx.access.run(host, f"rm -f {spec.db} {spec.db}-wal {spec.db}-shm", timeout=20)
    url = f"http://{ctx.inventory.hosts[host].private_address}:{s.serve_port}"
    title = f"restart-{ctx.hostname(host)}"
    service.start_serve(ctx.access, spec)
    try:
        bad = service.wait_healthy(ctx.access, ctx.inventory, [host], deadline_s=s.health_deadline_s, port=s.serve_port)
        if bad[host]:
            checks.error("serve.restart_survival", "write present after restart", f"serve not healthy: {bad[host]}")
            return
        probe = service.agent_json(ctx.access, "chaos", calls.probe(url, NAMESPACE, title, timeout_s=10), timeout=30)
        try:
            written_id = json.loads(probe.get("body") or "{}").get("id") if probe.get("status") == 201 else None
        except ValueError:
            written_id = None
        if not written_id:
            checks.add("serve.write", 201, probe.get("status"), False, str(probe.get("body") or probe.get("error"))[:300])
            return
        service.stop_serve(ctx.access, host, port=s.serve_port, name="phase1")
        service.start_serve(ctx.access, spec)
        bad = service.wait_healthy(ctx.access, ctx.inventory, [host], deadline_s=s.health_deadline_s, port=s.serve_port)
        if bad[host]:
            checks.add("serve.restart_survival", "healthy after restart", bad[host], False)
            return
        read = service.agent_json(ctx.access, "chaos", calls.read({host: url}, NAMESPACE), timeout=30)
        node = read.get(host) or {}
        if not node.get("ok"):
            checks.error("serve.restart_survival", written_id, f"cannot list after restart: {node.get('error')}")
            return
        ids = [r.get("id") for r in node.get("rows", [])]
        checks.add("serve.restart_survival", written_id, ids, written_id in ids)
    finally:
        service.stop_serve(ctx.access, host, port=s.serve_port, name="phase1")


def _cleanup(ctx: PhaseContext, host: str) -> None:
    with contextlib.suppress(ServiceError):
        service.stop_serve(ctx.access, host, port=ctx.settings.phase1.serve_port, name="phase1")
