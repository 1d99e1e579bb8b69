"""Import the previous gate's history (alphaonedev/ai-memory-ship-gate `runs/<id>/`) and re-audit it.

Each upstream run folder becomes one of our run folders: the phase files become our phase reports
(`source: upstream`) carrying re-audit checks derived only from what upstream recorded, and a
campaign-summary.json records our verdict beside upstream's `overall_pass`. Nothing is invented: what
upstream did not record stays absent, unknown keys are kept verbatim in `upstream_extra`, and the raw files
are referenced by size and sha256 rather than copied (upstream's phase 3 embeds a Postgres URL with its
password, which never reaches runs/).

Upstream shapes handled: `reasons: [""]`, floats where ints, summaries with `"phases": []`, partial phase
lists, hand-reconstructed files (`_reconstructed_from`, possibly without `phases`), zero-byte phase files,
a plain-text `phase4.json`, and anything else malformed (reported, never a crash).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from shipgate.evidence.atomic import write_json
from shipgate.evidence.models import (
    PHASE_MODELS,
    CampaignSummary,
    Check,
    PhaseReportBase,
    UpstreamFile,
    UpstreamProvenance,
    check_reasons,
    phase_status,
)
from shipgate.evidence.problems import describe, field_errors
from shipgate.evidence.verdict import ALL_PHASES, ArtifactError, campaign_verdict, expected_artifacts
from shipgate.hosts.inventory import CAMPAIGN_ID_RE

SUMMARY = "campaign-summary.json"
RECONSTRUCTED = "_reconstructed_from"
BOUND_PASS = 0.995
MIN_MCP_TOOLS = 30
PHASE3_SEED = 1000
COMMON_KEYS = {"phase", "pass", "reasons", RECONSTRUCTED}
UPSTREAM_KEYS: dict[int, set[str]] = {
    1: COMMON_KEYS | {"host", "version", "stats", "curator", "mcp_tool_count", "recall_count",
                      "snapshot_count", "manifest_count"},
    2: COMMON_KEYS | {"total_writes", "ok", "quorum_not_met", "fail", "counts",
                      "probe1_single_peer_down", "probe2_both_peers_down"},
    3: COMMON_KEYS | {"report_forward", "report_idempotent", "report_reverse", "src_count", "dst_count"},
    4: COMMON_KEYS | {"cycles_per_fault", "writes_per_cycle", "convergence_by_fault"},
}
# Sub-objects that can be set aside (kept in upstream_extra) when their shape is unknown, so one odd
# field costs one check, not the whole phase.
SEPARABLE = {"stats", "curator", "counts", "report_forward", "report_idempotent", "report_reverse",
             "convergence_by_fault", "version", "mcp_tool_count", "recall_count", "snapshot_count",
             "manifest_count", "total_writes", "ok", "quorum_not_met", "fail", "probe1_single_peer_down",
             "probe2_both_peers_down", "src_count", "dst_count", "cycles_per_fault", "writes_per_cycle"}


class ImportProblem(Exception):
    """An upstream file that cannot become evidence; the message names the file and the defect."""


@dataclass
class AuditRow:
    """One line of the re-audit table."""

    run: str
    upstream_pass: bool | None
    verdict: str
    why: str
    out_dir: Path | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def differs(self) -> bool:
        ours = self.verdict == "pass"
        return self.upstream_pass is None or self.upstream_pass != ours


# --- reading ---------------------------------------------------------------------------------------------


@dataclass
class _Read:
    data: Any = None
    problem: str | None = None
    state: str = "ok"


class _NotJson(ValueError):
    pass


def _no_constant(name: str) -> Any:
    """Python's json accepts NaN and Infinity; JSON (and jq, which wrote upstream's files) does not."""
    raise _NotJson(f"{name} is not a JSON value")


def _read_json(path: Path) -> tuple[bytes, _Read]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return b"", _Read(problem=f"{path.name}: cannot read ({exc.strerror or exc})", state="invalid")
    if not raw:
        return raw, _Read(problem=f"{path.name} is empty (0 bytes)", state="empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return raw, _Read(problem=f"{path.name} is not UTF-8 text (bad byte at offset {exc.start})", state="not_json")
    if not text.strip():
        return raw, _Read(problem=f"{path.name} is blank ({len(raw)} bytes of whitespace)", state="empty")
    try:
        return raw, _Read(data=json.loads(text, parse_constant=_no_constant))
    except _NotJson as exc:
        return raw, _Read(problem=f"{path.name} is not JSON: {exc}", state="not_json")
    except json.JSONDecodeError as exc:
        first = text.strip().splitlines()[0][:60]
        return raw, _Read(problem=f"{path.name} is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
                                  f"it reads like plain text: {first!r}", state="not_json")


def _clean_reasons(value: Any) -> list[str]:
    """Upstream wrote `[""]` for 'no reasons'; empty strings are dropped, anything else kept as text."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [r if isinstance(r, str) else json.dumps(r) for r in items if r not in ("", None)]


