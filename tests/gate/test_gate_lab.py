"""`invoke gate` end to end on a real lab against the reference peer, clean and with seeded defects.

Each campaign builds its own small lab (a unique name), runs, validates and tears down; the
assertions read the artifacts the campaign wrote, as a release engineer would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shipgate.evidence.models import CampaignSummary, Phase1NodeReport, Phase2Report, Phase3Report
from shipgate.evidence.validate import validate_run
from shipgate.run.settings import load_settings
from shipgate.tasks.wiring import CampaignOptions, run_campaign

pytestmark = [pytest.mark.lab, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def _leftovers(name: str) -> list[str]:
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, timeout=10).stdout
    out = [line.split()[0] for line in ns.splitlines() if line.startswith(f"{name}-")]
    out += [line.split(": ")[1].split("@")[0] for line in links.splitlines() if f": {name}-" in line]
    return out


def campaign(tmp_path: Path, name: str, phases: list[int], defects: list[str] | None = None,
             overrides: dict | None = None) -> CampaignSummary:
    settings = load_settings(overrides={"phases": phases, **(overrides or {})})
    opts = CampaignOptions(settings=settings, lab_name=name, defects=defects or [], runs_dir=tmp_path,
                           render=False)
    summary = run_campaign(opts, progress=lambda msg: print(msg, file=sys.stderr))
    assert not _leftovers(name), "the lab must be gone after the campaign"
    return summary


def _checks(report) -> dict[str, str]:
    return {c.id: c.status for c in report.checks}


def test_gate_phases_1_2_3_pass_on_the_reference_peer(tmp_path: Path):
    """The acceptance run, through the real command line a user types."""
    res = subprocess.run([sys.executable, "-m", "invoke", "gate", "--phases", "1,2,3", "--lab-name", "gtok",
                          "--runs-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert validate_run(run_dir) == []
    summary = CampaignSummary.load(run_dir / "campaign-summary.json")
    assert summary.verdict == "pass" and summary.overall_pass and summary.reasons == []
    assert summary.phases_run == [1, 2, 3]
    p2 = Phase2Report.load(run_dir / "phase2.json")
    assert p2.ok == 200 and p2.counts == {"a": 200, "b": 200, "c": 200}
    assert (p2.probe1_single_peer_down, p2.probe2_both_peers_down) == ("201", "503")
    assert all(v is not None for v in p2.time_to_converge_s.values())
    p3 = Phase3Report.load(run_dir / "phase3.json")
    rows = load_settings().phase3.rows
    assert p3.src_count == p3.dst_count == rows and p3.content["roundtrip"].identical == rows
    links = load_settings().phase3.links
    assert p3.seeded_links == links and p3.seed_shape is not None and p3.seed_shape.non_bmp > 0
    assert set(p3.content) == set(p3.links) == {"forward", "idempotent", "reverse", "roundtrip"}
    assert all(c.identical == rows for c in p3.content.values())
    assert all(lk.identical == links and not lk.unexpected_count for lk in p3.links.values())
    assert isinstance(p3.settings["seed"], int)
    for node in ("node-a", "node-b", "node-c"):
        p1 = Phase1NodeReport.load(run_dir / f"phase1-{node}.json")
        assert p1.status == "pass" and p1.mcp_tool_count >= 30 and p1.snapshot_count == 1
    assert "***" in (run_dir / "inventory.json").read_text()
    assert not _leftovers("gtok")
    # issue 14, items 1 and 3: a partial rehearsal on the reference peer says so, first and last
    lines = [line.split("] ", 1)[-1] for line in res.stderr.splitlines()]
    assert lines[0].startswith(f"campaign {run_dir.name}: phases 1,2,3; chaos: not requested; target the "
                               "bundled reference peer; on lab 'gtok', built for this campaign")
    assert lines[1] == "scope: a rehearsal on the bundled reference peer, not a release verdict (phase 4 not run)"
    verdict = next(line for line in lines if line.startswith("verdict: "))
    assert verdict.startswith("verdict: PASS (exit 0), a rehearsal on the bundled reference peer")
    assert summary.scope is not None and summary.scope.kind == "rehearsal" and not summary.scope.release_decision
    page = (run_dir / "index.html").read_text()
    assert "Ship it" not in page + res.stderr and "not a release verdict" in page


def test_fanout_abort_fails_phase2_naming_nodes_and_missing_writes(tmp_path: Path):
    summary = campaign(tmp_path, "gtfan", [2], ["fanout_abort"])
    assert summary.verdict == "fail" and summary.exit_code == 1
    p2 = summary.phases[0]
    assert isinstance(p2, Phase2Report) and p2.status == "fail"
    missing = {node: titles for node, titles in p2.missing_writes.items() if titles}
    assert set(missing) <= {"node-b", "node-c"} and missing, p2.missing_writes
    assert any("convergence.node-" in r and "missing" in r for r in p2.reasons)


def test_quorum_w1_fails_probe2(tmp_path: Path):
    summary = campaign(tmp_path, "gtw1", [2], ["quorum_w1"])
    checks = _checks(summary.phases[0])
    assert summary.verdict == "fail"
    assert checks["probe2.both_peers_down"] == "fail"


def test_quorum_hang_fails_probe2_and_the_gate_does_not_hang(tmp_path: Path):
    summary = campaign(tmp_path, "gthang", [2], ["quorum_hang"])
    checks = _checks(summary.phases[0])
    assert summary.verdict == "fail"
    assert checks["probe2.fast"] == "fail" and checks["probe3.within_timeout"] == "fail"


def test_quorum_timeout_ignored_passes_the_refused_probe_and_fails_the_silent_one(tmp_path: Path):
    """Refused peers fail at once, so a server that ignores its quorum timeout still answers fast; only the
    silent probe (both peers behind DROP) sees the write held past timeout + margin."""
    summary = campaign(tmp_path, "gtqti", [2], ["quorum_timeout_ignored"])
    p2 = summary.phases[0]
    checks = _checks(p2)
    assert summary.verdict == "fail"
    assert checks["probe2.fast"] == checks["probe2.both_peers_down"] == "pass"
    assert checks["probe3.silence_in_effect"] == "pass"
    assert checks["probe3.within_timeout"] == "fail" and checks["probe3.both_peers_silent"] == "fail"
    assert isinstance(p2, Phase2Report)
    limit_ms = (p2.settings["quorum_timeout_ms"] / 1000 + p2.settings["probe_margin_s"]) * 1000
    assert p2.probe_latency_ms["refused"].max <= limit_ms < p2.probe_latency_ms["silent"].max
    assert len(p2.probe_runs["silent"]) == 1, "the probes stop after the first hang"
    assert checks["probe3.converged_after_heal"] == "pass", "the row the hung write kept still replicates"


def test_the_silent_probe_by_sigstop_records_both_latency_distributions(tmp_path: Path):
    summary = campaign(tmp_path, "gtstop", [2], overrides={"phase2": {"silent_fault": "pause", "quorum_probes": 2}})
    p2 = summary.phases[0]
    assert isinstance(p2, Phase2Report) and p2.status == "pass", p2.reasons
    checks = _checks(p2)
    assert {k: v for k, v in checks.items() if k.startswith("probe3.")} == dict.fromkeys(
        ["probe3.silence_in_effect", "probe3.both_peers_silent", "probe3.body", "probe3.within_timeout",
         "probe3.converged_after_heal"], "pass")
    assert {k: q.count for k, q in p2.probe_latency_ms.items()} == {"refused": 2, "silent": 2}
    assert p2.settings["quorum_probes"] == 2 and p2.settings["silent_fault"] == "pause"
    assert [e["kind"] for e in p2.details["silent_fault"]] == ["pause", "pause", "resume", "resume"]
    assert p2.quorum_miss_rule and p2.quorum_miss_rule.startswith("0.6.3: 503")


def test_list_ignores_limit_is_noticed(tmp_path: Path):
    summary = campaign(tmp_path, "gtlim", [2], ["list_ignores_limit"])
    checks = _checks(summary.phases[0])
    assert summary.verdict == "fail"
    assert any(k.startswith("list.") and v == "fail" for k, v in checks.items()), checks


def test_a_page_cap_of_200_is_noticed_in_the_workload_and_loses_no_row(tmp_path: Path):
    """0.6.0/0.6.1's silent 200-row cap: the burst's namespace holds exactly 200 rows, the workload's more."""
    summary = campaign(tmp_path, "gtcap", [2], ["list_cap_200"])
    checks = _checks(summary.phases[0])
    assert summary.verdict == "fail"
    assert {k: v for k, v in checks.items() if k.endswith("list_honours_limit")} == {
        f"workload.{n}.list_honours_limit": "fail" for n in ("node-a", "node-b", "node-c")}
    assert {v for k, v in checks.items() if k.endswith(".replicated")} == {"pass"}, checks


