"""Phase reports: the upstream shapes (`phase`, `pass`, `reasons`, ...) plus the gate's evidence.

Upstream fields keep upstream names and meanings; where upstream recorded nothing the field is absent.
Our own fields (`status`, `checks`, `timing`, `settings`, `target`, history references, ...) sit beside them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import Field, JsonValue, field_validator, model_validator

from shipgate.evidence.models.common import (
    ArtifactModel,
    Check,
    OpenModel,
    PhaseStatus,
    Quantiles,
    Source,
    TargetRef,
    Timing,
    check_reasons,
    phase_status,
    redact_url,
)
from shipgate.evidence.models.history import ClockOffset
from shipgate.evidence.models.replication import ReplicationReport
from shipgate.evidence.phase_ids import PHASE_NAMES as PHASE_NAMES  # re-exported


class PhaseReportBase(ArtifactModel):
    """What every phase report carries. Build gate reports with `from_checks` so status, pass and reasons agree."""

    phase: int
    pass_: bool = Field(alias="pass", description="upstream's verdict field; for gate reports: status == 'pass'")
    reasons: list[str] = Field(description="one line per failed or errored check; [] when nothing failed")
    status: PhaseStatus = Field(description="derived from checks: any fail > any error > all skipped > pass")
    checks: list[Check] = Field(description="the evidence; an empty list makes the phase an error")
    source: Source = Field("gate", description="'upstream' when imported from the previous gate's history")
    error: str | None = Field(None, description="why the phase could not establish its facts, if it could not")
    timing: Timing | None = None
    settings: dict[str, JsonValue] = Field(default_factory=dict, description="the settings the phase ran with")
    target: TargetRef | None = None
    history: list[str] = Field(default_factory=list, description="history files (paths relative to the run folder)")
    details: dict[str, JsonValue] = Field(default_factory=dict, description="further observations, free form")
    reconstructed_from: JsonValue = Field(
        None, alias="_reconstructed_from", description="upstream marker of a hand-reconstructed file"
    )
    upstream_extra: dict[str, JsonValue] | None = Field(
        None, description="upstream keys this model does not know, kept verbatim on import"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        derived = phase_status(self.checks)
        if self.status != derived:
            raise ValueError(f"status {self.status!r} contradicts its checks, which give {derived!r}")
        if self.source == "gate":
            if self.pass_ != (self.status == "pass"):
                raise ValueError(f"pass={self.pass_} contradicts status {self.status!r}")
            if self.status == "pass" and self.reasons:
                raise ValueError("a passing report must have reasons == []")
        return self

    @classmethod
    def from_checks(cls, checks: list[Check], **fields: Any) -> Self:
        """A gate report whose status, `pass` and `reasons` follow from `checks` (extra reasons may be given)."""
        status = phase_status(checks)
        reasons = list(fields.pop("reasons", [])) + check_reasons(checks)
        if status == "error" and not checks:
            reasons.append(fields.get("error") or "no checks were recorded: no evidence")
        return cls(checks=checks, status=status, pass_=status == "pass", reasons=reasons, **fields)

    @property
    def artifact_name(self) -> str:
        return f"phase{self.phase}.json"


# --- phase 1 -------------------------------------------------------------------------------------------


class TierCount(OpenModel):
    tier: str
    count: int


class NamespaceCount(OpenModel):
    namespace: str
    count: int


class Stats(OpenModel):
    """`ai-memory stats --json` (contract §2.4); the last two keys exist from v0.6.3.1 on."""

    total: int
    by_tier: list[TierCount]
    by_namespace: list[NamespaceCount]
    expiring_soon: int
    links_count: int
    db_size_bytes: int
    dim_violations: int | None = None
    index_evictions_total: int | None = None


class CuratorAutonomy(OpenModel):
    clusters_formed: int
    memories_consolidated: int
    memories_forgotten: int
    priority_adjustments: int
    rollback_entries_written: int
    errors: list[str]


class CuratorReport(OpenModel):
    """`ai-memory curator --once --dry-run --json` (contract §2.6). Timestamps stay strings (nanoseconds)."""

    started_at: str
    completed_at: str
    cycle_duration_ms: int
    memories_scanned: int
    memories_eligible: int
    auto_tagged: int
    contradictions_found: int
    operations_attempted: int
    operations_skipped_cap: int
    autonomy: CuratorAutonomy | None = None
    errors: list[str]
    dry_run: bool


class BackupEvidence(ArtifactModel):
    """What `backup` produced and whether the snapshot matches its manifest and restores."""

    snapshot: str | None = None
    manifest: str | None = None
    manifest_sha256: str | None = None
    actual_sha256: str | None = None
    bytes: int | None = None
    restored_total: int | None = None


class Phase1NodeReport(PhaseReportBase):
    """phase1-node-<x>.json: functional checks on one node."""

    phase: Literal[1] = 1
    host: str = Field(description="the host's hostname as it reported itself")
    version: str | None = Field(None, description="`cat /etc/ai-memory/version || ai-memory --version`")
    stats: Stats | None = None
    curator: CuratorReport | None = None
    mcp_tool_count: int | None = None
    recall_count: int | None = None
    recall_tier: str | None = Field(None, description="the tier recall was judged at when the default tier hung")
    snapshot_count: int | None = None
    manifest_count: int | None = None
    node: str | None = Field(None, description="logical node name: node-a, node-b or node-c")
    mcp_profile_requested: str | None = None
    mcp_tool_names: list[str] | None = None
    backup: BackupEvidence | None = None

    @property
    def artifact_name(self) -> str:
        return f"phase1-{self.node}.json" if self.node else "phase1-node.json"


# --- phase 2 -------------------------------------------------------------------------------------------


class ProbeResult(ArtifactModel):
    """One quorum probe: what was written, what came back, how fast."""

    expected_status: int
    status: int | None = Field(None, description="HTTP status; absent when no response arrived")
    latency_ms: float | None = Field(None, ge=0)
    body: JsonValue = None
    error: str | None = None


class RetryProbeResult(ArtifactModel):
    """The fan-out retry probe: one row whose first fan-out attempt to node-b was refused, catch-up off."""

    marker: str = Field(description="the row's title, which the refuse rule matched on")
    refused_packets: int | None = Field(None, ge=0, description="packets the rule refused, read at its removal")
    write: ProbeResult | None = Field(None, description="the write through node-a (201 once node-c acks)")
    delivered_s: dict[str, float | None] = Field(
        default_factory=dict, description="node -> seconds from the acknowledgement until it held the row; "
                                          "null: not within the deadline")
    deadline_s: float = Field(ge=0, description="how long the row was waited for: every attempt and its retry "
                                                "have ended by then")


class Phase2Report(PhaseReportBase):
    """phase2.json: federation burst, convergence and quorum probes."""

    phase: Literal[2] = 2
    total_writes: int | None = Field(None, ge=0)
    ok: int | None = Field(None, ge=0, description="writes answered 201")
    quorum_not_met: int | None = Field(None, ge=0, description="writes answered 503")
    fail: int | None = Field(None, ge=0, description="any other outcome")
    counts: dict[str, int | None] | None = Field(
        None, description="rows of the burst namespace per node ('a', 'b', 'c'); null when unreadable"
    )
    probe1_single_peer_down: str | None = Field(None, description="HTTP status as upstream wrote it ('201')")
    probe2_both_peers_down: str | None = Field(None, description="HTTP status as upstream wrote it ('503')")
    agents: list[str] | None = None
    indeterminate: int | None = Field(None, ge=0, description="writes with no answer (timeout): neither ok nor fail")
    missing_writes: dict[str, list[str]] = Field(
        default_factory=dict, description="node -> acknowledged writes (titles) missing there at the deadline"
    )
    time_to_converge_s: dict[str, float | None] = Field(
        default_factory=dict, description="node -> seconds until it held every acknowledged write; null: never"
    )
    converge_deadline_s: float | None = Field(None, ge=0)
    latency_ms: Quantiles | None = None
    probes: dict[str, ProbeResult] = Field(default_factory=dict)
    quorum_miss_rule: str | None = Field(
        None, description="the release's documented answer to a quorum miss the probes were judged by")
    probe_runs: dict[str, list[ProbeResult]] = Field(
        default_factory=dict, description="quorum-miss probe kind ('refused': peers killed; 'silent': peers "
                                          "unreachable without a word) -> every probe write, in order")
    probe_latency_ms: dict[str, Quantiles] = Field(
        default_factory=dict, description="probe kind -> latency distribution of its writes at the client")
    replication: ReplicationReport | None = Field(
        None, description="the mixed workload after the burst: per operation kind, what replicated where")
    retry_probe: RetryProbeResult | None = Field(
        None, description="one fan-out attempt refused: is the failed attempt retried (v0.6.2 #368)?")


# --- phase 3 -------------------------------------------------------------------------------------------


class MigrateReport(OpenModel):
    """`ai-memory migrate --json` (contract §2.8). URL passwords are redacted on the way in."""

    from_url: str
    to_url: str
    memories_read: int
    memories_written: int
    batches: int
    errors: list[str]
    dry_run: bool

    @field_validator("from_url", "to_url", mode="after")
    @classmethod
    def _redact(cls, v: str) -> str:
        return redact_url(v)


class FieldMismatch(ArtifactModel):
    id: str
    field: str
    expected: JsonValue = None
    observed: JsonValue = None


class ContentComparison(ArtifactModel):
    """Record-by-record comparison of two stores (upstream compared counts only)."""

    compared: int = Field(ge=0)
    identical: int = Field(ge=0)
    missing: list[str] = Field(default_factory=list, description="ids in the source, absent in the destination")
    unexpected: list[str] = Field(default_factory=list, description="ids in the destination only")
    mismatched: list[FieldMismatch] = Field(
        default_factory=list, description="a sample of the field mismatches (the first 50); the totals are "
                                          "mismatched_rows and mismatched_fields")
    mismatched_rows: int | None = Field(None, ge=0, description="rows present on both sides that differ")
    mismatched_fields: int | None = Field(None, ge=0, description="field mismatches over all rows")
    observed_rows: int | None = Field(None, ge=0, description="rows the destination holds")
    duplicate_keys: int | None = Field(None, ge=0, description="destination rows repeating a (namespace, title)")
    missing_count: int | None = Field(None, ge=0, description="all missing rows (`missing` lists the first 200)")
    unexpected_count: int | None = Field(None, ge=0, description="all unexpected rows (`unexpected`: the first 200)")

    @model_validator(mode="after")
    def _totals(self) -> Self:
        if self.mismatched_fields is not None and self.mismatched_fields < len(self.mismatched):
            raise ValueError(f"mismatched_fields {self.mismatched_fields} is below the {len(self.mismatched)} listed")
        return self

    @property
    def rows_differing(self) -> int:
        """Rows that differ, from the full count when recorded (never the length of the capped sample)."""
        if self.mismatched_rows is not None:
            return self.mismatched_rows
        return max(0, self.compared - self.identical - len(self.missing))

    @property
    def n_missing(self) -> int:
        return self.missing_count if self.missing_count is not None else len(self.missing)

    @property
    def n_unexpected(self) -> int:
        return self.unexpected_count if self.unexpected_count is not None else len(self.unexpected)

    @property
    def clean(self) -> bool:
        """Every expected row is there, identical, and nothing else is."""
        return (self.identical == self.compared and self.n_unexpected == 0 and not self.duplicate_keys
                and (self.observed_rows is None or self.observed_rows == self.compared))


class LinkRef(ArtifactModel):
    source_id: str
    target_id: str
    relation: str


class LinkComparison(ArtifactModel):
    """The links of two stores as (source_id, target_id, relation) sets (0.6.x's migrate copied none)."""

    compared: int = Field(ge=0, description="links in the expected store")
    identical: int = Field(ge=0, description="of those, present in the observed store")
    observed_links: int = Field(ge=0)
    missing_count: int = Field(ge=0)
    unexpected_count: int = Field(ge=0)
    missing: list[LinkRef] = Field(default_factory=list, description="the first 50 missing links")
    unexpected: list[LinkRef] = Field(default_factory=list, description="the first 50 unexpected links")


class SeedShape(ArtifactModel):
    """What the seeded source database holds: proof that the seed crossed the caps with texts that break."""

    rows: int = Field(ge=0)
    links: int = Field(ge=0)
    namespaces: dict[str, int]
    tiers: dict[str, int]
    priorities: int = Field(ge=0, description="distinct priorities")
    sources: int = Field(ge=0, description="distinct sources")
    with_tags: int = Field(ge=0)
    with_metadata: int = Field(ge=0, description="rows whose metadata holds more than an agent id")
    non_ascii: int = Field(ge=0)
    non_bmp: int = Field(ge=0, description="contents with a character outside the BMP (emoji)")
    combining: int = Field(ge=0, description="contents with a combining mark")
    multi_line: int = Field(ge=0)
    max_content_bytes: int = Field(ge=0)
    over_8_kib: int = Field(ge=0)


class Phase3Report(PhaseReportBase):
    """phase3.json: SQLite -> Postgres (twice) -> fresh SQLite."""

    phase: Literal[3] = 3
    report_forward: MigrateReport | None = None
    report_idempotent: MigrateReport | None = None
    report_reverse: MigrateReport | None = None
    src_count: int | None = None
    dst_count: int | None = None
    seeded: int | None = Field(None, ge=0)
    seeded_links: int | None = Field(None, ge=0)
    seed_shape: SeedShape | None = None
    content: dict[str, ContentComparison] = Field(
        default_factory=dict, description="leg ('forward', 'idempotent', 'reverse', 'roundtrip') -> row comparison"
    )
    links: dict[str, LinkComparison] = Field(default_factory=dict, description="leg -> link comparison")


# --- phase 4 -------------------------------------------------------------------------------------------


class FaultResult(ArtifactModel):
    """One fault class over all its cycles."""

    fault: str
    status: PhaseStatus
    cycles_requested: int | None = Field(None, ge=0)
    cycles_run: int = Field(ge=0)
    cycles_with_fault_evidence: int = Field(ge=0)
    writes: int = Field(ge=0)
    ok: int = Field(ge=0)
    quorum_not_met: int = Field(ge=0)
    fail: int = Field(ge=0)
    indeterminate: int = Field(0, ge=0)
    indeterminate_landed: int | None = Field(None, ge=0)
    convergence_bound: float | None = Field(None, description="upstream metric; null when nothing was acknowledged")
    lost: list[str] = Field(default_factory=list, description="acknowledged writes missing after convergence")
    unexpected: list[str] = Field(default_factory=list, description="rows nobody wrote (or whose write failed)")
    duplicates: list[str] = Field(default_factory=list)
    time_to_converge_s: Quantiles | None = None
    latency_ms: Quantiles | None = None
    timed_out: bool = False
    history: list[str] = Field(default_factory=list)


class Phase4Report(PhaseReportBase):
    """phase4.json: the chaos campaign."""

    phase: Literal[4] = 4
    cycles_per_fault: int | None = None
    writes_per_cycle: int | None = None
    convergence_by_fault: dict[str, float | None] | None = Field(
        None, description="fault -> upstream convergence bound (null: class produced no bound)"
    )
    faults: dict[str, FaultResult] = Field(default_factory=dict)
    clock_offset: ClockOffset | None = Field(
        None, description="the chaos host's clock against the operator's, used to compare and sort the histories"
    )


PhaseReport = Annotated[
    Phase1NodeReport | Phase2Report | Phase3Report | Phase4Report, Field(discriminator="phase")
]
PHASE_MODELS: dict[int, type[PhaseReportBase]] = {
    1: Phase1NodeReport, 2: Phase2Report, 3: Phase3Report, 4: Phase4Report,
}
