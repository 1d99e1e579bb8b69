"""The product's record (docs/release-history.toml) and the comparison of a campaign with it.

The record holds one `[[release]]` per version with the defects its CHANGELOG (or commits) say were fixed after
it, each with the phase and check that must catch it, and `[[finding]]` entries: reds the gate found that no
CHANGELOG records, once filed (docs/real-target.md). `compare` is pure: a recorded release, the filed findings
and a campaign's evidence in, the per-phase and per-defect judgement out, so it is tested on hand-made summaries.

How a defect's check is read: an explicit `checks = [...]` list (fnmatch patterns) wins; otherwise the `check`
text is parsed: dotted ids before the first `:` or ` (`, split on `;` and ` / `, `.x` continuing the previous
id's prefix, `<node>`/`<fault>`/`<leg>` as `*`; a leading `proposed` marks a check the gate does not have yet;
`none...` names no check. A pattern `p` matches a check id equal to it (fnmatch) or below it (`p.*`).
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shipgate.evidence.models import CampaignSummary
from shipgate.evidence.models.common import phase_over_artifacts
from shipgate.evidence.models.release_history import (
    CellStatus,
    DefectVerdict,
    FindingVerdict,
    HistoryCell,
    HistoryCheck,
)

PHASES = (1, 2, 3, 4)
RECORD_SCHEMA = "release-history/1"
DECISIVE_LIMIT = 6


class RecordError(ValueError):
    """The record file is missing or malformed: the message names the file and the entry."""


@dataclass(frozen=True)
class RecordedDefect:
    id: str
    fixed_in: str
    source: str
    phases: tuple[int, ...]
    check: str
    patterns: tuple[str, ...]
    proposed: bool
    lab_observable: bool
    why_not: str | None = None


@dataclass(frozen=True)
class RecordedRelease:
    version: str
    defects: tuple[RecordedDefect, ...] = ()
    expected_current_gate: str | None = None


@dataclass(frozen=True)
class FiledFinding:
    """A red the gate found that no CHANGELOG records, written up (the record's `[[finding]]`)."""

    id: str
    releases: tuple[str, ...]
    phases: tuple[int, ...]
    patterns: tuple[str, ...]
    source: str
    summary: str = ""


@dataclass(frozen=True)
class Record:
    path: str
    releases: dict[str, RecordedRelease]
    findings: tuple[FiledFinding, ...] = ()


# --- reading -------------------------------------------------------------------------------------------

_TOKEN_RE = re.compile(r"^[a-z0-9_*-]+(?:\.[a-z0-9_*-]+)+$")


def parse_phases(text: str) -> tuple[int, ...]:
    """'phase2,phase4' -> (2, 4); 'none' -> ()."""
    out = []
    for part in str(text).replace(" ", "").split(","):
        m = re.fullmatch(r"phase([1-4])", part)
        if m:
            out.append(int(m.group(1)))
        elif part not in ("", "none"):
            raise ValueError(f"phase {part!r} is not phase1..phase4 or none")
    return tuple(sorted(set(out)))


def parse_check(text: str) -> tuple[tuple[str, ...], bool]:
    """(patterns, proposed) from the record's free-text check (see the module docstring)."""
    t = text.strip()
    if not t or t.lower().startswith("none"):
        return (), False
    proposed = t.lower().startswith("proposed")
    if proposed:
        t = t[len("proposed"):].strip()
    for stop in (":", " ("):
        if stop in t:
            t = t.split(stop, 1)[0]
    patterns: list[str] = []
    for part in re.split(r";|\s/\s", t):
        words = part.strip().split()
        if not words:
            continue
        token = re.sub(r"<[a-z]+>", "*", words[0])
        if token.startswith(".") and patterns:
            token = patterns[-1].rsplit(".", 1)[0] + token
        if _TOKEN_RE.match(token):
            patterns.append(token)
    return tuple(dict.fromkeys(patterns)), proposed


def _defect(entry: dict, where: str) -> RecordedDefect:
    try:
        phases = parse_phases(entry.get("phase", "none"))
        explicit = entry.get("checks")
        patterns, proposed = parse_check(str(entry.get("check", "none")))
        if explicit is not None:  # the gate's own check ids: no longer a proposal
            patterns, proposed = tuple(str(p) for p in explicit), False
        return RecordedDefect(id=str(entry["id"]), fixed_in=str(entry.get("fixed_in", "?")),
                              source=str(entry.get("source", "")), phases=phases, check=str(entry.get("check", "")),
                              patterns=patterns, proposed=bool(entry.get("proposed", proposed)),
                              lab_observable=bool(entry.get("lab_observable", True)), why_not=entry.get("why_not"))
    except (KeyError, ValueError, TypeError) as exc:
        raise RecordError(f"{where}: {type(exc).__name__}: {exc}") from None


def read_record(path: Path) -> Record:
    """The record file, checked: every release has a version, every defect an id and a readable phase."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise RecordError(f"cannot read the record {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RecordError(f"the record {path} is not valid TOML: {exc}") from None
    if data.get("schema") != RECORD_SCHEMA:
        raise RecordError(f"the record {path} has schema {data.get('schema')!r}, expected {RECORD_SCHEMA!r}")
    releases: dict[str, RecordedRelease] = {}
    for i, rel in enumerate(data.get("release", [])):
        version = rel.get("version")
        if not version:
            raise RecordError(f"{path}: [[release]] #{i + 1} has no version")
        defects = tuple(_defect(d, f"{path}: release {version} defect #{j + 1}")
                        for j, d in enumerate(rel.get("defect", [])))
        releases[str(version)] = RecordedRelease(str(version), defects, rel.get("expected_current_gate"))
    findings = []
    for i, f in enumerate(data.get("finding", [])):
        where = f"{path}: [[finding]] #{i + 1}"
        try:
            findings.append(FiledFinding(id=str(f["id"]), releases=tuple(map(str, f["releases"])),
                                         phases=parse_phases(f.get("phase", "none")),
                                         patterns=tuple(map(str, f["checks"])), source=str(f.get("source", "")),
                                         summary=str(f.get("summary", ""))))
        except (KeyError, ValueError, TypeError) as exc:
            raise RecordError(f"{where}: {type(exc).__name__}: {exc}") from None
    return Record(path=str(path), releases=releases, findings=tuple(findings))


# --- evidence ------------------------------------------------------------------------------------------

@dataclass
class PhaseEvidence:
    status: CellStatus
    checks: list[HistoryCheck] = field(default_factory=list)
    duration_s: float | None = None


@dataclass
class CampaignEvidence:
    """What the comparison needs of a campaign: each requested phase's status and every check it recorded."""

    phases: dict[int, PhaseEvidence]




def evidence_of(summary: CampaignSummary) -> CampaignEvidence:
    """The campaign summary as evidence: phases not requested are not_run; a missing artifact is an error."""
    out: dict[int, PhaseEvidence] = {}
    for phase in PHASES:
        if phase not in summary.phases_requested:
            out[phase] = PhaseEvidence("not_run")
            continue
        results = [r for r in summary.phase_results if r.phase == phase]
        checks: list[HistoryCheck] = []
        reported = set()
        for report in summary.phases:
            if report.phase != phase:
                continue
            reported.add(report.artifact_name)
            checks += [HistoryCheck(artifact=report.artifact_name, id=c.id, status=c.status, detail=c.detail)
                       for c in report.checks]
        for r in results:
            if r.status != "pass" and r.artifact not in reported:
                checks.append(HistoryCheck(artifact=r.artifact, id="artifact", status="error", detail=r.reason))
        out[phase] = PhaseEvidence(phase_over_artifacts([r.status for r in results]), checks,
                                   summary.durations_s.get(f"phase{phase}"))
    return CampaignEvidence(out)


# --- comparison ----------------------------------------------------------------------------------------

def matches(check_id: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(check_id, p) or fnmatch.fnmatchcase(check_id, p + ".*") for p in patterns)


@dataclass
class Comparison:
    cells: list[HistoryCell]
    defects: list[DefectVerdict]
    findings: list[FindingVerdict]
    surprises: list[str]


def _judge_defect(d: RecordedDefect, ev: CampaignEvidence) -> DefectVerdict:
    base = dict(id=d.id, fixed_in=d.fixed_in, source=d.source, phases=list(d.phases), check=d.check,
                patterns=list(d.patterns), proposed=d.proposed)
    if not d.lab_observable:
        return DefectVerdict(**base, outcome="not_observable", surprise=False,
                             why=f"cannot show on the lab: {d.why_not or 'the record says so'}")
    if not d.patterns:
        what = "a proposed check with no id yet" if d.proposed else "no gate check"
        return DefectVerdict(**base, outcome="uncovered" if d.proposed else "out_of_scope", surprise=False,
                             why=f"the record names {what}: {d.check}")
    phases = d.phases or PHASES
    matched = [c for p in phases for c in ev.phases[p].checks if c.id != "artifact" and matches(c.id, d.patterns)]
    failed = [c for c in matched if c.status == "fail"]
    if failed:
        return DefectVerdict(**base, outcome="caught", surprise=False, matched=failed[:DECISIVE_LIMIT],
                             why=f"red for the recorded reason: {', '.join(sorted({c.id for c in failed}))} failed")
    established = [c for c in matched if c.status == "pass"]
    if established and not any(c.status == "error" for c in matched):
        return DefectVerdict(**base, outcome="missed", surprise=True, matched=matched[:DECISIVE_LIMIT],
                             why=f"a gap: {', '.join(sorted({c.id for c in matched}))} ran and passed, yet the "
                                 f"record says the release carries it (fixed in {d.fixed_in})")
    if matched:
        return DefectVerdict(**base, outcome="undetermined", surprise=False, matched=matched[:DECISIVE_LIMIT],
                             why="its check(s) could not be established (error): "
                                 + ", ".join(sorted({c.id for c in matched})))
    if d.proposed:
        return DefectVerdict(**base, outcome="uncovered", surprise=False,
                             why=f"the gate has no check {', '.join(d.patterns)} yet (the record calls it proposed)")
    ran = [p for p in phases if ev.phases[p].status in ("pass", "fail")]
    if ran:
        return DefectVerdict(**base, outcome="undetermined", surprise=True,
                             why=f"phase(s) {','.join(map(str, ran))} ran but recorded no check "
                                 f"{', '.join(d.patterns)}: the check was renamed (fix the record) or is not run at this shape")
    return DefectVerdict(**base, outcome="undetermined", surprise=False,
                         why=f"phase(s) {','.join(map(str, phases))} did not establish anything (see the cells)")


def compare(release: RecordedRelease | None, findings: Sequence[FiledFinding], ev: CampaignEvidence,
            version: str) -> Comparison:
    """Judge one campaign against the record of its release (None: the release is not in the record)."""
    defects = [_judge_defect(d, ev) for d in (release.defects if release else ())]
    by_id = {d.id: d for d in (release.defects if release else ())}
    filed = [f for f in findings if version in f.releases]
    cells: list[HistoryCell] = []
    found: list[FindingVerdict] = []
    surprises: list[str] = []
    if release is None:
        surprises.append(f"{version} is not in the record: every red is unexplained")
    for phase in PHASES:
        pe = ev.phases[phase]
        judged = [v for v in defects if v.outcome in ("caught", "missed") and phase in (by_id[v.id].phases or PHASES)]
        filed_here = [f for f in filed if not f.phases or phase in f.phases]
        expected = "red" if judged or filed_here else ("green" if pe.status in ("pass", "fail") else "unknown")
        failing = [c for c in pe.checks if c.status == "fail"]
        erroring = [c for c in pe.checks if c.status == "error"]
        explained_by: list[str] = []
        unexplained: list[str] = []
        for c in failing:
            owners = [v.id for v in judged if v.outcome == "caught" and matches(c.id, v.patterns)]
            if owners:
                explained_by += owners
                continue
            known = next((f for f in filed_here if matches(c.id, f.patterns)), None)
            found.append(FindingVerdict(phase=phase, check=c, filed_as=known.id if known else None,
                                        surprise=known is None))
            if known:
                explained_by.append(f"finding {known.id}")
            else:
                unexplained.append(c.id)
        missed = [v.id for v in judged if v.outcome == "missed"]
        if pe.status in ("pass", "fail"):
            for f in filed_here:
                if not any(matches(c.id, f.patterns) for c in failing):
                    missed.append(f"finding {f.id}")
                    surprises.append(f"phase {phase}: filed finding {f.id} did not reproduce "
                                     f"(no failing {', '.join(f.patterns)})")
        if pe.status == "not_run":
            outcome = "not_run"
        elif pe.status not in ("pass", "fail"):
            outcome = "error"
            why = "; ".join(f"{c.id}: {c.detail or c.status}" for c in erroring[:2]) or pe.status
            surprises.append(f"phase {phase}: {pe.status}, the gate could not judge it ({why})")
        elif unexplained or missed:
            outcome = "surprise"
        else:
            outcome = "expected_red" if pe.status == "fail" else "expected_green"
        for cid in dict.fromkeys(unexplained):
            surprises.append(f"phase {phase}: finding: {cid} failed and no recorded defect explains it")
        decisive = failing if pe.status == "fail" else erroring if pe.status == "error" else []
        cells.append(HistoryCell(
            phase=phase, status=pe.status, expected=expected, outcome=outcome, decisive=decisive[:DECISIVE_LIMIT],
            checks_total=len(pe.checks), checks_failed=len(failing), explained_by=list(dict.fromkeys(explained_by)),
            unexplained=list(dict.fromkeys(unexplained)), gaps=missed, duration_s=pe.duration_s))
    for v in defects:
        if v.surprise:
            surprises.append(f"defect {v.id}: {v.why}")
    return Comparison(cells, defects, found, surprises)
