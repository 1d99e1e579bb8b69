"""selftest.json: the gate judged by its own detection power (`invoke selftest`).

The clean reference peer must come out green, every seeded defect red (`fail`, not `error`) in the phase
that owns it. Each row is one campaign; each cell one phase of it, with the checks that did not pass, so
the matrix says not only *that* the gate went red but *why*.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, JsonValue

from shipgate.evidence.models.common import ArtifactModel, CampaignStatus, CheckStatus, PhaseStatus, TargetRef

CellOutcome = Literal["caught", "missed", "error", "green", "false_red", "skipped"]
Shape = Literal["reduced", "full"]


class FoundCheck(ArtifactModel):
    """A check that did not pass, and the artifact it came from: the reason the gate gave."""

    artifact: str = Field(description="file of the run folder, e.g. phase1-node-a.json")
    id: str
    status: CheckStatus
    expected: JsonValue = None
    observed: JsonValue = None
    detail: str | None = None


class SelftestCell(ArtifactModel):
    """One phase of one campaign of the self-test."""

    phase: int = Field(ge=1, le=4)
    status: PhaseStatus = Field(description="the phase's status as the gate judged it (all its artifacts)")
    outcome: CellOutcome = Field(
        description="defect rows: caught (fail) / missed (pass) / error; the clean row: green / false_red / error")
    owner: bool = Field(False, description="this phase owns the defect (refpeer/defects.py)")
    faults: list[str] = Field(default_factory=list, description="phase 4: the fault classes that ran")
    fault_status: dict[str, PhaseStatus] = Field(default_factory=dict, description="phase 4: class -> status")
    checks: list[FoundCheck] = Field(default_factory=list, description="every check that failed or errored")
    duration_s: float | None = Field(None, ge=0)


class SelftestRow(ArtifactModel):
    """One campaign: the clean peer (possibly repeated) or one seeded defect."""

    name: str = Field(min_length=1, description="'clean' or the defect's name")
    defect: str | None = None
    breaks: str | None = Field(None, description="what the defect breaks (refpeer/defects.py)")
    owner_phase: int | None = Field(None, ge=1, le=4)
    expected_checks: list[str] = Field(
        default_factory=list, description="check-id patterns (fnmatch) the defect should turn red")
    right_reason: bool | None = Field(
        None, description="a failing check of the owning phase matches expected_checks; null: none listed")
    run: int = Field(1, ge=1, description="repeat number (the clean row under --repeat)")
    campaign_id: str
    run_dir: str = Field(description="the campaign's run folder, relative to the self-test folder")
    phases: list[int]
    verdict: CampaignStatus
    exit_code: int
    duration_s: float = Field(ge=0)
    cells: list[SelftestCell] = Field(default_factory=list)
    campaign_reasons: list[str] = Field(
        default_factory=list, description="reasons not tied to one phase: the gate crashed, an artifact was invalid")
    ok: bool = Field(description="this row meets its requirement")
    problems: list[str] = Field(default_factory=list, description="why the requirement is not met")
    warnings: list[str] = Field(default_factory=list, description="met, but worth a look")


class FalseRedRate(ArtifactModel):
    """Clean-peer campaigns that were not green (fail or error), out of all clean runs."""

    runs: int = Field(ge=0)
    red: int = Field(ge=0)
    fail: int = Field(0, ge=0)
    error: int = Field(0, ge=0)
    rate: float | None = Field(None, ge=0, le=1, description="red / runs; null when nothing ran")


class SelftestReport(ArtifactModel):
    """runs/selftest-<ts>/selftest.json."""

    selftest_id: str = Field(min_length=1)
    shape: Shape
    started_at: datetime
    completed_at: datetime | None = None
    duration_s: float | None = Field(None, ge=0)
    lab_name: str
    target: TargetRef | None = None
    settings: dict[str, JsonValue] = Field(default_factory=dict, description="the shape's gate settings")
    plan: str = Field(description="how the phases of each row were chosen")
    defects: list[str] = Field(default_factory=list, description="the defects requested")
    repeat: int = Field(1, ge=1, description="clean-peer campaigns run (--repeat)")
    rows: list[SelftestRow] = Field(default_factory=list)
    false_red: FalseRedRate
    requirements_met: bool
    problems: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    interrupted: bool = False
    exit_code: int = Field(ge=0, le=2, description="0 every requirement met, 1 not met, 2 could not finish")
