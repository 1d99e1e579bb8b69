"""Read a run folder for rendering: every artifact through its model, every defect kept as a problem.

Rendering must work from the files on disk alone and must never crash on them: a missing, empty,
unparsable or invalid artifact becomes an `Issue` that the page shows as an error section. The verdict
shown is the one recorded in campaign-summary.json, unless the artifacts on disk no longer support it
(then the recomputed, worse verdict is shown and the discrepancy is named).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from shipgate.evidence.models import (
    BY_NAME,
    CampaignSummary,
    CycleRecord,
    InventoryRecord,
    OperationEvent,
    PhaseReportBase,
    PhaseResult,
    artifact_for,
)
from shipgate.evidence.problems import describe
from shipgate.evidence.validate import decode_text
from shipgate.evidence.verdict import ALL_PHASES, ArtifactError, campaign_verdict, expected_artifacts

SUMMARY = "campaign-summary.json"
INVENTORY = "inventory.json"
ANALYSIS = "analysis.md"
RAW_LIMIT = 256 * 1024  # characters of raw evidence shown per file; the file itself stays authoritative


@dataclass(frozen=True)
class Issue:
    """Why an artifact could not serve as evidence."""

    file: str
    message: str


@dataclass
class PhaseArtifact:
    """One phase file: its report when it loaded, else the problem; `raw` is what the page shows."""

    name: str
    phase: int
    report: PhaseReportBase | None = None
    issue: str | None = None
    raw: str | None = None
    result: PhaseResult | None = None

    @property
    def status(self) -> str:
        if self.report is None:
            return "error"
        if self.result is not None and self.result.status != self.report.status:
            return self.result.status
        return self.report.status


@dataclass
class RunData:
    """Everything the page, the JUnit file and the step summary are made from."""

    run_dir: Path
    campaign_id: str
    summary: CampaignSummary | None = None
    summary_raw: str | None = None
    inventory: InventoryRecord | None = None
    inventory_raw: str | None = None
    phases: list[PhaseArtifact] = field(default_factory=list)
    operations: dict[str, list[OperationEvent]] = field(default_factory=dict)
    cycles: list[CycleRecord] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    analysis_md: str | None = None
    verdict: str = "error"
    exit_code: int | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def upstream(self) -> bool:
        return self.summary is not None and self.summary.source == "upstream"


def _pydantic_problem(exc: ValidationError, limit: int = 3) -> str:
    return "invalid artifact: " + describe(exc, limit=limit)


def _clip(text: str) -> str:
    if len(text) <= RAW_LIMIT:
        return text
    return text[:RAW_LIMIT] + f"\n… ({len(text) - RAW_LIMIT} more characters in the file)"


def read_document(path: Path, model: type[Any]) -> tuple[Any | None, str | None, str | None]:
    """(model, problem, raw text for display) for one JSON artifact; never raises on bad content."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, "artifact missing", None
    except OSError as exc:
        return None, f"cannot read: {exc.strerror or exc}", None
    text, bad = decode_text(raw)
    if bad:
        return None, bad, raw[:2000].decode("utf-8", "replace") or None
    assert text is not None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", _clip(text)
    pretty = _clip(json.dumps(data, indent=2, ensure_ascii=False))
    try:
        return model.model_validate(data), None, pretty
    except ValidationError as exc:
        return None, _pydantic_problem(exc), pretty


