"""Build realistic run folders through the artifact models: passing, failing and error campaigns.

Every file is written by the models (so it is what the gate itself would write) and the campaign
verdict is computed from the files on disk by shipgate.evidence.verdict, exactly as the gate does. Histories are
generated from a seeded RNG: a burst of writes for phase 2 and, for phase 4, one operation history per
chaos cycle plus a cycles file per fault class, with fault windows inside the cycles.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from shipgate.evidence.atomic import write_json, write_text
from shipgate.evidence.models import (
    CampaignSummary,
    Check,
    ContentComparison,
    CycleRecord,
    FaultResult,
    InventoryRecord,
    MigrateReport,
    OperationEvent,
    Phase1NodeReport,
    Phase2Report,
    Phase3Report,
    Phase4Report,
    ProbeResult,
    Quantiles,
    Stats,
    TargetRef,
    Timing,
    VerdictScope,
)
from shipgate.evidence.validate import verdict_for_run
from shipgate.hosts.inventory import Host, Inventory, PostgresEndpoint, SshSettings, Target
from shipgate.run.settings import load_settings

REFPEER = TargetRef(kind="refpeer", version="ai-memory 0.6.3", git_ref="v0.6.3", commit="0123456789abcdef")

Kind = Literal["pass", "fail", "error"]
FAULTS = ("kill_primary_mid_write", "partition_minority", "drop_random_acks", "clock_skew_peer")
AGENTS = ("ai:agent-alice", "ai:agent-bob", "ai:agent-charlie", "ai:agent-dana")


@dataclass
class Built:
    """What a built folder holds, so tests can compare the rendering with the data."""

    run_dir: Path
    kind: Kind
    verdict: str
    completions: dict[str, int] = field(default_factory=dict)  # history file -> completed client writes
    cycles: dict[str, int] = field(default_factory=dict)  # fault -> cycle records
    failing_checks: list[str] = field(default_factory=list)
    error_checks: list[str] = field(default_factory=list)

    @property
    def total_completions(self) -> int:
        return sum(self.completions.values())


def _inventory(campaign_id: str, created: datetime) -> InventoryRecord:
    hosts = {
        name: Host(name=name, hostname=f"{campaign_id[:40]}-{name}", public_address=f"10.231.0.{10 + i}",
                   private_address=f"10.232.0.{10 + i}")
        for i, name in enumerate(("node-a", "node-b", "node-c", "chaos"))
    }
    inv = Inventory(
        campaign_id=campaign_id, provider="lab", created_at=created, hosts=hosts,
        ssh=SshSettings(key_path=Path("/tmp/lab/id_ed25519"), known_hosts=Path("/tmp/lab/known_hosts")),
        postgres=PostgresEndpoint(host="10.232.0.20", database="ai_memory", user="ai_memory", password="s3cret-pw"),
        target=Target(kind="refpeer", path=Path("/opt/refpeer/ai-memory"), version="ai-memory 0.6.3",
                      git_ref="v0.6.3"),
        vpc_cidr="10.232.0.0/24",
    )
    return InventoryRecord.from_inventory(inv)


def _timing(t: datetime, seconds: float) -> Timing:
    return Timing(started_at=t, finished_at=t + timedelta(seconds=seconds), duration_s=seconds)


def _phase1(node: str, t: datetime, campaign_id: str) -> Phase1NodeReport:
    checks = [
        Check.of(f"{node}.version", "ai-memory 0.6.3", "ai-memory 0.6.3", True),
        Check.of(f"{node}.store", 201, 201, True),
        Check.of(f"{node}.recall_count", ">= 1", 1, True),
        Check.of(f"{node}.backup.sha256_matches_manifest", True, True, True),
        Check.of(f"{node}.mcp.tools_list", ">= 30", 51, True),
        Check.of(f"{node}.restart_keeps_writes", 1, 1, True),
    ]
    return Phase1NodeReport.from_checks(
        checks, host=f"{campaign_id[:40]}-{node}", node=node, version="ai-memory 0.6.3",
        stats=Stats(total=1, by_tier=[], by_namespace=[], expiring_soon=0, links_count=0, db_size_bytes=139264),
        mcp_tool_count=51, recall_count=1, snapshot_count=1, manifest_count=1,
        timing=_timing(t, 3.2), settings={"tool_count_min": 30},
    )


def _burst(rng: random.Random, t0: float, writes_per_agent: int, *, fault: str | None = None,
           cycle: int | None = None, slow: tuple[float, float] | None = None,
           fail_rate: float = 0.0) -> list[dict[str, Any]]:
    """Concurrent agents writing sequentially; `slow` is a window of higher latency (a fault)."""
    events: list[dict[str, Any]] = []
    for agent in AGENTS:
        t = t0 + rng.random() * 0.01
        for seq in range(writes_per_agent):
            latency = rng.lognormvariate(1.6, 0.4)
            if slow and slow[0] <= t <= slow[1]:
                latency += rng.uniform(200, 900)
            base: dict[str, Any] = {"process": agent, "op": "write", "title": f"{agent}-{seq}",
                                    "namespace": "ns", "node": "node-a", "agent": agent}
            if fault:
                base.update(fault=fault, cycle=cycle)
            events.append({**base, "type": "invoke", "time": t})
            t += latency / 1000
            r = rng.random()
            if r < fail_rate:
                done = {"type": "fail", "status": 503, "error": "quorum_not_met"}
            elif r < fail_rate * 1.3:
                done = {"type": "info", "error": "timeout"}
            else:
                done = {"type": "ok", "status": 201, "id": f"{agent}-{seq}-{rng.getrandbits(32):08x}"}
            events.append({**base, **done, "time": t, "latency_ms": round(latency, 3)})
            t += rng.uniform(0.0005, 0.002)
    events.sort(key=lambda e: e["time"])
    return events


def _write_history(path: Path, events: list[dict[str, Any]]) -> int:
    lines = [OperationEvent.model_validate({**e, "index": i}).model_dump_json(exclude_none=True)
             for i, e in enumerate(events)]
    write_text(path, "".join(line + "\n" for line in lines))
    return sum(1 for e in events if e["type"] != "invoke" and e["op"] == "write")


def _phase2(run_dir: Path, kind: Kind, rng: random.Random, t: datetime, built: Built,
            writes_per_agent: int) -> Phase2Report:
    events = _burst(rng, t.timestamp(), writes_per_agent, fail_rate=0.0 if kind == "pass" else 0.02)
    rel = "history/phase2-burst.jsonl"
    built.completions[rel] = _write_history(run_dir / rel, events)
    done = [e for e in events if e["type"] != "invoke"]
    ok = [e for e in done if e["type"] == "ok"]
    n_ok = len(ok)
    missing_c = [e["title"] for e in ok[:7]] if kind == "fail" else []
    counts: dict[str, int | None] = {"a": n_ok, "b": n_ok, "c": n_ok - len(missing_c)}
    ttc: dict[str, float | None] = {"node-a": 0.05, "node-b": round(rng.uniform(0.2, 1.5), 3),
                                    "node-c": None if kind == "fail" else round(rng.uniform(0.2, 2.0), 3)}
    checks = [Check.of("burst.all_writes_recorded", len(events) // 2, len(done), True)]
    for node, letter in (("node-a", "a"), ("node-b", "b"), ("node-c", "c")):
        if kind == "error" and node == "node-b":
            checks.append(Check.error(f"convergence.{node}.count", f">= {int(0.95 * n_ok)}",
                                      "connect: node-b unreachable (SSH exit 255)"))
            ttc[node] = None
            counts[letter] = None
            continue
        count = counts[letter]
        checks.append(Check.of(f"convergence.{node}.count", f">= {int(0.95 * n_ok)}", count,
                               count is not None and count >= int(0.95 * n_ok)))
        missing = missing_c if node == "node-c" else []
        checks.append(Check.of(f"convergence.{node}.all_acknowledged", 0, len(missing), not missing,
                               f"missing: {', '.join(missing)}" if missing else None))
    checks.append(Check.of("probe1.single_peer_down", 201, 201, True))
    checks.append(Check.of("probe2.both_peers_down", 503, 503, True))
    return Phase2Report.from_checks(
        checks, total_writes=len(done), ok=n_ok, quorum_not_met=sum(e["type"] == "fail" for e in done),
        fail=0, indeterminate=sum(e["type"] == "info" for e in done), counts=counts,
        probe1_single_peer_down="201", probe2_both_peers_down="503", agents=list(AGENTS),
        missing_writes={"node-c": missing_c} if missing_c else {}, time_to_converge_s=ttc,
        converge_deadline_s=90.0, latency_ms=Quantiles.of(e["latency_ms"] for e in ok),
        probes={"probe1": ProbeResult(expected_status=201, status=201, latency_ms=12.5),
                "probe2": ProbeResult(expected_status=503, status=503, latency_ms=3004.1,
                                      body={"error": "quorum_not_met"})},
        history=[rel], timing=_timing(t, 41.0), settings={"quorum_writes": 2, "writes_per_agent": writes_per_agent},
    )


def _phase3(t: datetime) -> Phase3Report:
    def leg(src: str, dst: str) -> MigrateReport:
        return MigrateReport(from_url=src, to_url=dst, memories_read=1000, memories_written=1000, batches=2,
                             errors=[], dry_run=False)

    pg = "postgres://ai_memory:hunter2@10.232.0.20:5432/ai_memory"
    checks = [Check.of("forward.written", 1000, 1000, True), Check.of("idempotent.written", 1000, 1000, True),
              Check.of("reverse.written", 1000, 1000, True), Check.of("roundtrip.content_identical", 1000, 1000, True)]
    return Phase3Report.from_checks(
        checks, report_forward=leg("sqlite:///tmp/src.db", pg), report_idempotent=leg("sqlite:///tmp/src.db", pg),
        report_reverse=leg(pg, "sqlite:///tmp/rt.db"), src_count=1000, dst_count=1000, seeded=1000,
        content={"roundtrip": ContentComparison(compared=1000, identical=1000)}, timing=_timing(t, 12.4),
    )


def _phase4(run_dir: Path, kind: Kind, rng: random.Random, t: datetime, built: Built,
            cycles: int, writes: int) -> Phase4Report:
    faults: dict[str, FaultResult] = {}
    bounds: dict[str, float | None] = {}
    checks: list[Check] = []
    now = t.timestamp()
    for fault in FAULTS:
        records: list[CycleRecord] = []
        fault_events: list[dict[str, Any]] = []
        rel = f"history/phase4-{fault}.jsonl"  # the gate's layout: one history and one cycles file per class
        cycles_rel = f"history/phase4-{fault}-cycles.jsonl"
        lost_all: list[str] = []
        for cycle in range(1, cycles + 1):
            start = now
            f0, f1 = start + 0.05, start + 0.55
            per_agent = max(1, writes // len(AGENTS))
            events = _burst(rng, start, per_agent, fault=fault, cycle=cycle, slow=(f0, f1), fail_rate=0.01)
            nemesis = {"process": "nemesis", "op": "start-fault", "fault": fault, "cycle": cycle}
            events += [{**nemesis, "type": "invoke", "time": f0}, {**nemesis, "type": "info", "time": f0 + 0.01},
                       {**nemesis, "op": "heal", "type": "invoke", "time": f1},
                       {**nemesis, "op": "heal", "type": "info", "time": f1 + 0.01}]
            events.sort(key=lambda e: e["time"])
            fault_events += events
            done = [e for e in events if e["type"] != "invoke" and e["op"] == "write"]
            ok = [e for e in done if e["type"] == "ok"]
            lost = [ok[0]["title"], ok[1]["title"]] if (kind == "fail" and fault == "partition_minority"
                                                         and cycle == 3) else []
            lost_all.extend(lost)
            applied = not (kind == "error" and fault == "clock_skew_peer")
            status = "fail" if lost else ("pass" if applied else "error")
            n_ok = len(ok)
            records.append(CycleRecord(
                cycle=cycle, fault=fault, writes=len(done), ok=n_ok,
                quorum_not_met=sum(e["type"] == "fail" for e in done), fail=0,
                indeterminate=sum(e["type"] == "info" for e in done), namespace=f"chaos-{fault}-{cycle}",
                status=status, fault_started_at=f0, fault_healed_at=f1, fault_applied=applied,
                fault_evidence=["iptables DROP counter 12"] if applied else [],
                counts={"node-a": n_ok, "node-b": n_ok - len(lost), "node-c": n_ok}, lost=lost,
                converged=True, time_to_converge_s=round(rng.uniform(0.1, 1.2), 3), history=rel,
            ))
            now = max(e["time"] for e in events) + 0.3
        built.completions[rel] = _write_history(run_dir / rel, fault_events)
        write_text(run_dir / cycles_rel,
                   "".join(r.model_dump_json(exclude_none=True) + "\n" for r in records))
        built.cycles[fault] = len(records)
        total_ok = sum(r.ok for r in records)
        bound = round((total_ok - len(lost_all)) / total_ok, 4) if total_ok else None
        bounds[fault] = bound
        statuses = {r.status for r in records}
        fstatus = "fail" if "fail" in statuses else ("error" if "error" in statuses else "pass")
        faults[fault] = FaultResult(
            fault=fault, status=fstatus, cycles_requested=cycles, cycles_run=len(records),
            cycles_with_fault_evidence=sum(bool(r.fault_applied) for r in records),
            writes=sum(r.writes for r in records), ok=total_ok, quorum_not_met=sum(r.quorum_not_met for r in records),
            fail=0, convergence_bound=bound, lost=lost_all,
            time_to_converge_s=Quantiles.of(r.time_to_converge_s or 0 for r in records),
            history=[rel, cycles_rel],
        )
        if fstatus == "error":
            checks.append(Check.error(f"{fault}.fault_applied", cycles, "no cycle showed evidence the fault took effect",
                                      observed=0))
        else:
            checks.append(Check.of(f"{fault}.fault_applied", cycles, cycles, True))
        checks.append(Check.of(f"{fault}.lost", 0, len(lost_all), not lost_all,
                               f"lost: {', '.join(lost_all)}" if lost_all else None))
        checks.append(Check.of(f"{fault}.convergence_bound", ">= 0.995", bound,
                               bound is not None and bound >= 0.995))
    return Phase4Report.from_checks(
        checks, cycles_per_fault=cycles, writes_per_cycle=writes, convergence_by_fault=bounds, faults=faults,
        timing=_timing(t, 300.0), settings={"cycles": cycles, "writes": writes},
        history=sorted(f for fr in faults.values() for f in fr.history),
    )


def build_campaign(root: Path, campaign_id: str, kind: Kind, *, seed: int = 1, cycles: int = 4,
                   writes: int = 40, writes_per_agent: int = 25, completed_at: datetime | None = None,
                   analysis: str | None = None, target: TargetRef = REFPEER, release_shape: bool = False) -> Built:
    """A run folder under root/campaign_id whose evidence makes the campaign `kind`.

    The recorded scope follows `target` and the settings: `release_shape` records the gate's default settings
    (the shape that can clear a release) instead of the small shape the folder's evidence has."""
    rng = random.Random(seed)
    run_dir = root / campaign_id
    (run_dir / "history").mkdir(parents=True, exist_ok=True)
    end = completed_at or datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    t = end - timedelta(minutes=8)
    built = Built(run_dir, kind, "")
    write_json(run_dir / "inventory.json", _inventory(campaign_id, t))
    for node in ("node-a", "node-b", "node-c"):
        write_json(run_dir / f"phase1-{node}.json", _phase1(node, t + timedelta(seconds=5), campaign_id))
    write_json(run_dir / "phase2.json", _phase2(run_dir, kind, rng, t + timedelta(seconds=20), built,
                                                writes_per_agent))
    if kind != "error":
        write_json(run_dir / "phase3.json", _phase3(t + timedelta(seconds=70)))
    write_json(run_dir / "phase4.json", _phase4(run_dir, kind, rng, t + timedelta(seconds=90), built, cycles, writes))
    for report in sorted(run_dir.glob("phase*.json")):
        for check in json.loads(report.read_text())["checks"]:
            if check["status"] == "fail":
                built.failing_checks.append(check["id"])
            elif check["status"] == "error":
                built.error_checks.append(check["id"])
    requested = [1, 2, 3, 4]
    shape = {} if release_shape else {"cycles": cycles, "writes": writes}
    settings = load_settings(overrides={"phases": requested, "phase4": {**shape, "seed": seed}})
    verdict = verdict_for_run(run_dir, requested)
    built.verdict = verdict.status
    summary = CampaignSummary(
        campaign_id=campaign_id, ai_memory_git_ref="v0.6.3", completed_at=end, overall_pass=verdict.status == "pass",
        phases=[], verdict=verdict.status, exit_code=verdict.exit_code, reasons=verdict.reasons,
        phases_requested=requested, phases_run=verdict.phases_run, phase_results=verdict.phase_results,
        started_at=t, duration_s=480.0,
        durations_s={"provision": 1.1, "install": 4.2, "phase1": 3.2, "phase2": 41.0, "phase3": 12.4,
                     "phase4": 300.0, "teardown": 0.4},
        settings=settings.model_dump(mode="json"), target=target, scope=VerdictScope.of(target, settings),
        provider="lab",
    )
    write_json(run_dir / "campaign-summary.json", summary)
    if analysis is not None:
        write_text(run_dir / "analysis.md", analysis)
    return built
