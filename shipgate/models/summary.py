"""campaign-summary.json and the release summary.

The campaign summary keeps upstream's top-level fields (`campaign_id`, `ai_memory_git_ref`,
`completed_at`, `overall_pass`, `phases`) and adds the verdict with the evidence behind it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Self

from pydantic import ConfigDict, Field, JsonValue, model_validator

from shipgate.models.common import (
    EXIT_CODES,
    ArtifactModel,
    CampaignStatus,
    ExitCode,
    PhaseStatus,
    Source,
    TargetRef,
)
from shipgate.models.phases import PHASE_NAMES, PhaseReport


class PhaseResult(ArtifactModel):
    """One expected artifact of a requested phase and what became of it (missing and invalid ones too)."""

    phase: int = Field(ge=1, le=4)
    artifact: str = Field(description="file name in the run folder, e.g. phase1-node-a.json")
    status: PhaseStatus
    reason: str | None = None


class UpstreamFile(ArtifactModel):
    """Provenance of one file of an imported upstream run (the file itself is not copied)."""

    name: str
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    state: Literal["ok", "empty", "not_json", "invalid", "reconstructed", "ignored"]
    detail: str | None = None


class UpstreamProvenance(ArtifactModel):
    """Where an imported campaign came from and what upstream itself said."""

    run_dir: str
    overall_pass: bool | None = Field(None, description="upstream's own verdict, verbatim")
    files: list[UpstreamFile] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class CampaignSummary(ArtifactModel):
    """campaign-summary.json."""

    campaign_id: str = Field(min_length=1)
    ai_memory_git_ref: str | None = None
    completed_at: datetime | None = None
    overall_pass: bool | None = Field(
        None, description="gate: verdict == 'pass'; imported: upstream's value verbatim (see `verdict`)"
    )
    phases: list[PhaseReport] = Field(default_factory=list, description="the phase reports, as upstream")
    source: Source = "gate"
    verdict: CampaignStatus
    exit_code: ExitCode
    reasons: list[str] = Field(description="why the campaign is not green; [] when it passed")
    phases_requested: list[int]
    phases_run: list[int]
    phase_results: list[PhaseResult] = Field(default_factory=list)
    started_at: datetime | None = None
    duration_s: float | None = Field(None, ge=0)
    durations_s: dict[str, float] = Field(default_factory=dict, description="step -> seconds (phase1, teardown, ...)")
    settings: dict[str, JsonValue] = Field(default_factory=dict)
    target: TargetRef | None = None
    provider: str | None = None
    upstream: UpstreamProvenance | None = None
    reconstructed_from: JsonValue = Field(None, alias="_reconstructed_from")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.exit_code != EXIT_CODES[self.verdict]:
            raise ValueError(f"exit_code {self.exit_code} contradicts verdict {self.verdict!r}")
        if self.verdict == "pass" and self.reasons:
            raise ValueError("a passing campaign must have reasons == []")
        if self.source == "gate" and self.overall_pass != (self.verdict == "pass"):
            raise ValueError(f"overall_pass={self.overall_pass} contradicts verdict {self.verdict!r}")
        return self


class ReleasePhase(ArtifactModel):
    model_config = ConfigDict(extra="allow")

    phase: int
    name: str
    pass_: bool = Field(alias="pass")
    wall_seconds: int | None = Field(None, ge=0)
    wall_human: str | None = None
    notes: str | None = None


class ReleaseSummary(ArtifactModel):
    """releases/<version>/summary.json; valid against upstream's releases/schema.json."""

    model_config = ConfigDict(extra="allow")

    schema_ref: str | None = Field(None, alias="$schema")
    version: str = Field(pattern=r"^v\d+\.\d+\.\d+(?:\.\d+)?(?:-[A-Za-z0-9.-]+)?$")
    campaign_run_id: str = Field(min_length=1)
    date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    ai_memory_git_ref: str | None = None
    ai_memory_commit: str | None = None
    wall_seconds: int = Field(ge=0)
    wall_human: str | None = None
    pass_count: int = Field(ge=0)
    fail_count: int = Field(ge=0)
    verdict: Literal["pass", "fail"]
    nhi_verdict: None = Field(None, description="always null: ship-gate is substrate-only")
    headline: str | None = None
    phases: list[ReleasePhase] = Field(min_length=1)
    evidence: dict[str, JsonValue] | None = None
    release: dict[str, JsonValue] | None = None

    @classmethod
    def from_campaign(cls, summary: CampaignSummary, version: str, campaign_run_id: str,
                      **fields: JsonValue) -> ReleaseSummary:
        """The release summary of a campaign. Upstream's verdict has no 'error': anything but pass is 'fail'.

        A phase passes only when every requested artifact of it passed; a campaign in which no phase ran cannot
        have a release summary (upstream requires at least one phase).
        """
        by_phase: dict[int, list[str]] = {}
        for result in summary.phase_results:
            by_phase.setdefault(result.phase, []).append(result.status)
        if not by_phase:
            raise ValueError(f"campaign {summary.campaign_id} has no phase results; a release summary needs one")
        phases = []
        for n, statuses in sorted(by_phase.items()):
            wall = summary.durations_s.get(f"phase{n}")
            phases.append(ReleasePhase(
                phase=n, name=PHASE_NAMES.get(n, f"phase{n}"), pass_=all(s == "pass" for s in statuses),
                wall_seconds=None if wall is None else round(wall),
                wall_human=None if wall is None else wall_human(wall)))
        passed = sum(p.pass_ for p in phases)
        wall_s = round(summary.duration_s or 0)
        when = summary.completed_at or summary.started_at
        verdict: Literal["pass", "fail"] = "pass" if summary.verdict == "pass" else "fail"
        data: dict[str, object] = dict(
            version=version, campaign_run_id=campaign_run_id,
            date=when.date().isoformat() if when else "",
            ai_memory_git_ref=summary.ai_memory_git_ref,
            ai_memory_commit=summary.target.commit if summary.target else None,
            wall_seconds=wall_s, wall_human=wall_human(wall_s), pass_count=passed, fail_count=len(phases) - passed,
            verdict=verdict,
            headline=f"{version} — {passed}/{len(phases)} phases green — {wall_human(wall_s)} wall"
            + (f" — {when.date().isoformat()}" if when else ""),
            phases=phases, evidence={"campaign_dir": f"runs/{summary.campaign_id}",
                                     "campaign_summary_json": f"runs/{summary.campaign_id}/campaign-summary.json"},
        )
        return cls.model_validate({**data, **fields})


def wall_human(seconds: float) -> str:
    """Upstream's style: '3s', '1m56s', '14m', '1h2m'."""
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h}h{m}m" if m else f"{h}h"
    if m:
        return f"{m}m{sec}s" if sec else f"{m}m"
    return f"{sec}s"
