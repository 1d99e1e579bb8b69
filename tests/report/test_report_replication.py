"""The phase-2 section tabulates the mixed workload: per kind its verdict, time to converge and what did not
replicate, per node; a skipped kind shows its reason."""

from __future__ import annotations

from shipgate.evidence.models import Check, Phase2Report
from shipgate.evidence.models.replication import KindVerdict, ReplicationReport, UnreplicatedOp
from shipgate.evidence.report.render import _replication_rows


def test_replication_rows_name_each_unreplicated_op_per_node() -> None:
    miss = UnreplicatedOp(index=7, kind="update", sent_to="node-a", key="m1", why="content 'old' (expected 'new')")
    rep = ReplicationReport(kinds={
        "update": KindVerdict(kind="update", status="fail", ops=2, ok=2, effects=2,
                              unreplicated={"node-b": [miss]}, unreplicated_count={"node-b": 1},
                              time_to_converge_s={"node-a": 0.25, "node-b": None}),
        "link": KindVerdict(kind="link", status="skipped", reason="ai-memory 0.5 has no `link` subcommand")})
    report = Phase2Report.from_checks([Check(id="update.node-b.replicated", expected=0, observed=1, status="fail")],
                                      replication=rep)
    nodes, rows = _replication_rows(report)
    assert nodes == ["node-a", "node-b"]
    update, link = rows
    assert update.ttc == ["0.25 s", "never"] and update.missing == ["", "1: m1: content 'old' (expected 'new')"]
    assert update.ops == "2/2 ok, 0 fail, 0 info, 2 effects"
    assert link.status == "skipped" and link.ttc == ["—", "—"] and link.reason.endswith("no `link` subcommand")
    assert _replication_rows(Phase2Report.from_checks(report.checks)) == ([], [])