def _int_like(v: Any) -> Any:
    """200.0 -> 200 (upstream sometimes wrote floats where other runs have ints); anything else unchanged."""
    if isinstance(v, float) and math.isfinite(v) and v.is_integer():
        return int(v)
    return v


def _status_text(v: Any) -> Any:
    """Probe results are HTTP statuses as strings ('201'); a number is written as upstream meant it."""
    v = _int_like(v)
    return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


def convert_phase(data: Any, phase: int, name: str) -> PhaseReportBase:
    """Turn one upstream phase object into our report with re-audit checks; ImportProblem when it cannot."""
    if not isinstance(data, dict):
        raise ImportProblem(f"{name} holds a JSON {type(data).__name__}, not an object")
    recorded = _int_like(data.get("phase", phase))
    if recorded != phase:
        raise ImportProblem(f"{name} says phase {recorded!r}, expected phase {phase}")
    if not isinstance(data.get("pass"), bool):
        raise ImportProblem(f"{name} has no boolean 'pass' (found {data.get('pass')!r})")
    known = UPSTREAM_KEYS[phase]
    fields: dict[str, Any] = {k: v for k, v in data.items() if k in known}
    extra: dict[str, Any] = {k: v for k, v in data.items() if k not in known}
    fields["phase"] = phase
    fields["reasons"] = _clean_reasons(data.get("reasons"))
    for key in list(fields):
        if key not in ("pass", "reasons", RECONSTRUCTED):
            fields[key] = _int_like(fields[key])
    for key in ("probe1_single_peer_down", "probe2_both_peers_down"):
        if key in fields:
            fields[key] = _status_text(fields[key])
    if phase == 2 and isinstance(fields.get("counts"), dict):
        fields["counts"] = {k: _int_like(v) for k, v in fields["counts"].items()}
    if phase == 1 and not isinstance(fields.get("host"), str):
        raise ImportProblem(f"{name} has no host name (found {fields.get('host')!r})")
    model_cls = PHASE_MODELS[phase]
    for _ in range(len(SEPARABLE) + 1):
        checks = reaudit(phase, fields, name)
        if RECONSTRUCTED in fields:
            checks.append(Check.error(f"{_prefix(phase, name)}.provenance", "original gate output",
                                      f"reconstructed by hand from {json.dumps(fields[RECONSTRUCTED])}: "
                                      "not evidence the gate produced", observed="reconstructed"))
        try:
            return model_cls.model_validate({
                **fields, "source": "upstream", "checks": checks, "status": phase_status(checks),
                "upstream_extra": extra or None,
            })
        except ValidationError as exc:
            bad = {loc[0] for loc, _ in field_errors(exc) if loc and loc[0] in SEPARABLE and loc[0] in fields}
            if not bad:
                raise ImportProblem(f"{name}: {describe(exc)}") from None
            for key in bad:
                extra[key] = fields.pop(key)
    raise ImportProblem(f"{name}: could not be converted")  # pragma: no cover - loop always returns or raises


# --- re-audit: upstream's own pass criteria (contract §7), applied to what upstream recorded -------------


