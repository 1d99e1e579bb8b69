"""A campaign that stops before any phase runs: every view leads with the cause (issue 14, item 4).

The hosts are given directly (no lab) on loopback ports where nothing listens, so installing the host agent
fails at once: the run folder exists, and its console lines, summary, HTML banner, summaries, JUnit, step
summary and the runs index must each say why first, not a list of "artifact missing" lines.
"""

from __future__ import annotations

import html as htmllib
import re
import socket
from pathlib import Path

from shipgate.evidence.models import CampaignSummary
from shipgate.evidence.report import step_summary
from shipgate.evidence.report.load import load_run
from shipgate.evidence.report.summaries import summaries
from shipgate.hosts.inventory import Host, Inventory, PostgresEndpoint, SshSettings, Target
from shipgate.run.settings import load_settings
from shipgate.tasks.wiring import CampaignOptions, run_campaign


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _inventory(tmp: Path) -> Inventory:
    port = _closed_port()
    (tmp / "known_hosts").write_text("")
    (tmp / "id").write_text("")
    hosts = {n: Host(name=n, hostname=n, public_address="127.0.0.1", private_address="127.0.0.1", ssh_port=port)
             for n in ("node-a", "node-b", "node-c", "chaos")}
    return Inventory(campaign_id="startup", provider="lab", hosts=hosts,
                     ssh=SshSettings(key_path=tmp / "id", known_hosts=tmp / "known_hosts", connect_timeout_s=2),
                     postgres=PostgresEndpoint(host="127.0.0.1", database="d", user="u", password="pw"),
                     target=Target(kind="refpeer", path=tmp / "ai-memory"), vpc_cidr="127.0.0.0/8")


def test_every_view_leads_with_the_cause(tmp_path: Path) -> None:
    lines: list[str] = []
    settings = load_settings(overrides={"phases": [1, 2, 3, 4]})
    opts = CampaignOptions(settings=settings, inventory=_inventory(tmp_path), runs_dir=tmp_path / "runs",
                           campaign_id="startup")
    summary = run_campaign(opts, progress=lines.append)
    assert summary.verdict == "error" and summary.exit_code == 2 and summary.phases_run == []
    cause = summary.cause
    assert cause and cause.startswith("the gate failed: ServiceError: node-") and "cannot create" in cause
    assert summary.reasons == [cause, "no phase ran: phases 1,2,3,4 left no evidence"]

    verdict_at = next(i for i, line in enumerate(lines) if line.startswith("verdict: ERROR"))
    assert lines[verdict_at + 2] == f"  - {cause}", "the console names the cause right under the verdict"
    assert not any("artifact missing" in line for line in lines)

    run = tmp_path / "runs" / "startup"
    page = (run / "index.html").read_text(encoding="utf-8")
    header = page.split("<header", 1)[1].split("</header>", 1)[0]
    reason = htmllib.unescape(re.search(r'<p class="reason">(.*?)</p>', header, re.S).group(1))
    assert reason.startswith(cause[:200]), reason
    data = load_run(run)
    by_key = {s.key: s for s in summaries(data)}
    assert by_key["user"].paragraphs[0] == f"The gate stopped: {cause}."
    assert by_key["decision"].paragraphs[1] == f"Cause: {cause}."
    assert by_key["engineer"].items[0] == f"campaign: {cause}"
    assert not any("artifact missing" in item for item in by_key["engineer"].items)
    junit = (run / "junit.xml").read_text(encoding="utf-8")
    assert htmllib.escape(cause[:60], quote=True) in junit
    md = step_summary(run)
    assert md.index(cause[:60]) < md.index("| phase |"), "the step summary names the cause before the table"
    index = htmllib.unescape((tmp_path / "runs" / "index.html").read_text(encoding="utf-8"))
    assert cause[:100] in index
    assert CampaignSummary.load(run / "campaign-summary.json").reasons[0] == cause
