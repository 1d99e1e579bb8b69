"""Shared builders: a complete, valid gate run folder written through the models."""

from pathlib import Path

import pytest

from shipgate.evidence.atomic import write_json, write_jsonl
from shipgate.evidence.models import (
    CampaignSummary,
    Check,
    CycleRecord,
    InventoryRecord,
    OperationEvent,
    Phase1NodeReport,
    Phase2Report,
    Phase3Report,
    Phase4Report,
    TargetRef,
    VerdictScope,
)
from shipgate.evidence.verdict import campaign_verdict
from shipgate.hosts.inventory import Host, Inventory, PostgresEndpoint, SshSettings, Target
from shipgate.run.settings import load_settings

SHA = "ab" * 32


def phase_reports() -> dict[str, object]:
    """One passing report per expected artifact, each backed by a real check."""
    reports: dict[str, object] = {
        f"phase1-{n}.json": Phase1NodeReport.from_checks([Check.of(f"{n}.recall_count", ">= 1", 1, True)],
                                                         host=f"lab-{n}", node=n, recall_count=1)
        for n in ("node-a", "node-b", "node-c")
    }
    reports["phase2.json"] = Phase2Report.from_checks(
        [Check.of("phase2.counts.b", ">= 190", 200, True)], total_writes=200, ok=200, quorum_not_met=0, fail=0,
        counts={"a": 200, "b": 200, "c": 200}, probe1_single_peer_down="201", probe2_both_peers_down="503",
        history=["history/phase2-ops.jsonl"])
    reports["phase3.json"] = Phase3Report.from_checks([Check.of("phase3.src==dst", 1000, 1000, True)],
                                                      src_count=1000, dst_count=1000)
    reports["phase4.json"] = Phase4Report.from_checks(
        [Check.of("phase4.kill_primary_mid_write.lost", 0, 0, True)], cycles_per_fault=2, writes_per_cycle=3,
        convergence_by_fault={"kill_primary_mid_write": 1.0})
    return reports


def write_gate_run(run: Path) -> Path:
    reports = phase_reports()
    for name, report in reports.items():
        write_json(run / name, report)
    write_jsonl(run / "history" / "phase2-ops.jsonl", [
        OperationEvent(process="ai:agent-alice", op="write", type="invoke", time=1.0, title="alice-w0"),
        OperationEvent(process="ai:agent-alice", op="write", type="ok", time=1.1, latency_ms=100, status=201),
    ])
    write_jsonl(run / "history" / "phase4-kill_primary_mid_write-cycles.jsonl", [
        CycleRecord(cycle=0, fault="kill_primary_mid_write", writes=3, ok=3, quorum_not_met=0, fail=0),
    ])
    target = Target(kind="binary", path=Path("/opt/ai-memory"), version="ai-memory 0.7.0", git_ref="v0.7.0",
                    sha256=SHA)
    hosts = {n: Host(name=n, hostname=f"lab-{n}", public_address=f"10.251.0.{i}", private_address=f"10.250.0.{i}")
             for i, n in enumerate(("node-a", "node-b", "node-c", "chaos"), start=10)}
    inventory = Inventory(campaign_id=run.name, provider="lab", hosts=hosts,
                          ssh=SshSettings(key_path=Path("/k"), known_hosts=Path("/kh")),
                          postgres=PostgresEndpoint(host="10.250.0.20", database="d", user="u", password="pw"),
                          target=target, vpc_cidr="10.250.0.0/24")
    write_json(run / "inventory.json", InventoryRecord.from_inventory(inventory))
    v = campaign_verdict([1, 2, 3, 4], reports)
    ref = TargetRef.of(target)
    write_json(run / "campaign-summary.json", CampaignSummary(
        campaign_id=run.name, overall_pass=v.status == "pass", phases=list(reports.values()), verdict=v.status,
        exit_code=v.exit_code, reasons=v.reasons, phases_requested=[1, 2, 3, 4], phases_run=v.phases_run,
        phase_results=v.phase_results, target=ref, scope=VerdictScope.of(ref, load_settings())))
    return run


@pytest.fixture
def gate_run(tmp_path: Path) -> Path:
    return write_gate_run(tmp_path / "c-1")