def _prefix(phase: int, name: str) -> str:
    return name.removesuffix(".json").removeprefix("phase1-") if phase == 1 else f"phase{phase}"


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _at_least(cid: str, observed: Any, minimum: float, what: str) -> Check:
    if not _num(observed):
        return Check.error(cid, f">= {minimum:g}", f"upstream recorded no usable {what}", observed=observed)
    return Check.of(cid, f">= {minimum:g}", observed, observed >= minimum)


def _equals(cid: str, observed: Any, expected: Any, what: str) -> Check:
    if observed is None:
        return Check.error(cid, expected, f"upstream recorded no {what}")
    return Check.of(cid, expected, observed, observed == expected)


def _get(d: Any, *path: str) -> Any:
    """A nested value of upstream JSON, or None when any step is missing or not an object."""
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def reaudit(phase: int, d: dict[str, Any], name: str) -> list[Check]:
    """Checks that re-derive a phase's verdict from upstream's recorded values (plus obvious sanity checks)."""
    p = _prefix(phase, name)
    passed = d.get("pass")
    checks = [Check.of(f"{p}.upstream_pass", True, passed, passed is True,
                       None if passed is True else "upstream itself marked this phase failed: "
                       + "; ".join(_clean_reasons(d.get("reasons"))))]
    if phase == 1:
        errors = _get(d, "curator", "errors")
        checks += [
            _at_least(f"{p}.stats.total", _get(d, "stats", "total"), 1, "stats.total"),
            _at_least(f"{p}.recall_count", d.get("recall_count"), 1, "recall_count"),
            _equals(f"{p}.snapshot_count", d.get("snapshot_count"), 1, "snapshot_count"),
            _equals(f"{p}.manifest_count", d.get("manifest_count"), 1, "manifest_count"),
            (Check.of(f"{p}.curator.errors", "<= 1", len(errors), len(errors) <= 1) if isinstance(errors, list)
             else Check.error(f"{p}.curator.errors", "<= 1", "upstream recorded no curator report")),
            _at_least(f"{p}.mcp_tool_count", d.get("mcp_tool_count"), MIN_MCP_TOOLS, "mcp_tool_count"),
        ]
    elif phase == 2:
        checks += _reaudit_phase2(d)
    elif phase == 3:
        checks += _reaudit_phase3(d)
    elif phase == 4:
        checks += _reaudit_phase4(d)
    return checks


def _reaudit_phase2(d: dict[str, Any]) -> list[Check]:
    ok = d.get("ok")
    checks: list[Check] = []
    if not _num(ok):
        checks.append(Check.error("phase2.ok", "> 0", "upstream recorded no usable ok count", observed=ok))
    else:
        checks.append(Check.of("phase2.ok", "> 0", ok, ok > 0,
                               None if ok > 0 else "nothing was acknowledged: node counts prove nothing"))
        floor = math.floor(0.95 * ok)
        for node in ("a", "b", "c"):
            checks.append(_at_least(f"phase2.counts.{node}", _get(d, "counts", node), floor, f"count for node {node}"))
    parts = [d.get(k) for k in ("ok", "quorum_not_met", "fail")]
    total = d.get("total_writes")
    if all(_num(x) for x in [*parts, total]):
        checks.append(Check.of("phase2.accounting", total, sum(parts), sum(parts) == total,
                               "ok + quorum_not_met + fail must equal total_writes"))
    else:
        checks.append(Check.error("phase2.accounting", "ok + quorum_not_met + fail == total_writes",
                                  "upstream recorded incomplete write counts"))
    checks.append(_equals("phase2.probe1_single_peer_down", d.get("probe1_single_peer_down"), "201",
                          "probe 1 result"))
    checks.append(_equals("phase2.probe2_both_peers_down", d.get("probe2_both_peers_down"), "503",
                          "probe 2 result"))
    return checks


