"""Verdicts: from checks to a phase status, from phase artifacts to the campaign's status and exit code.

The rules (DESIGN.md "Verdicts"): a phase passes only when every check passes; a requested phase whose
artifact is missing, empty, unparsable or schema-invalid is an `error`, never a pass; the campaign passes
only when every requested phase passes. A fail (positive evidence of a product defect) outranks an error.
Exit codes: 0 pass, 1 fail, 2 error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from shipgate.evidence.models import (
    EXIT_CODES,
    CampaignStatus,
    PhaseReportBase,
    PhaseResult,
    PhaseStatus,
    phase_status,
)
from shipgate.evidence.phase_ids import PHASE_NUMBERS, in_words
from shipgate.hosts.inventory import PEER_NAMES

ALL_PHASES: tuple[int, ...] = PHASE_NUMBERS


@dataclass(frozen=True)
class ArtifactError:
    """An expected artifact that cannot serve as evidence: missing, empty, not JSON, schema-invalid."""

    artifact: str
    message: str


@dataclass(frozen=True)
class Verdict:
    """The campaign's verdict and the evidence for it, ready to go into a CampaignSummary."""

    status: CampaignStatus
    exit_code: int
    reasons: list[str]
    phase_results: list[PhaseResult] = field(default_factory=list)
    phases_run: list[int] = field(default_factory=list)


def expected_artifacts(phase: int) -> list[str]:
    """The files a phase must leave in the run folder."""
    if phase == 1:
        return [f"phase1-{node}.json" for node in PEER_NAMES]
    if phase in PHASE_NUMBERS:
        return [f"phase{phase}.json"]
    raise ValueError(f"there is no phase {phase!r}; phases are {in_words()}")


def report_status(report: PhaseReportBase) -> tuple[PhaseStatus, str | None]:
    """A report's status as its checks give it, with the reason when it is not a pass."""
    status = phase_status(report.checks)
    if not report.checks:
        return "error", report.error or "the report records no checks: no evidence"
    if status == "pass":
        return "pass", None
    if status == "skipped":
        return "skipped", "every check was skipped: nothing was verified"
    bad = [c.reason() for c in report.checks if c.status == status]
    return status, "; ".join(bad) or (report.error or status)


def combine(statuses: Iterable[str]) -> CampaignStatus:
    """Any fail -> fail; any error (or skipped requested phase) -> error; nothing at all -> error; else pass."""
    seen = set(statuses)
    if not seen:
        return "error"
    if "fail" in seen:
        return "fail"
    if seen - {"pass"}:
        return "error"
    return "pass"


def parse_phases(spec: str | Iterable[int]) -> list[int]:
    """'1,2,4' or [1, 2, 4] -> [1, 2, 4]; rejects unknown phases by name."""
    items = [s.strip() for s in spec.split(",") if s.strip()] if isinstance(spec, str) else list(spec)
    phases: list[int] = []
    for item in items:
        try:
            n = int(item)
        except (TypeError, ValueError):
            raise ValueError(f"phase {item!r} is not a number; phases are {in_words()}") from None
        if n not in ALL_PHASES:
            raise ValueError(f"there is no phase {n}; phases are {in_words()}")
        if n not in phases:
            phases.append(n)
    return sorted(phases)


def campaign_verdict(
    requested: Iterable[int], artifacts: Mapping[str, PhaseReportBase | ArtifactError]
) -> Verdict:
    """Judge a campaign from the artifacts of its requested phases (keyed by file name).

    An expected artifact absent from `artifacts` counts as missing. An empty request is an error: a
    campaign that verified nothing must never read as green.
    """
    phases = parse_phases(requested)
    if not phases:
        return Verdict("error", EXIT_CODES["error"], ["no phases were requested: nothing was verified"])
    results: list[PhaseResult] = []
    run: list[int] = []
    for phase in phases:
        for name in expected_artifacts(phase):
            item = artifacts.get(name)
            if item is None:
                results.append(PhaseResult(phase=phase, artifact=name, status="error",
                                           reason="artifact missing: the phase left no evidence"))
                continue
            if phase not in run:
                run.append(phase)
            if isinstance(item, ArtifactError):
                results.append(PhaseResult(phase=phase, artifact=name, status="error", reason=item.message))
                continue
            if item.phase != phase:
                results.append(PhaseResult(phase=phase, artifact=name, status="error",
                                           reason=f"the file holds a phase {item.phase} report, not phase {phase}"))
                continue
            status, reason = report_status(item)
            results.append(PhaseResult(phase=phase, artifact=name, status=status, reason=reason))
    status = combine(r.status for r in results)
    reasons = [f"{r.artifact}: {r.status}: {r.reason}" for r in results if r.status != "pass"]
    return Verdict(status, EXIT_CODES[status], reasons, results, run)
