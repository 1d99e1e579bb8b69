"""Which file of a run folder is which artifact, and which schema validates it."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import PurePosixPath

from shipgate.evidence.models.common import ArtifactModel
from shipgate.evidence.models.history import CycleRecord, OperationEvent
from shipgate.evidence.models.inventory import InventoryRecord
from shipgate.evidence.models.phases import Phase1NodeReport, Phase2Report, Phase3Report, Phase4Report
from shipgate.evidence.models.release_history import ReleaseHistoryReport
from shipgate.evidence.models.selftest import SelftestReport
from shipgate.evidence.models.summary import CampaignSummary, ReleaseSummary


@dataclass(frozen=True)
class ArtifactKind:
    """One artifact type: its schema file stem, model, file patterns (relative to the run folder), format."""

    name: str
    model: type[ArtifactModel]
    patterns: tuple[str, ...]
    jsonl: bool = False

    @property
    def schema_file(self) -> str:
        return f"{self.name}.schema.json"


ARTIFACTS: tuple[ArtifactKind, ...] = (
    ArtifactKind("inventory", InventoryRecord, ("inventory.json",)),
    ArtifactKind("phase1-node", Phase1NodeReport, ("phase1-*.json",)),
    ArtifactKind("phase2", Phase2Report, ("phase2.json",)),
    ArtifactKind("phase3", Phase3Report, ("phase3.json",)),
    ArtifactKind("phase4", Phase4Report, ("phase4.json",)),
    ArtifactKind("campaign-summary", CampaignSummary, ("campaign-summary.json",)),
    ArtifactKind("release-summary", ReleaseSummary, ("release-summary.json",)),
    ArtifactKind("history-cycle", CycleRecord, ("history/*-cycles.jsonl",), jsonl=True),
    ArtifactKind("history-operation", OperationEvent, ("history/*.jsonl",), jsonl=True),
    ArtifactKind("selftest", SelftestReport, ("selftest.json",)),
    ArtifactKind("release-history", ReleaseHistoryReport, ("history.json",)),
)
BY_NAME: dict[str, ArtifactKind] = {a.name: a for a in ARTIFACTS}


def artifact_for(relpath: str | PurePosixPath) -> ArtifactKind | None:
    """The artifact kind of a file by its path inside a run folder (first matching pattern wins)."""
    rel = str(PurePosixPath(relpath))
    for kind in ARTIFACTS:
        if any(fnmatchcase(rel, p) and rel.count("/") == p.count("/") for p in kind.patterns):
            return kind
    return None