def _reaudit_phase3(d: dict[str, Any]) -> list[Check]:
    checks: list[Check] = []
    legs = {label: d.get(f"report_{label}") for label in ("forward", "idempotent", "reverse")}
    for label, leg in legs.items():
        if not isinstance(leg, dict):
            checks.append(Check.error(f"phase3.{label}", "a migrate report",
                                      f"upstream recorded no usable report_{label}", observed=leg))
            continue
        errs = leg.get("errors")
        clean = errs == []
        detail = None if clean else ("; ".join(map(str, errs))[:300] if isinstance(errs, list) else "no error list")
        checks.append(Check.of(f"phase3.{label}.errors", 0, len(errs) if isinstance(errs, list) else errs,
                               clean, detail))
    fwd, idem = legs["forward"], legs["idempotent"]
    if isinstance(fwd, dict):
        checks.append(_equals("phase3.forward.memories_read", fwd.get("memories_read"), PHASE3_SEED, "rows read"))
        checks.append(_equals("phase3.forward.memories_written", fwd.get("memories_written"),
                              fwd.get("memories_read"), "rows written"))
    if isinstance(idem, dict):
        checks.append(_equals("phase3.idempotent.memories_written", idem.get("memories_written"), PHASE3_SEED,
                              "rows written on the re-run"))
    src, dst = d.get("src_count"), d.get("dst_count")
    if _num(src) and _num(dst):
        checks.append(Check.of("phase3.src_count==dst_count", src, dst, src == dst and src > 0))
    else:
        checks.append(Check.error("phase3.src_count==dst_count", "src_count == dst_count",
                                  "upstream recorded no usable row counts", observed=[src, dst]))
    checks.append(Check.skipped("phase3.content", "upstream compared counts only; no record-by-record evidence"))
    return checks


def _reaudit_phase4(d: dict[str, Any]) -> list[Check]:
    bounds = d.get("convergence_by_fault")
    if not isinstance(bounds, dict) or not bounds:
        return [Check.error("phase4.convergence_by_fault", f">= {BOUND_PASS} per fault class",
                            "no fault class produced a bound: a timed-out class passed vacuously upstream",
                            observed=bounds)]
    checks = []
    for fault, bound in sorted(bounds.items()):
        cid = f"phase4.{fault}.convergence_bound"
        if not _num(bound):
            checks.append(Check.error(cid, f">= {BOUND_PASS}", "the class produced no bound (timed out?)",
                                      observed=bound))
        elif bound > 1:
            checks.append(Check.error(cid, f">= {BOUND_PASS} and <= 1", "a bound above 1 means the harness "
                                      "counted rows across cycles (upstream PR #312): not a measurement",
                                      observed=bound))
        else:
            checks.append(Check.of(cid, f">= {BOUND_PASS}", bound, bound >= BOUND_PASS))
    return checks


# --- one run ---------------------------------------------------------------------------------------------


def _safe_name(name: str) -> str:
    if CAMPAIGN_ID_RE.match(name):
        return name
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._")[:63]
    return cleaned or "unnamed"


def _summary_phase(summary_phases: list[Any], phase: int, name: str) -> Any:
    """The copy of a phase inside upstream's summary, used only when the phase file itself is absent."""
    candidates = [p for p in summary_phases if isinstance(p, dict) and _int_like(p.get("phase")) == phase]
    if phase != 1:
        return candidates[0] if len(candidates) == 1 else None
    node = name.removesuffix(".json").removeprefix("phase1-")
    by_host = [p for p in candidates if str(p.get("host", "")).endswith(node)]
    return by_host[0] if len(by_host) == 1 else None


def _parse_time(v: Any, notes: list[str]) -> datetime | None:
    if v is None:
        return None
    try:
        return datetime.fromisoformat(str(v).replace("Z", "+00:00"))
    except ValueError:
        notes.append(f"completed_at {v!r} is not a timestamp; left out")
        return None