def _read_jsonl(path: Path, rel: str, model: type[Any], issues: list[Issue]) -> list[Any]:
    """Every valid line through the model; bad lines become issues (at most a few named, then a count)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        issues.append(Issue(rel, f"cannot read: {exc.strerror or exc}"))
        return []
    text, bad = decode_text(raw)
    if bad:
        issues.append(Issue(rel, bad))
        return []
    assert text is not None
    out: list[Any] = []
    bad_lines: list[str] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(model.model_validate_json(line))
        except ValidationError as exc:
            bad_lines.append(f"line {lineno}: {_pydantic_problem(exc, 1)}")
    if bad_lines:
        shown = "; ".join(bad_lines[:3])
        more = f" (+{len(bad_lines) - 3} more bad lines)" if len(bad_lines) > 3 else ""
        issues.append(Issue(rel, f"{len(bad_lines)} of {len(bad_lines) + len(out)} lines unusable: {shown}{more}"))
    return out


def _phase_files(run_dir: Path, requested: list[int]) -> list[tuple[int, str]]:
    """Expected files of the requested phases, plus any other phase file present on disk."""
    names: list[tuple[int, str]] = [(p, n) for p in requested for n in expected_artifacts(p)]
    present = {n for _, n in names}
    for p in ALL_PHASES:
        for n in expected_artifacts(p):
            if n not in present and (run_dir / n).exists():
                names.append((p, n))
                present.add(n)
    for path in sorted(run_dir.glob("phase1-*.json")):
        if path.name not in present:
            names.append((1, path.name))
    return sorted(names, key=lambda pn: (pn[0], pn[1]))


def load_run(run_dir: Path) -> RunData:
    """Load a run folder; raises only when `run_dir` is not a directory (bad input, named clearly)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} does not exist or is not a directory")
    data = RunData(run_dir=run_dir, campaign_id=run_dir.name)

    summary, problem, data.summary_raw = read_document(run_dir / SUMMARY, CampaignSummary)
    if summary is not None:
        data.summary = summary
        data.campaign_id = summary.campaign_id
    else:
        data.issues.append(Issue(SUMMARY, f"{problem}: the campaign's verdict cannot be read from its summary"))

    if (run_dir / INVENTORY).exists():
        inv, problem, data.inventory_raw = read_document(run_dir / INVENTORY, InventoryRecord)
        data.inventory = inv
        if problem:
            data.issues.append(Issue(INVENTORY, problem))
    elif summary is not None and summary.source == "gate":
        data.issues.append(Issue(INVENTORY, "artifact missing: the hosts the campaign ran on are not recorded"))

    requested = list(summary.phases_requested) if summary is not None else []
    results = {r.artifact: r for r in summary.phase_results} if summary is not None else {}
    loaded: dict[str, PhaseReportBase | ArtifactError] = {}
    for phase, name in _phase_files(run_dir, requested):
        kind = artifact_for(name) or BY_NAME[f"phase{phase}" if phase > 1 else "phase1-node"]
        report, problem, raw = read_document(run_dir / name, kind.model)
        art = PhaseArtifact(name=name, phase=phase, report=report, raw=raw, result=results.get(name))
        if report is None:
            recorded = results.get(name)
            if problem == "artifact missing" and recorded is not None and recorded.reason:
                why = recorded.reason
                problem = why if why.startswith("artifact missing") else f"artifact missing; the campaign recorded: {why}"
            art.issue = problem
            loaded[name] = ArtifactError(name, problem or "unreadable")
        elif report.phase != phase:
            art.issue = f"the file holds a phase {report.phase} report, not phase {phase}"
            art.report = None
            loaded[name] = ArtifactError(name, art.issue)
        else:
            loaded[name] = report
        data.phases.append(art)

    hist = run_dir / "history"
    if hist.is_dir():
        for path in sorted(hist.glob("*.jsonl")):
            rel = path.relative_to(run_dir).as_posix()
            if artifact_for(rel) is BY_NAME["history-cycle"]:
                data.cycles.extend(_read_jsonl(path, rel, CycleRecord, data.issues))
            else:
                data.operations[rel] = _read_jsonl(path, rel, OperationEvent, data.issues)
    _referenced_histories(data)

    analysis = run_dir / ANALYSIS
    if analysis.is_file():
        text, bad = decode_text(analysis.read_bytes())
        if bad:
            data.issues.append(Issue(ANALYSIS, bad))
        else:
            data.analysis_md = text

    _judge(data, loaded)
    return data


def _referenced_histories(data: RunData) -> None:
    """A history file a report names but the folder lacks is missing evidence, not a silent gap."""
    named: set[str] = set()
    for art in data.phases:
        if art.report is None:
            continue
        named.update(art.report.history)
        for fault in getattr(art.report, "faults", {}).values():
            named.update(fault.history)
    for rel in sorted(named):
        if not (data.run_dir / rel).is_file():
            data.issues.append(Issue(rel, "history file named by a report is missing"))


def _judge(data: RunData, loaded: dict[str, PhaseReportBase | ArtifactError]) -> None:
    """The verdict to show: the recorded one, unless the files on disk now say something worse."""
    s = data.summary
    if s is None:
        data.verdict, data.exit_code = "error", 2
        data.reasons = [f"{SUMMARY}: {i.message}" for i in data.issues if i.file == SUMMARY]
        return
    data.verdict, data.exit_code, data.reasons = s.verdict, s.exit_code, list(s.reasons)
    if s.source == "upstream":
        return  # re-audited at import; upstream files that never became artifacts are named in phase_results
    try:
        recomputed = campaign_verdict(s.phases_requested, loaded)
    except ValueError as exc:
        data.verdict, data.exit_code = "error", 2
        data.reasons = [f"{SUMMARY}: phases_requested: {exc}", *data.reasons]
        return
    if s.verdict == "pass" and recomputed.status != "pass":
        data.verdict, data.exit_code = recomputed.status, recomputed.exit_code
        data.reasons = [
            f"{SUMMARY} records pass, but the artifacts on disk give {recomputed.status}",
            *recomputed.reasons,
        ]