@pytest.mark.parametrize("defect", [None, "fanout_no_retry"])
def test_one_refused_fan_out_is_retried_unless_the_peer_never_retries(tmp_path: Path, defect: str | None):
    """The retry probe refuses exactly one packet (the probe row's push to node-b): the clean peer retries it
    250 ms later, 0.6.0/0.6.1's behaviour (seeded) leaves the row missing on node-b and nothing else red."""
    summary = campaign(tmp_path, "gtrty", [2], [defect] if defect else [],
                       overrides={"phase2": {"workload": {"enabled": False}}})
    p2 = summary.phases[0]
    assert isinstance(p2, Phase2Report)
    checks = _checks(p2)
    retry = p2.retry_probe
    assert retry is not None and retry.refused_packets == 1, retry
    assert retry.write is not None and retry.write.status == 201
    assert [e["kind"] for e in p2.details["retry_fault"]] == ["refuse", "heal"]
    assert retry.delivered_s["node-c"] is not None
    assert checks["fanout_retry.refused_once"] == checks["fanout_retry.node-c.delivered"] == "pass"
    if defect is None:
        assert p2.status == "pass", p2.reasons
        assert retry.delivered_s["node-b"] is not None
        assert checks["fanout_retry.node-b.delivered"] == "pass"
    else:
        assert retry.delivered_s["node-b"] is None
        assert [k for k, v in checks.items() if v == "fail"] == ["fanout_retry.node-b.delivered"], checks