def import_run(src: Path, out_root: Path) -> AuditRow:
    """Convert one upstream run folder into out_root/<run>/ and return its re-audit row. Never raises on bad input."""
    run = src.name
    notes: list[str] = []
    files: dict[str, UpstreamFile] = {}
    reads: dict[str, _Read] = {}
    for path in sorted(p for p in src.iterdir() if p.is_file()):
        raw, read = _read_json(path) if path.suffix == ".json" else (path.read_bytes(), _Read(state="ignored"))
        reads[path.name] = read
        files[path.name] = UpstreamFile(name=path.name, bytes=len(raw), sha256=hashlib.sha256(raw).hexdigest(),
                                        state=read.state, detail=read.problem)

    summary: dict[str, Any] = {}
    s_read = reads.get(SUMMARY)
    if s_read is None:
        notes.append("no campaign-summary.json in the upstream run")
    elif s_read.problem:
        notes.append(s_read.problem)
    elif not isinstance(s_read.data, dict):
        notes.append(f"campaign-summary.json holds a JSON {type(s_read.data).__name__}, not an object")
        files[SUMMARY] = files[SUMMARY].model_copy(update={"state": "invalid", "detail": notes[-1]})
    else:
        summary = s_read.data
    summary_phases = summary.get("phases")
    if summary and "phases" not in summary:
        notes.append("campaign-summary.json has no 'phases' key")
    elif summary and summary_phases == []:
        notes.append("upstream recorded no phase (\"phases\": [])")
    if RECONSTRUCTED in summary:
        files[SUMMARY] = files[SUMMARY].model_copy(update={"state": "reconstructed"})
        notes.append(f"campaign-summary.json was reconstructed by hand from {json.dumps(summary[RECONSTRUCTED])}")
    if not isinstance(summary_phases, list):
        summary_phases = []

    artifacts: dict[str, PhaseReportBase | ArtifactError] = {}
    for phase in ALL_PHASES:
        for name in expected_artifacts(phase):
            read = reads.get(name)
            data: Any = None
            if read is None:
                data = _summary_phase(summary_phases, phase, name)
                if data is None:
                    continue
                notes.append(f"{name} absent; its copy in campaign-summary.json 'phases' was used")
            elif read.problem:
                artifacts[name] = ArtifactError(name, read.problem)
                continue
            else:
                data = read.data
            try:
                report = convert_phase(data, phase, name)
            except ImportProblem as exc:
                artifacts[name] = ArtifactError(name, str(exc))
                if name in files:
                    files[name] = files[name].model_copy(update={"state": "invalid", "detail": str(exc)})
                continue
            if RECONSTRUCTED in data and name in files:
                files[name] = files[name].model_copy(update={"state": "reconstructed"})
            artifacts[name] = report

    verdict = campaign_verdict(ALL_PHASES, artifacts)
    upstream_pass = summary.get("overall_pass") if isinstance(summary.get("overall_pass"), bool) else None
    if summary and upstream_pass is None:
        notes.append(f"overall_pass is {summary.get('overall_pass')!r}, not a boolean")
    campaign_id = summary.get("campaign_id") if isinstance(summary.get("campaign_id"), str) else None
    if campaign_id and campaign_id != run:
        notes.append(f"campaign_id {campaign_id!r} differs from the folder name {run!r}")
    git_ref = summary.get("ai_memory_git_ref")
    reports = [a for a in artifacts.values() if isinstance(a, PhaseReportBase)]
    doc = CampaignSummary(
        campaign_id=campaign_id or run,
        ai_memory_git_ref=git_ref if isinstance(git_ref, str) else None,
        completed_at=_parse_time(summary.get("completed_at"), notes),
        overall_pass=upstream_pass,
        phases=reports,
        source="upstream",
        verdict=verdict.status,
        exit_code=verdict.exit_code,
        reasons=verdict.reasons,
        phases_requested=list(ALL_PHASES),
        phases_run=verdict.phases_run,
        phase_results=verdict.phase_results,
        upstream=UpstreamProvenance(run_dir=str(src), overall_pass=upstream_pass, files=list(files.values()),
                                    notes=notes),
        reconstructed_from=summary.get(RECONSTRUCTED),
    )
    out_dir = out_root / _safe_name(run)
    refusal = _refuse_overwrite(out_dir)
    if refusal:
        return AuditRow(run, upstream_pass, "error", refusal, None, [refusal])
    out_dir.mkdir(parents=True, exist_ok=True)
    written = set()
    for report in reports:
        name = next(n for n, a in artifacts.items() if a is report)
        write_json(out_dir / name, report)
        written.add(name)
    for phase in ALL_PHASES:
        for name in expected_artifacts(phase):
            if name not in written:
                (out_dir / name).unlink(missing_ok=True)
    write_json(out_dir / SUMMARY, doc)
    return AuditRow(run, upstream_pass, verdict.status, _why(verdict.status, verdict.phase_results, notes, reports),
                    out_dir, verdict.reasons)


