"""Validate a run folder against schemas/: every problem as `file  /json/pointer  message`.

Each artifact is found by its file name (shipgate.evidence.models.registry), checked against its JSON Schema
(JSONL line by line), then loaded into its model so cross-field rules (status agrees with checks, exit code
agrees with verdict) are checked too. Finally the campaign summary's verdict is recomputed from the files on
disk: a summary that claims more than its evidence supports is a problem.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaError
from jsonschema.exceptions import best_match
from pydantic import ValidationError

from shipgate.evidence.models import (
    BY_NAME,
    ArtifactKind,
    ArtifactModel,
    CampaignSummary,
    PhaseReportBase,
    artifact_for,
)
from shipgate.evidence.models.schemas import SCHEMA_DIR, load_schema
from shipgate.evidence.problems import field_errors, pointer
from shipgate.evidence.verdict import (
    ArtifactError,
    Verdict,
    campaign_verdict,
    expected_artifacts,
    parse_phases,
)

JSON_SUFFIXES = (".json", ".jsonl")


@dataclass(frozen=True)
class Problem:
    """One defect of one artifact."""

    file: str
    pointer: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}  {self.pointer or '/'}  {self.message}"


@cache
def _validator(kind_name: str, schema_dir: Path) -> Draft202012Validator:
    schema = load_schema(BY_NAME[kind_name], schema_dir)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _schema_errors(validator: Draft202012Validator, data: Any) -> list[tuple[str, str]]:
    """(pointer, message) for every schema error; for unions, the branch that came closest."""
    out: list[tuple[str, str]] = []
    for err in sorted(validator.iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.message)):
        if err.validator in ("oneOf", "anyOf") and err.context:
            err = _closest(err)
        out.append((pointer(err.absolute_path), err.message))
    return out


def _closest(err: SchemaError) -> SchemaError:
    """For a union, the best error of the one branch whose `phase` const matched, else the best overall."""
    branches: dict[Any, list[SchemaError]] = {}
    for e in err.context or []:
        branches.setdefault(e.relative_schema_path[0], []).append(e)
    matching = [errs for errs in branches.values()
                if not any(e.validator == "const" and list(e.relative_path) == ["phase"] for e in errs)]
    chosen = matching[0] if len(matching) == 1 else list(err.context or [])
    best = best_match(chosen) or err
    if best is not err and best.validator in ("oneOf", "anyOf") and best.context:
        return _closest(best)
    return best


def decode_text(raw: bytes) -> tuple[str | None, str | None]:
    """(text, problem): zero bytes, non-UTF-8 and binary content are named precisely."""
    if not raw:
        return None, "empty file (0 bytes): no evidence"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (invalid byte at offset {exc.start})"
    if not text.strip():
        return None, f"blank file ({len(raw)} bytes of whitespace): no evidence"
    return text, None


class _NotJson(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _NotJson(f"not JSON: {name} is not a JSON value")


def _parse_json(text: str) -> tuple[Any, str | None]:
    """Strict JSON: Python's json would accept NaN and Infinity, which no JSON reader does."""
    try:
        return json.loads(text, parse_constant=_no_constant), None
    except _NotJson as exc:
        return None, str(exc)
    except json.JSONDecodeError as exc:
        start = text.lstrip()[:40].splitlines()[0] if text.strip() else ""
        return None, f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno} (text starts {start!r})"


def _model_problems(model: type[ArtifactModel], data: Any) -> tuple[ArtifactModel | None, list[tuple[str, str]]]:
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, [(pointer(loc), msg) for loc, msg in field_errors(exc)]


def check_document(kind: ArtifactKind, data: Any, schema_dir: Path = SCHEMA_DIR) -> tuple[ArtifactModel | None, list[tuple[str, str]]]:
    """Schema first (precise pointers), then the model (cross-field rules). Returns (model, problems)."""
    problems = _schema_errors(_validator(kind.name, schema_dir), data)
    if problems:
        return None, problems
    return _model_problems(kind.model, data)


def load_artifact(path: Path, kind: ArtifactKind, name: str | None = None,
                  schema_dir: Path = SCHEMA_DIR) -> tuple[Any, list[Problem]]:
    """Read and check one artifact. JSON: (model | None, problems); JSONL: (list of models, problems)."""
    name = name or path.name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, [Problem(name, "", f"cannot read: {exc.strerror or exc}")]
    text, bad = decode_text(raw)
    if bad:
        return None, [Problem(name, "", bad)]
    assert text is not None
    if not kind.jsonl:
        data, bad = _parse_json(text)
        if bad:
            return None, [Problem(name, "", bad)]
        model, found = check_document(kind, data, schema_dir)
        return model, [Problem(name, p, m) for p, m in found]
    models: list[ArtifactModel] = []
    problems: list[Problem] = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            if line or lineno < text.count("\n") + 1:
                problems.append(Problem(f"{name}:{lineno}", "", "blank line (JSONL holds one object per line)"))
            continue
        data, bad = _parse_json(line)
        if bad:
            problems.append(Problem(f"{name}:{lineno}", "", bad))
            continue
        model, found = check_document(kind, data, schema_dir)
        problems.extend(Problem(f"{name}:{lineno}", p, m) for p, m in found)
        if model is not None:
            models.append(model)
    return models, problems


def run_files(run_dir: Path) -> Iterator[Path]:
    """The JSON and JSONL files of a run folder (hidden files and temp files of atomic writes excluded)."""
    for path in sorted(run_dir.rglob("*")):
        rel = path.relative_to(run_dir)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        if path.suffix in JSON_SUFFIXES:
            yield path


