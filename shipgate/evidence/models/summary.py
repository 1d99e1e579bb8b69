"""campaign-summary.json and the release summary.

The campaign summary keeps upstream's top-level fields (`campaign_id`, `ai_memory_git_ref`,
`completed_at`, `overall_pass`, `phases`) and adds the verdict with the evidence behind it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Self

from pydantic import ConfigDict, Field, JsonValue, model_validator

from shipgate.evidence.models.common import (
    EXIT_CODES,
    ArtifactModel,
    CampaignStatus,
    ExitCode,
    PhaseStatus,
    Source,
    TargetRef,
)
from shipgate.evidence.models.phases import PHASE_NAMES, PhaseReport
from shipgate.run.settings import FAULT_CLASSES, GateSettings, release_shape_gaps


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


ScopeKind = Literal["release", "partial", "rehearsal", "self_test"]
SCOPE_LABELS: dict[str, str] = {"release": "release verdict", "partial": "partial gate", "rehearsal": "rehearsal",
                                "self_test": "self-test"}


class RunShape(ArtifactModel):
    """What a campaign asked for, in the terms of the release shape (the gate's defaults)."""

    phases: list[int]
    fault_classes: list[str] = Field(default_factory=list, description="phase 4's classes; [] without phase 4")
    cycles: int | None = Field(None, ge=0, description="phase 4 cycles per fault class")
    writes: int | None = Field(None, ge=0, description="phase 4 writes per cycle")
    seed: int | None = Field(None, description="phase 4 seed of the fault moments (replay with --seed)")

    @classmethod
    def of(cls, settings: GateSettings) -> RunShape:
        if 4 not in settings.phases:
            return cls(phases=list(settings.phases))
        p4 = settings.phase4
        return cls(phases=list(settings.phases), fault_classes=list(p4.faults), cycles=p4.cycles, writes=p4.writes,
                   seed=p4.seed)

    def describe(self) -> str:
        """'phases 1,2,3,4; chaos: a, b, 50 cycles x 100 writes, seed 7' (the plan line's middle)."""
        text = f"phases {','.join(map(str, self.phases))}"
        if 4 not in self.phases:
            return text + "; chaos: not requested"
        extra = [f for f in self.fault_classes if f not in FAULT_CLASSES]
        classes = (", ".join(["every release fault class", *extra]) if set(self.fault_classes) >= set(FAULT_CLASSES)
                   else ", ".join(self.fault_classes))
        seed = "drawn by phase 4" if self.seed is None else str(self.seed)
        return f"{text}; chaos: {classes}, {self.cycles} cycles x {self.writes} writes, seed {seed}"


def describe_target(target: TargetRef | None) -> tuple[str, str, str]:
    """(kind, short name, full description) of what was under test, provenance included."""
    if target is None or target.kind is None:
        return "binary", "an unrecorded target", "an unrecorded target (no kind, version or provenance recorded)"
    if target.kind == "refpeer":
        says = f" (a stand-in that reports {target.version!r})" if target.version else ""
        if target.defects:
            name = f"the reference peer with seeded defects {', '.join(target.defects)}"
            return "refpeer_defects", name, name + says
        return "refpeer", "the bundled reference peer", "the bundled reference peer" + says
    provenance = [f"git ref {target.git_ref or 'not recorded'}", f"commit {target.commit or 'not recorded'}"]
    if target.sha256:
        provenance.append(f"sha256 {target.sha256[:16]}")
    if target.kind == "release":
        short = target.release or target.version or "a named release"
        return "release", short, f"{short} ({target.version or 'version not read'}; {', '.join(provenance)})"
    short = target.version or (target.path.rsplit("/", 1)[-1] if target.path else "an ai-memory binary")
    where = f" at {target.path}" if target.path else ""
    return "binary", short, f"{short}{where} ({', '.join(provenance)})"


class VerdictScope(ArtifactModel):
    """What a verdict speaks for: the kind of target, and whether the campaign had the release shape.

    Every view (console, HTML banner, the three summaries, JUnit, the GitHub step summary, the runs index)
    states it from this one model, so none can claim more than the campaign tested. Only `kind == "release"`
    (a full-shape run against a real binary or release) may read as a release decision.
    """

    kind: ScopeKind = Field(description="release (a release decision), partial (a real target, not the release "
                                        "shape), rehearsal (the reference peer), self_test (seeded defects)")
    release_decision: bool = Field(description="true only for kind release")
    target_kind: Literal["refpeer", "refpeer_defects", "binary", "release"]
    target: str = Field(description="what was under test, with version and provenance")
    target_name: str = Field(description="the short name used in sentences")
    shape: RunShape
    gaps: list[str] = Field(default_factory=list, description="why the run falls short of the release shape")
    headline: str = Field(description="one line every view leads with")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        real = self.target_kind in ("binary", "release")
        expected: ScopeKind = ("self_test" if self.target_kind == "refpeer_defects" else "rehearsal" if not real
                               else "partial" if self.gaps else "release")
        if self.kind != expected:
            raise ValueError(f"scope kind {self.kind!r} contradicts target kind {self.target_kind!r} "
                             f"and gaps {self.gaps}: it is {expected!r}")
        if self.release_decision != (self.kind == "release"):
            raise ValueError(f"release_decision={self.release_decision} contradicts scope kind {self.kind!r}")
        return self

    @classmethod
    def of(cls, target: TargetRef | None, settings: GateSettings, *, installed: bool = True) -> VerdictScope:
        """The scope of a campaign on `target` with `settings`; `installed=False` for the plan, before the
        target's version could be read back (a release verdict needs to know which version it clears)."""
        target_kind, name, full = describe_target(target)
        gaps = release_shape_gaps(settings)
        if installed and target_kind in ("binary", "release") and not (target and target.version):
            gaps.append("the target's version was not read back, so the run cannot say which release it clears")
        if target_kind == "refpeer_defects":
            kind: ScopeKind = "self_test"
            headline = f"a self-test on {name}, not a release verdict"
        elif target_kind == "refpeer":
            kind = "rehearsal"
            headline = "a rehearsal on the bundled reference peer, not a release verdict"
        elif gaps:
            kind = "partial"
            headline = f"a partial gate on {name}, not a release verdict"
        else:
            kind = "release"
            headline = f"a release verdict on {name}"
        if gaps and kind != "release":
            headline += f" ({'; '.join(gaps)})"
        return cls(kind=kind, release_decision=kind == "release", target_kind=target_kind, target=full,
                   target_name=name, shape=RunShape.of(settings), gaps=gaps, headline=headline)

    @property
    def label(self) -> str:
        return SCOPE_LABELS[self.kind]

    def decision(self, verdict: str) -> str:
        """What the verdict means for the release, in one or two sentences; never more than the scope allows."""
        no_facts = "the gate could not establish the facts; fix the gate or its environment and re-run"
        if self.kind == "release":
            return {"pass": "Ship it: the release may be tagged.",
                    "fail": "Do not tag: the product broke an invariant."}.get(verdict, f"Do not tag yet: {no_facts}.")
        if self.kind == "partial":
            return {"pass": "Not a release verdict: what ran passed, but a partial gate cannot clear a release; run "
                            "the full gate (all four phases, every release fault class, 50 cycles x 100 writes or more) "
                            "before tagging.",
                    "fail": "Do not tag: the product broke an invariant (found by a partial gate)."
                    }.get(verdict, f"No verdict: {no_facts}.")
        if self.kind == "rehearsal":
            return {"pass": "Not a release verdict: the gate and its environment work on the reference peer; run it "
                            "against the release binary (--target) to decide a release.",
                    "fail": "Not a release verdict: the reference peer, which should pass, failed; look for a "
                            "problem in the gate or its environment before trusting either."
                    }.get(verdict, f"Not a release verdict, and no result: {no_facts}.")
        return {"pass": "Not a release verdict: a self-test whose seeded defects these phases did not catch "
                        "(`invoke selftest` judges whether they should have).",
                "fail": "Not a release verdict: a self-test; the gate turned red on the seeded defects, as a "
                        "self-test expects."}.get(verdict, f"Not a release verdict, and no result: {no_facts}.")


def unscoped_decision(verdict: str) -> str:
    """The decision of a summary that records no scope (an imported or an older run): never a release."""
    return ("Not a release verdict of this gate: the run records no scope (target kind and shape), so it "
            f"cannot clear a release; its verdict is {verdict}.")


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
    scope: VerdictScope | None = Field(None, description="what the verdict speaks for; absent on imported runs")
    cause: str | None = Field(None, description="why the campaign stopped short (a startup error, a gate crash, "
                                                "an interruption); reasons[0] when set")
    provider: str | None = None
    stack: str | None = Field(None, description="digitalocean: the Pulumi stack the hosts came from")
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
        if self.cause is not None and (self.verdict == "pass" or not self.reasons or self.reasons[0] != self.cause):
            raise ValueError("a campaign with a cause is not a pass and leads its reasons with it")
        return self

    def decision(self) -> str:
        """What the verdict means for the release (see VerdictScope.decision)."""
        return self.scope.decision(self.verdict) if self.scope else unscoped_decision(self.verdict)

    def scope_headline(self) -> str:
        if self.scope is not None:
            return self.scope.headline
        if self.source == "upstream":
            return "an imported run of the previous gate, re-audited: not a release verdict of this gate"
        return "scope not recorded: not a release verdict"


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
        have a release summary (upstream requires at least one phase), and neither can one whose scope is not a
        release decision (a rehearsal, a self-test or a partial gate must never read as a release).
        """
        if summary.scope is None or not summary.scope.release_decision:
            raise ValueError(f"campaign {summary.campaign_id} is {summary.scope_headline()}; a release summary "
                             "needs a release verdict")
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
