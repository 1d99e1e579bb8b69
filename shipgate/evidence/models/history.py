"""History lines (JSONL): every operation and every chaos cycle, Jepsen style.

An operation is an `invoke` followed by exactly one completion: `ok`, `fail` (definitely did not
happen) or `info` (indeterminate: a timeout may or may not have landed).

Events are stamped by more than one clock (the client's on the chaos host, the nemesis' on the
operator): each says which in `clock`, and a report that compares or sorts them records the offset
between the clocks (`ClockOffset`) it used.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, JsonValue

from shipgate.evidence.models.common import ArtifactModel, CheckStatus

OpType = Literal["invoke", "ok", "fail", "info"]


class OperationEvent(ArtifactModel):
    """One line of history/<name>.jsonl."""

    process: str = Field(description="who issued it: an agent id or a worker name")
    op: str = Field(description="write, read, list, probe, ...")
    kind: str | None = Field(None, description="phase 2's workload kind, finer than `op` (the HTTP write path: "
                                               "write, update, promote, delete, link, consolidate, bulk, "
                                               "duplicate): store, update, update_title, promote, delete, link, "
                                               "consolidate, duplicate, bulk, bulk_catchup")
    type: OpType
    time: float = Field(description="wall clock, Unix seconds, of the clock named in `clock`")
    clock: str | None = Field(None, description="which clock stamped `time`: 'chaos' (the chaos host) or 'operator'")
    index: int | None = Field(None, ge=0, description="position in the history file")
    latency_ms: float | None = Field(None, ge=0, description="on completions: time since the invoke")
    status: int | None = Field(None, description="HTTP status, when one came back")
    error: str | None = None
    id: str | None = Field(None, description="memory id returned by the server")
    title: str | None = None
    namespace: str | None = None
    node: str | None = Field(None, description="the node the operation was sent to")
    agent: str | None = Field(None, description="X-Agent-Id sent")
    cycle: int | None = Field(None, ge=0)
    fault: str | None = None
    value: JsonValue = None


class CycleRecord(ArtifactModel):
    """One line of history/<name>-cycles.jsonl: a chaos cycle (a superset of upstream's chaos-report.jsonl)."""

    cycle: int = Field(ge=0)
    fault: str
    writes: int = Field(ge=0)
    ok: int = Field(ge=0)
    quorum_not_met: int = Field(ge=0)
    fail: int = Field(ge=0)
    indeterminate: int = Field(0, ge=0)
    namespace: str | None = None
    seed: int | None = None
    status: CheckStatus | None = None
    fault_started_at: float | None = Field(None, description="Unix seconds, operator clock")
    fault_healed_at: float | None = Field(None, description="Unix seconds, operator clock")
    fault_applied: bool | None = Field(None, description="evidence showed the fault took effect")
    fault_evidence: list[str] = Field(default_factory=list)
    counts: dict[str, int | None] = Field(default_factory=dict, description="node -> rows of the cycle namespace")
    count_node0: str | None = Field(None, description="upstream harness count (a string, or 'ERR')")
    count_node1: str | None = None
    count_node2: str | None = None
    lost: list[str] = Field(default_factory=list)
    unexpected: list[str] = Field(default_factory=list)
    duplicates: list[str] = Field(default_factory=list)
    indeterminate_landed: int | None = Field(None, ge=0)
    converged: bool | None = None
    time_to_converge_s: float | None = Field(None, ge=0)
    history: str | None = Field(None, description="operation history file of this cycle")


class ClockOffset(ArtifactModel):
    """How one host's wall clock relates to the operator's, measured before histories of both are compared.

    `host_time = operator_time + offset_s`, and the true offset lies within `offset_s ± uncertainty_s`."""

    reference: str = Field("operator", description="the clock the offset is measured from")
    host: str = Field(description="the host whose clock is compared (the chaos host)")
    one_kernel: bool = Field(description="both clocks are one kernel's CLOCK_REALTIME (the lab): 0 by construction")
    offset_s: float = Field(description="host clock minus reference clock, seconds")
    uncertainty_s: float = Field(ge=0, description="half the round trip of the sample used: the bound on the error")
    rtt_s: float | None = Field(None, ge=0, description="round trip of the sample used (the smallest)")
    samples: int = Field(0, ge=0, description="round trips made (0: not measured)")
    measured_at: float | None = Field(None, description="operator wall clock of the sample used, Unix seconds")
    method: str = Field(description="how the offset was established, in words")