COLLECTIONS = ("history.json", "selftest.json")  # a folder of campaigns with a report of its own


def nested_campaigns(run_dir: Path) -> list[Path]:
    """The campaign folders inside a collection folder (`invoke history`, `invoke selftest`): each is a run
    of its own, validated as one; [] for a campaign's own folder."""
    if (run_dir / "campaign-summary.json").exists() or not any((run_dir / n).exists() for n in COLLECTIONS):
        return []
    return [d for d in sorted(run_dir.iterdir()) if d.is_dir() and (d / "campaign-summary.json").is_file()]


def validate_run(run_dir: str | Path, schema_dir: Path = SCHEMA_DIR) -> list[Problem]:
    """Every problem of every artifact of a run folder; [] means the folder is valid."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return [Problem(str(run_dir), "", "not a directory")]
    problems: list[Problem] = []
    loaded: dict[str, Any] = {}
    nested = nested_campaigns(run_dir)
    for sub in nested:
        problems += [Problem(f"{sub.name}/{p.file}", p.pointer, p.message) for p in check_run(sub, schema_dir)]
    for path in run_files(run_dir):
        if any(sub in path.parents for sub in nested):
            continue
        rel = path.relative_to(run_dir).as_posix()
        kind = artifact_for(rel)
        if kind is None:
            problems.append(Problem(rel, "", "no schema for this file name (see shipgate.evidence.models.registry)"))
            continue
        model, found = load_artifact(path, kind, rel, schema_dir)
        problems.extend(found)
        loaded[rel] = model if not found else ArtifactError(rel, "; ".join(str(p) for p in found))
    if not loaded and not problems:
        problems.append(Problem(str(run_dir), "", "no artifacts: the folder holds no JSON evidence"))
    summary = loaded.get("campaign-summary.json")
    broken = any(isinstance(v, ArtifactError) for v in loaded.values())
    if isinstance(summary, CampaignSummary) and not broken:
        problems.extend(_cross_check(summary, loaded))
    return problems


def missing_evidence(run_dir: str | Path) -> list[Problem]:
    """What the folder lacks against what its campaign requested: the summary, the inventory (gate runs: it
    names what ran where) and every expected artifact of every requested phase. A folder with none of them
    is no evidence, however valid the files it does hold."""
    run_dir = Path(run_dir)
    name = "campaign-summary.json"
    path = run_dir / name
    if not path.is_file():
        if any((run_dir / n).is_file() for n in COLLECTIONS):
            return []
        return [Problem(name, "", "missing: without the summary nothing says what the campaign requested")]
    try:
        summary = CampaignSummary.load(path)
    except (ValidationError, ValueError, OSError):
        return []  # validate_run names why it does not load
    problems: list[Problem] = []
    if summary.source == "gate" and not (run_dir / "inventory.json").is_file():
        problems.append(Problem("inventory.json", "", "missing: the hosts and target the campaign ran on are "
                                                      "not recorded"))
    for phase in summary.phases_requested:
        try:
            names = expected_artifacts(phase)
        except ValueError:
            continue  # named by the cross-check
        for artifact in names:
            if not (run_dir / artifact).is_file():
                problems.append(Problem(artifact, "", f"missing: phase {phase} was requested and left no evidence"))
    return problems


def check_run(run_dir: str | Path, schema_dir: Path = SCHEMA_DIR) -> list[Problem]:
    """`invoke validate`: every artifact valid (validate_run) and nothing the campaign requested missing."""
    problems = validate_run(run_dir, schema_dir)
    if Path(run_dir).is_dir():
        seen = {p.file for p in problems}
        problems += [p for p in missing_evidence(run_dir) if p.file not in seen]
    return problems


def _cross_check(summary: CampaignSummary, loaded: dict[str, Any]) -> list[Problem]:
    """The summary may not claim more than the phase artifacts on disk support."""
    name = "campaign-summary.json"
    phase_artifacts = {k: v for k, v in loaded.items() if isinstance(v, PhaseReportBase | ArtifactError)}
    try:
        verdict = campaign_verdict(summary.phases_requested, phase_artifacts)
    except ValueError as exc:
        return [Problem(name, "/phases_requested", str(exc))]
    if verdict.status == summary.verdict:
        return []
    why = "; ".join(verdict.reasons) or "every requested phase passed"
    return [Problem(name, "/verdict",
                    f"records {summary.verdict!r} but the artifacts on disk give {verdict.status!r}: {why}")]


def load_phase_artifacts(run_dir: Path, phases: Iterable[int],
                         schema_dir: Path = SCHEMA_DIR) -> dict[str, PhaseReportBase | ArtifactError]:
    """The phase reports of a run folder, each loaded and checked; broken ones become ArtifactError."""
    out: dict[str, PhaseReportBase | ArtifactError] = {}
    for phase in phases:
        for name in expected_artifacts(phase):
            path = run_dir / name
            if not path.exists():
                continue
            kind = artifact_for(name)
            assert kind is not None
            model, problems = load_artifact(path, kind, name, schema_dir)
            if problems or not isinstance(model, PhaseReportBase):
                out[name] = ArtifactError(name, "invalid artifact: " + "; ".join(
                    f"{p.pointer or '/'} {p.message}" for p in problems))
            else:
                out[name] = model
    return out


def verdict_for_run(run_dir: str | Path, requested: Iterable[int]) -> Verdict:
    """Judge a run folder from disk alone (artifacts are loaded and schema-checked first)."""
    phases = parse_phases(requested)
    return campaign_verdict(phases, load_phase_artifacts(Path(run_dir), phases))