def test_backup_corrupt_fails_phase1(tmp_path: Path):
    summary = campaign(tmp_path, "gtbak", [1], ["backup_corrupt"])
    assert summary.verdict == "fail"
    for report in summary.phases:
        assert _checks(report)["backup.sha256_matches_manifest"] == "fail"


def test_migrate_truncate_fails_phase3(tmp_path: Path):
    summary = campaign(tmp_path, "gttrunc", [3], ["migrate_truncate"])
    assert summary.verdict == "fail"
    p3 = summary.phases[0]
    assert _checks(p3)["content.roundtrip.identical"] == "fail"
    assert p3.content["roundtrip"].mismatched and p3.content["roundtrip"].mismatched[0].field == "content"
    assert p3.report_forward.memories_written == load_settings().phase3.rows, "counts still match: only the content check catches it"


@pytest.mark.parametrize(("defect", "red", "green"), [
    ("migrate_page_cap_500", {"migrate.forward.read", "postgres.rows_after_forward", "content.forward.identical",
                              "links.forward.identical"}, {"content.reverse.identical"}),
    ("migrate_drops_links", {"links.forward.identical", "links.idempotent.identical", "links.roundtrip.identical"},
     {"content.roundtrip.identical", "migrate.reverse.read", "links.reverse.identical"}),
    ("migrate_mangles_unicode", {"content.forward.identical", "content.roundtrip.identical"},
     {"migrate.forward.read", "postgres.rows_after_forward", "counts.src_equals_dst", "links.roundtrip.identical"}),
])
def test_new_migration_defects_fail_phase3_on_their_named_checks(tmp_path: Path, defect: str, red: set[str],
                                                                green: set[str]):
    summary = campaign(tmp_path, "gtmig", [3], [defect])
    assert summary.verdict == "fail"
    checks = _checks(summary.phases[0])
    assert {c for c in red if checks.get(c) != "fail"} == set(), checks
    assert {c for c in green if checks.get(c) != "pass"} == set(), checks


def test_a_host_lost_mid_phase_is_an_error_naming_it_and_later_phases_do_not_run(tmp_path: Path):
    """node-c dies (every process of the host killed) as the phase-2 burst starts."""
    killed: list[int] = []

    def progress(msg: str) -> None:
        print(msg, file=sys.stderr)
        if "phase 2: burst" in msg and not killed:
            pids = subprocess.run(["ip", "netns", "pids", "gtcut-node-c"], capture_output=True, text=True,
                                  timeout=10).stdout.split()
            for pid in pids:
                subprocess.run(["kill", "-KILL", pid], timeout=10, check=False)
            killed.extend(int(p) for p in pids)

    settings = load_settings(overrides={"phases": [1, 2, 3], "phase2": {"convergence_deadline_s": 10}})
    opts = CampaignOptions(settings=settings, lab_name="gtcut", runs_dir=tmp_path, render=False)
    summary = run_campaign(opts, progress=progress)
    assert killed, "the host was killed"
    assert summary.verdict == "error" and summary.exit_code == 2
    by_phase = {r.phase: r for r in summary.phase_results}
    assert by_phase[1].status == "pass"
    assert by_phase[2].status == "error" and "node-c" in (by_phase[2].reason or "")
    assert by_phase[3].status == "error" and "not run" in (by_phase[3].reason or "")
    assert "node-c" in by_phase[3].reason
    assert not _leftovers("gtcut")


def test_phase4_alone_plans_records_and_shows_one_seed(tmp_path: Path):
    """Issue 14, items 7 and 9: the plan line says what will run (classes, cycles x writes, the seed drawn up
    front), the summary's settings and phase 4's report record that same seed, and the summaries claim only
    the class that ran."""
    res = subprocess.run([sys.executable, "-m", "invoke", "phase4", "--fault", "partition_minority", "--cycles", "2",
                          "--writes", "20", "--lab-name", "gtp4", "--runs-dir", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    summary = CampaignSummary.load(run_dir / "campaign-summary.json")
    seed = summary.settings["phase4"]["seed"]
    assert isinstance(seed, int)
    first = res.stderr.splitlines()[0].split("] ", 1)[-1]
    assert f"phases 4; chaos: partition_minority, 2 cycles x 20 writes, seed {seed}; target the bundled " \
           "reference peer" in first
    p4 = json.loads((run_dir / "phase4.json").read_text())
    assert p4["settings"]["seed"] == p4["details"]["seed"] == seed
    assert summary.scope is not None and summary.scope.shape.seed == seed
    page = (run_dir / "index.html").read_text()
    assert "a network partition while writing (2 cycles x 20 writes per class)" in page
    assert "crashes" not in page and "clock skew" not in page.split('id="summaries"', 1)[1].split("</section>", 1)[0]
    assert not _leftovers("gtp4")
