"""Artifact models: the single source of truth for every file the gate writes (schemas are generated)."""

from shipgate.evidence.models.common import (
    EXIT_CODES,
    REDACTED,
    ArtifactModel,
    CampaignStatus,
    Check,
    CheckStatus,
    ExitCode,
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
from shipgate.evidence.models.history import ClockOffset, CycleRecord, OperationEvent, OpType
from shipgate.evidence.models.inventory import InventoryRecord, RedactedPostgres
from shipgate.evidence.models.phases import (
    PHASE_MODELS,
    PHASE_NAMES,
    BackupEvidence,
    ContentComparison,
    CuratorAutonomy,
    CuratorReport,
    FaultResult,
    FieldMismatch,
    MigrateReport,
    NamespaceCount,
    Phase1NodeReport,
    Phase2Report,
    Phase3Report,
    Phase4Report,
    PhaseReport,
    PhaseReportBase,
    ProbeResult,
    RetryProbeResult,
    Stats,
    TierCount,
)
from shipgate.evidence.models.registry import ARTIFACTS, BY_NAME, ArtifactKind, artifact_for
from shipgate.evidence.models.selftest import (
    CellOutcome,
    FalseRedRate,
    FoundCheck,
    SelftestCell,
    SelftestReport,
    SelftestRow,
)
from shipgate.evidence.models.summary import (
    CampaignSummary,
    PhaseResult,
    ReleasePhase,
    ReleaseSummary,
    RunShape,
    UpstreamFile,
    UpstreamProvenance,
    VerdictScope,
    wall_human,
)

__all__ = [
    "ARTIFACTS", "BY_NAME", "EXIT_CODES", "PHASE_MODELS", "PHASE_NAMES", "REDACTED", "ArtifactKind",
    "ArtifactModel", "BackupEvidence", "CampaignStatus", "CampaignSummary", "CellOutcome", "Check",
    "CheckStatus", "ClockOffset", "ContentComparison", "CuratorAutonomy", "CuratorReport", "CycleRecord", "ExitCode",
    "FalseRedRate", "FaultResult", "FieldMismatch", "FoundCheck", "InventoryRecord", "MigrateReport",
    "NamespaceCount", "OpType", "OpenModel", "OperationEvent", "Phase1NodeReport", "Phase2Report",
    "Phase3Report", "Phase4Report", "PhaseReport", "PhaseReportBase", "PhaseResult", "PhaseStatus",
    "ProbeResult", "Quantiles", "RedactedPostgres", "ReleasePhase", "ReleaseSummary", "RetryProbeResult", "RunShape",
    "SelftestCell", "SelftestReport", "SelftestRow", "Source", "Stats", "TargetRef", "TierCount", "Timing", "UpstreamFile",
    "UpstreamProvenance", "VerdictScope", "artifact_for", "check_reasons", "phase_status", "redact_url", "wall_human",
]
