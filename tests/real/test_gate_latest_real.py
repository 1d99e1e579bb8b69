"""From 0.7.0 the gate meets the release's documented start-up needs (an API key in the config file for a
non-loopback bind, trusted catch-up peers, unenrolled peers, attestation off; `shipgate.target.startup`), so
phases 1 and 2 reach a verdict on the latest measured release: pass or fail, never the `error` of a serve that
refused to start or a client the server turned away, and red only where a filed finding says so.
Run under the lab lock (it builds a lab)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shipgate.evidence.models import CampaignSummary
from shipgate.evidence.validate import validate_run
from shipgate.proof.history import RECORD
from shipgate.proof.history_record import matches, read_record
from shipgate.target import releases

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.real]
ROOT = Path(__file__).resolve().parents[2]
VERSION = releases.LATEST


@pytest.fixture(scope="module")
def run_latest(tmp_path_factory) -> Path:
    if releases.installed(VERSION) is None:
        pytest.fail(f"ai-memory {VERSION} is not in the release cache: `./scripts/install-release {VERSION}` builds it")
    runs = tmp_path_factory.mktemp("real-latest-runs")
    res = subprocess.run(
        [sys.executable, "-m", "invoke", "gate", "--target", f"ai-memory@{VERSION}", "--lab-name", "reallt",
         "--runs-dir", str(runs), "--phases", "1,2"],
        cwd=ROOT, capture_output=True, text=True, timeout=1500)
    print(res.stderr[-4000:], file=sys.stderr)
    assert res.returncode in (0, 1), f"expected a verdict (exit 0 or 1), got {res.returncode}: {res.stderr[-2000:]}"
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    return run_dir


def test_phases_1_and_2_reach_a_verdict_red_only_for_filed_findings(run_latest: Path):
    assert validate_run(run_latest) == []
    summary = CampaignSummary.load(run_latest / "campaign-summary.json")
    assert summary.phases_run == [1, 2]
    statuses = {r.artifact: r.status for r in summary.phase_results}
    assert set(statuses) == {"phase1-node-a.json", "phase1-node-b.json", "phase1-node-c.json", "phase2.json"}
    assert set(statuses.values()) <= {"pass", "fail"}, statuses
    filed = [f for f in read_record(RECORD).findings if VERSION in f.releases]
    for name in statuses:
        report = json.loads((run_latest / name).read_text())
        unexplained = [c["id"] for c in report["checks"] if c["status"] not in ("pass", "skipped")
                       and not any(matches(c["id"], f.patterns) for f in filed)]
        assert unexplained == [], f"{name}: red that no filed finding for {VERSION} explains"


def test_the_campaign_key_is_in_no_artifact(run_latest: Path):
    """The key lives only on the hosts; no file the campaign wrote carries an `api_key` value or the header."""
    for path in run_latest.rglob("*"):
        if path.is_file() and path.suffix in {".json", ".jsonl", ".html", ".md", ".txt", ".log"}:
            text = path.read_text(errors="replace")
            assert "x-api-key" not in text.lower() and "api_key =" not in text, path
    inv = json.loads((run_latest / "inventory.json").read_text())
    assert inv["target"]["capabilities"]["version_line"].endswith(VERSION)