def _refuse_overwrite(out_dir: Path) -> str | None:
    """Never overwrite a run folder the gate itself produced."""
    existing = out_dir / SUMMARY
    if not existing.exists():
        return None
    try:
        source = json.loads(existing.read_bytes()).get("source")
    except (ValueError, AttributeError):
        source = None
    if source != "upstream":
        return f"{out_dir} already holds a run that was not imported; left untouched"
    return None


def _why(status: str, results: list[Any], notes: list[str], reports: list[PhaseReportBase]) -> str:
    """A short reason for the table (the summary holds the full list)."""
    if status == "pass":
        failed_upstream = [f"{r.artifact_name}" for r in reports if not r.pass_]
        return f"upstream marked {', '.join(failed_upstream)} failed" if failed_upstream else ""
    present = [r for r in results if r.reason != "artifact missing: the phase left no evidence"]
    if not present:
        context = "; ".join(n for n in notes if "phases" in n or "reconstructed" in n)
        return "no phase evidence" + (f" ({context})" if context else "")
    missing = sorted({r.phase for r in results if r not in present})
    parts = [f"{r.artifact} {r.status}: {r.reason}" for r in present if r.status != "pass"]
    if missing:
        parts.insert(0, "partial phase list: phase " + ", ".join(map(str, missing)) + " missing")
    return "; ".join(parts)


# --- many runs -------------------------------------------------------------------------------------------


def _natural(path: Path) -> list[Any]:
    """r2 before r10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def run_dirs(src: Path) -> list[Path]:
    """The upstream run folders under `src` (or `src` itself when it is one run folder)."""
    if not src.is_dir():
        raise ImportProblem(f"{src} is not a directory")
    if any(p.suffix == ".json" and p.is_file() for p in src.iterdir()):
        return [src]
    dirs = sorted((p for p in src.iterdir() if p.is_dir() and not p.name.startswith(".")), key=_natural)
    if not dirs:
        raise ImportProblem(f"{src} holds no upstream run folders (expected <run-id>/campaign-summary.json, ...)")
    return dirs


def import_upstream(src: str | Path, out_root: str | Path) -> list[AuditRow]:
    """Import every run folder under `src` into `out_root`; one audit row per run.

    One run that cannot be imported (a bug here, a full disk) is reported as an error row; the batch goes on.
    """
    rows = []
    for d in run_dirs(Path(src)):
        try:
            rows.append(import_run(d, Path(out_root)))
        except Exception as exc:  # the batch boundary: one bad run must not hide the others
            why = f"import failed: {type(exc).__name__}: {exc}"
            rows.append(AuditRow(d.name, None, "error", why, None, [why]))
    return rows


def audit_table(rows: list[AuditRow], width: int = 160) -> str:
    """The re-audit table: our verdict beside upstream's overall_pass, with the reason when they differ."""
    label = {True: "pass", False: "fail", None: "-"}
    run_w = max([len("run"), *(len(r.run) for r in rows)])
    lines = [f"{'run':<{run_w}}  upstream  ours   reason", f"{'-' * run_w}  --------  -----  ------"]
    for r in rows:
        why = r.why if r.differs or r.verdict != "pass" else ""
        line = f"{r.run:<{run_w}}  {label[r.upstream_pass]:<8}  {r.verdict:<5}  {why}"
        lines.append(line if len(line) <= width else line[: width - 3] + "...")
    counts = {s: sum(r.verdict == s for r in rows) for s in ("pass", "fail", "error")}
    differ = sum(r.differs for r in rows)
    lines.append(f"{len(rows)} runs: {counts['pass']} pass, {counts['fail']} fail, {counts['error']} error; "
                 f"{differ} differ from upstream's overall_pass")
    return "\n".join(lines)


__all__ = ["AuditRow", "ImportProblem", "audit_table", "check_reasons", "convert_phase", "import_run",
           "import_upstream", "reaudit", "run_dirs"]
