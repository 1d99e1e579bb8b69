"""Phase 2's mixed replication workload: per operation kind, what replicated where and how fast."""

from __future__ import annotations

from pydantic import Field, JsonValue

from shipgate.evidence.models.common import ArtifactModel, CheckStatus


class UnreplicatedOp(ArtifactModel):
    """An acknowledged operation whose effect one node did not show at the deadline."""

    index: int | None = Field(None, ge=0, description="the completion's position in the workload history")
    kind: str
    sent_to: str | None = Field(None, description="the node the operation was sent to")
    key: str = Field(description="what was expected: the memory id, title or link it concerns")
    why: str = Field(description="what the node shows instead (absent, which field differs, ...)")


class KindVerdict(ArtifactModel):
    """One operation kind (update, delete, promote, link, consolidate, bulk, ...) across the cluster."""

    kind: str
    status: CheckStatus
    reason: str | None = Field(None, description="why skipped or errored; the first unreplicated op otherwise")
    ops: int = Field(0, ge=0, description="operations of this kind invoked")
    ok: int = Field(0, ge=0, description="acknowledged")
    fail: int = Field(0, ge=0, description="definitely not applied (4xx, refused)")
    indeterminate: int = Field(0, ge=0, description="no verdict from the server (timeout, 503): not judged")
    effects: int = Field(0, ge=0, description="expected effects judged on every node (a bulk op has one per row)")
    nodes: list[str] = Field(default_factory=list, description="nodes the kind was sent to")
    unreplicated: dict[str, list[UnreplicatedOp]] = Field(
        default_factory=dict, description="node -> acknowledged effects it lacked at the deadline (first 50)")
    unreplicated_count: dict[str, int] = Field(default_factory=dict, description="node -> how many in all")
    time_to_converge_s: dict[str, float | None] = Field(
        default_factory=dict, description="node -> seconds from the end of the kind's stage until the node "
                                          "showed every acknowledged effect of the kind (null: never)")


class ReplicationReport(ArtifactModel):
    """The whole workload: its shape, the kinds, and where its history is."""

    stages: list[str] = Field(default_factory=list, description="stages run, in order")
    kinds: dict[str, KindVerdict] = Field(default_factory=dict)
    duplicate_rule: str | None = Field(None, description="the release's documented rule for a duplicate "
                                                          "(title, namespace): upsert (<= 0.6.3) or conflict")
    duration_s: float | None = Field(None, ge=0, description="wall time of the workload")
    history: list[str] = Field(default_factory=list)
    details: dict[str, JsonValue] = Field(default_factory=dict)
