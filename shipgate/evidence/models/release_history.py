"""history.json: every released ai-memory judged by the gate and compared with the product's own record.

One row per release (`invoke history`): the campaign that judged it, each phase's verdict with the checks that
decided it, and each defect the record (docs/release-history.toml) says the release carries, with what became of
it: caught for the recorded reason, a gap (recorded, not caught), or not judged and why. A red no recorded
defect explains is a finding. A release that could not be installed or judged is a row with its reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, JsonValue

from shipgate.evidence.models.common import ArtifactModel, CampaignStatus, CheckStatus

CellStatus = Literal["pass", "fail", "error", "skipped", "not_run"]
CellOutcome = Literal["expected_red", "expected_green", "surprise", "error", "not_run"]
DefectOutcome = Literal["caught", "missed", "uncovered", "undetermined", "not_observable", "out_of_scope"]
RowStatus = Literal["judged", "install_error", "campaign_error", "not_run"]
RowOutcome = Literal["as_expected", "surprise", "error", "not_run"]


class HistoryCheck(ArtifactModel):
    """A check of the campaign, named by the artifact it came from."""

    artifact: str
    id: str
    status: CheckStatus
    detail: str | None = None


class HistoryCell(ArtifactModel):
    """One phase of one release: the gate's verdict, the checks that decided it, and the record's expectation."""

    phase: int = Field(ge=1, le=4)
    status: CellStatus = Field(description="the phase over all its artifacts; not_run: no campaign or not requested")
    expected: Literal["red", "green", "unknown"] = Field(
        description="red when a recorded defect is judged in this phase; unknown when nothing was judged")
    outcome: CellOutcome
    decisive: list[HistoryCheck] = Field(
        default_factory=list, description="fail: the failing checks; error: the erroring ones; pass: none")
    checks_total: int = Field(0, ge=0)
    checks_failed: int = Field(0, ge=0)
    explained_by: list[str] = Field(default_factory=list, description="recorded defects and filed findings "
                                                                      "whose checks failed here")
    unexplained: list[str] = Field(default_factory=list, description="failing check ids nothing explains")
    gaps: list[str] = Field(default_factory=list, description="recorded defects (or filed findings) judged in "
                                                              "this phase that the gate did not catch")
    duration_s: float | None = Field(None, ge=0)


class DefectVerdict(ArtifactModel):
    """One recorded defect of one release and what the gate made of it."""

    id: str
    fixed_in: str
    source: str = Field(description="the record's entry: CHANGELOG line or commit")
    phases: list[int] = Field(default_factory=list)
    check: str = Field(description="the record's check text, verbatim")
    patterns: list[str] = Field(default_factory=list, description="check-id patterns (fnmatch) read from it")
    proposed: bool = Field(False, description="the record calls the check proposed (not in the gate yet)")
    outcome: DefectOutcome = Field(
        description="caught: a matching check failed; missed: matching checks ran and none failed (a gap); "
                    "uncovered: the check is not in the gate yet; undetermined: its phase did not establish it; "
                    "not_observable: the record says it cannot show on the lab; out_of_scope: no gate check planned")
    surprise: bool
    matched: list[HistoryCheck] = Field(default_factory=list, description="the campaign's checks that matched")
    why: str


class FindingVerdict(ArtifactModel):
    """A failing check no recorded defect explains: a finding, unless the record has filed it already."""

    phase: int = Field(ge=1, le=4)
    check: HistoryCheck
    filed_as: str | None = Field(None, description="the record's [[finding]] id when it is filed for this release")
    surprise: bool


class HistoryInstall(ArtifactModel):
    """How the release got into the cache."""

    built_by: str
    binary: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    reported_version: str
    build_s: float | None = Field(None, ge=0)


class HistoryRow(ArtifactModel):
    """One release."""

    version: str
    release: str = Field(description="ai-memory@X.Y.Z")
    in_record: bool = Field(description="docs/release-history.toml has a [[release]] for it")
    status: RowStatus
    outcome: RowOutcome
    reason: str | None = Field(None, description="why the release was not judged, or why it stopped short")
    campaign_id: str | None = None
    run_dir: str | None = Field(None, description="the campaign's folder, relative to the history folder")
    verdict: CampaignStatus | None = None
    exit_code: int | None = None
    install: HistoryInstall | None = None
    install_s: float | None = Field(None, ge=0, description="wall time to install (or find) the release")
    lock_wait_s: float | None = Field(None, ge=0, description="wall time waiting for the lab lock")
    campaign_s: float | None = Field(None, ge=0, description="wall time of the campaign")
    wall_s: float = Field(ge=0, description="the row's wall time in total")
    cells: list[HistoryCell] = Field(default_factory=list)
    defects: list[DefectVerdict] = Field(default_factory=list)
    findings: list[FindingVerdict] = Field(default_factory=list)
    surprises: list[str] = Field(default_factory=list, description="one line per surprise, in either direction")
    expected_current_gate: str | None = Field(None, description="the record's own prediction, verbatim")


class ReleaseHistoryReport(ArtifactModel):
    """runs/history-<ts>/history.json."""

    history_id: str = Field(min_length=1)
    started_at: datetime
    completed_at: datetime | None = None
    duration_s: float | None = Field(None, ge=0)
    record: str = Field(description="the expectations file read (docs/release-history.toml)")
    record_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    selection: str = Field(description="how the releases were chosen")
    releases: list[str] = Field(description="the releases asked for, in order")
    shape: str = Field(description="the shape's name (small, full, or custom)")
    shape_description: str = Field(description="what every campaign ran, in words")
    settings: dict[str, JsonValue] = Field(default_factory=dict, description="the gate settings of every campaign")
    lab_name: str
    lock: str | None = Field(None, description="the lab lock held per release, when one was asked for")
    install: Literal["install", "cached_only"] = "install"
    rows: list[HistoryRow] = Field(default_factory=list)
    as_expected: int = Field(0, ge=0)
    surprises: int = Field(0, ge=0, description="rows whose outcome is a surprise")
    errors: int = Field(0, ge=0, description="rows the gate could not judge")
    interrupted: bool = False
    problems: list[str] = Field(default_factory=list)
    exit_code: int = Field(ge=0, le=2, description="0 every release as the record expects; 1 a surprise or a "
                                                   "release not judged; 2 could not finish (interrupted)")
