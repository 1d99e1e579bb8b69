"""Render a run folder's evidence: the campaign page, junit.xml, the CI step summary and the runs index.

Everything is made from the files on disk alone (so `invoke report` can re-render any time), and nothing
here may crash on a bad artifact: a missing or broken file becomes an error section on the page and an
error testcase in JUnit. Pages are static and self-contained: inline CSS and SVG, no scripts, and a
Content-Security-Policy that forbids every fetch, so a page can never reach outside itself.
"""

from __future__ import annotations

import json
import os
import re
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from shipgate.evidence.atomic import write_text
from shipgate.evidence.models import CampaignSummary, Check, PhaseReportBase
from shipgate.evidence.report.junit import JCase, JSuite, write_junit
from shipgate.evidence.report.load import SUMMARY, PhaseArtifact, RunData, load_run, read_document
from shipgate.evidence.report.markdown import render_markdown
from shipgate.evidence.report.plots import Plot, campaign_plots
from shipgate.evidence.report.summaries import (
    SHORT,
    Summary,
    check_counts,
    decision,
    scope_headline,
    sentence,
    summaries,
    target_name,
)
from shipgate.evidence.report.svg import empty_plot
from shipgate.nemesis import faults

HERE = Path(__file__).parent
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
MARKS = {"pass": "✓", "fail": "✗", "error": "!", "skipped": "–"}
STEP_SUMMARY_LIMIT = 1024 * 1024 - 64 * 1024  # GitHub refuses step summaries over 1 MiB; keep a margin
VALUE_LIMIT = 300


# Characters an HTML document may not contain (controls, noncharacters, lone surrogates). Evidence can hold
# them (a binary file, a program's stderr); they are shown as U+FFFD so the page stays valid.
_NOT_HTML = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]")


def clean_text(value: str) -> str:
    return _NOT_HTML.sub("\ufffd", value)


def _finalize(value: Any) -> Any:
    """Applied to every expression a template prints: strip characters HTML forbids, keep Markup as Markup."""
    if isinstance(value, Markup):
        return Markup(clean_text(str(value)))
    if isinstance(value, str):
        return clean_text(value)
    return value


@cache
def _env() -> Environment:
    return Environment(
        loader=FileSystemLoader(HERE),  # templates sit beside this module so package-data ships them
        autoescape=select_autoescape(["html", "j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=_finalize,
    )


@cache
def _css() -> Markup:
    # Our own stylesheet, inlined verbatim; "</" cannot occur in it, so it cannot close the <style> element.
    css = (HERE / "report.css").read_text(encoding="utf-8")
    return Markup(css.replace("</", "<\\/"))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_time(t: datetime | None) -> str:
    if t is None:
        return "not recorded"
    if t.tzinfo is not None:
        t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_duration(s: float | None) -> str:
    if s is None:
        return "—"
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(round(s), 60)
    if m < 60:
        return f"{m} min {sec:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def fmt_value(v: Any, limit: int = VALUE_LIMIT) -> str:
    """A check's expected/observed value, compact; long values are cut (the raw evidence has them whole)."""
    text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _flatten(d: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(d, dict) and d:
        out: list[tuple[str, str]] = []
        for k, v in d.items():
            out.extend(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return [(prefix, fmt_value(d, 200))]


# --- the campaign page --------------------------------------------------------------------------------


@dataclass
class CheckView:
    id: str
    status: str
    mark: str
    expected: str
    observed: str
    detail: str


@dataclass
class PhaseView:
    anchor: str
    title: str
    status: str
    file: str
    duration: str
    checks: list[CheckView] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)
    raw: str | None = None
    problem: str | None = None
    problem_title: str = ""
    replication: list[ReplicationRow] = field(default_factory=list)
    replication_nodes: list[str] = field(default_factory=list)


@dataclass
class ReplicationRow:
    """One operation kind of phase 2's workload: its verdict, time to converge and what did not replicate, per node."""

    kind: str
    status: str
    ops: str
    ttc: list[str]
    missing: list[str]
    reason: str


@dataclass
class Problem:
    title: str
    message: str
    file: str = ""


def phase_title(art: PhaseArtifact) -> str:
    name = SHORT.get(art.phase, "?")
    if art.phase == 1:
        node = getattr(art.report, "node", None) or art.name.removeprefix("phase1-").removesuffix(".json")
        return f"Phase 1 · {name} · {node}"
    return f"Phase {art.phase} · {name}"


def _check_view(c: Check) -> CheckView:
    return CheckView(c.id, c.status, MARKS.get(c.status, "?"), fmt_value(c.expected), fmt_value(c.observed),
                     c.detail or "")


def _figures(r: PhaseReportBase) -> list[tuple[str, str]]:
    """The upstream headline fields of a report (what readers of the old gate looked at)."""
    keys = ("host", "version", "mcp_tool_count", "recall_count", "snapshot_count", "manifest_count",
            "total_writes", "ok", "quorum_not_met", "fail", "indeterminate", "counts", "probe1_single_peer_down",
            "probe2_both_peers_down", "src_count", "dst_count", "seeded", "cycles_per_fault", "writes_per_cycle",
            "convergence_by_fault")
    out = [(k, fmt_value(getattr(r, k))) for k in keys if getattr(r, k, None) is not None]
    for name, fault in getattr(r, "faults", {}).items():
        out.append((f"faults.{name}", f"{fault.status}: {fault.cycles_run} cycles, ok {fault.ok}/{fault.writes}, "
                    f"lost {len(fault.lost)}, unexpected {len(fault.unexpected)}, duplicates "
                    f"{len(fault.duplicates)}, bound {fault.convergence_bound}"
                    + (f"; the fault: {faults.BY_NAME[name].mechanism}" if name in faults.BY_NAME else "")))
    for leg, comp in getattr(r, "content", {}).items():
        fields = "" if comp.mismatched_fields is None else f" in {comp.mismatched_fields} fields"
        sample = f" (first {len(comp.mismatched)} listed)" if len(comp.mismatched) < (comp.mismatched_fields or 0) else ""
        out.append((f"content.{leg}", f"{comp.identical}/{comp.compared} identical, {comp.n_missing} missing, "
                    f"{comp.n_unexpected} unexpected, {comp.rows_differing} rows differ{fields}{sample}"))
    for leg, links in getattr(r, "links", {}).items():
        out.append((f"links.{leg}", f"{links.identical}/{links.compared} present, {links.missing_count} missing, "
                    f"{links.unexpected_count} unexpected"))
    rule = getattr(r, "quorum_miss_rule", None)
    for kind, q in getattr(r, "probe_latency_ms", {}).items():
        figures = "no answer" if not q.count else (f"min {q.min:.0f} / p50 {q.p50:.0f} / max {q.max:.0f} ms")
        out.append((f"probe_latency_ms.{kind}", f"{q.count} probes: {figures}" + (f" (judged by {rule})" if rule else "")))
    retry = getattr(r, "retry_probe", None)
    if retry is not None:
        arrived = ", ".join(f"{n} {'never' if t is None else f'{t:.2f} s'}" for n, t in retry.delivered_s.items())
        out.append(("retry_probe", f"{retry.refused_packets} packet(s) refused to node-b; write "
                    f"{retry.write.status if retry.write else 'not sent'}; arrived: {arrived or 'not polled'} "
                    f"(deadline {retry.deadline_s:g} s)"))
    return out


def _replication_rows(r: PhaseReportBase) -> tuple[list[str], list[ReplicationRow]]:
    rep = getattr(r, "replication", None)
    if rep is None:
        return [], []
    nodes = sorted({n for v in rep.kinds.values() for n in v.time_to_converge_s})
    rows = []
    for v in rep.kinds.values():
        ttc = [("—" if v.status == "skipped" else "never" if v.time_to_converge_s.get(n) is None
                else f"{v.time_to_converge_s[n]:.2f} s") for n in nodes]
        missing = []
        for n in nodes:
            lst, count = v.unreplicated.get(n, []), v.unreplicated_count.get(n, 0)
            text = "; ".join(f"{u.key}: {u.why}" for u in lst[:3]) + (f" (+{count - 3} more)" if count > 3 else "")
            missing.append(f"{count}: {text}" if count else "")
        ops = "" if v.status == "skipped" else f"{v.ok}/{v.ops} ok, {v.fail} fail, {v.indeterminate} info, {v.effects} effects"
        rows.append(ReplicationRow(v.kind, v.status, ops, ttc, missing, v.reason or ""))
    return nodes, rows


def _phase_view(art: PhaseArtifact, durations: dict[str, float]) -> PhaseView:
    stem = art.name.removesuffix(".json")
    r = art.report
    duration = r.timing.duration_s if r is not None and r.timing and r.timing.duration_s is not None else None
    if duration is None:
        duration = durations.get(stem) if stem in durations else durations.get(f"phase{art.phase}")
    view = PhaseView(anchor=stem, title=phase_title(art), status=art.status, file=art.name,
                     duration=fmt_duration(duration), raw=art.raw)
    if r is None:
        view.problem_title = f"{art.name} cannot serve as evidence"
        view.problem = art.issue or "unreadable"
        return view
    view.checks = [_check_view(c) for c in r.checks]
    view.reasons = [x for x in r.reasons if x]
    view.figures = _figures(r)
    view.replication_nodes, view.replication = _replication_rows(r)
    if not r.checks:
        view.problem_title = "no evidence"
        view.problem = r.error or "this report records no checks, so it proves nothing"
    elif r.error:
        view.problem_title = "the phase could not establish every fact"
        view.problem = r.error
    if art.result is not None and art.result.status != r.status and art.result.reason:
        view.problem_title = f"the campaign judged this artifact {art.result.status}"
        view.problem = art.result.reason
    return view


def one_line_reason(data: RunData) -> str:
    """The banner's reason: what passed, or the first thing that did not (and how many more)."""
    if data.verdict == "pass":
        counts = check_counts(data)
        phases = data.summary.phases_requested if data.summary else []
        skipped = counts.get("skipped", 0)
        return (f"Every requested phase ({', '.join(map(str, phases))}) passed: {counts.get('pass', 0)} checks "
                f"passed" + (f", {skipped} skipped on purpose." if skipped else ", none failed or errored."))
    reasons = [r for r in data.reasons if r]
    if not reasons:
        return f"The campaign is {data.verdict}, and it recorded no reason (that is itself a defect)."
    first = reasons[0] if len(reasons[0]) <= 220 else reasons[0][:219] + "…"
    return first + (f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else "")


SCOPE_CLASS = {"release": "release", "partial": "partial", "rehearsal": "rehearsal", "self_test": "self-test"}


def scope_class(data: RunData) -> str:
    """A CSS/marker class for the kind of run: release, partial, rehearsal, self-test, imported or unscoped."""
    s = data.summary
    if s is not None and s.scope is not None:
        return SCOPE_CLASS[s.scope.kind]
    return "imported" if data.upstream else "unscoped"


def _facts(data: RunData) -> list[tuple[str, str]]:
    s, inv = data.summary, data.inventory
    out: list[tuple[str, str]] = [("campaign", data.campaign_id)]
    t = s.target if s else None
    out.append(("scope", scope_headline(data)))
    out.append(("target", s.scope.target if s and s.scope else target_name(data)))
    if s is not None and s.scope is not None:
        out.append(("plan", s.scope.shape.describe()))
    if inv is not None:
        out.append(("target kind", f"{inv.target.kind} ({inv.target.path})"))
        if inv.target.defects:
            out.append(("seeded defects", ", ".join(inv.target.defects)))
    elif t is not None and t.kind:
        out.append(("target kind", t.kind))
    git_ref = (t.git_ref if t else None) or (s.ai_memory_git_ref if s else None)
    out.append(("git ref", git_ref or "not recorded"))
    out.append(("commit", (t.commit if t else None) or "not recorded"))
    provider = (s.provider if s else None) or (inv.provider if inv else None)
    out.append(("provider", provider or ("not recorded (imported upstream run)" if data.upstream else "not recorded")))
    if s is not None and s.stack:
        out.append(("Pulumi stack", s.stack))
    if s is not None:
        out.append(("source", "upstream ship-gate history, re-audited" if s.source == "upstream" else "this gate"))
        if s.started_at:
            out.append(("started", fmt_time(s.started_at)))
        out.append(("completed", fmt_time(s.completed_at)))
        out.append(("total duration", fmt_duration(s.duration_s)))
        out.append(("phases requested", ", ".join(map(str, s.phases_requested)) or "none"))
        out.append(("phases run", ", ".join(map(str, s.phases_run)) or "none"))
    if inv is not None:
        for name, host in sorted(inv.hosts.items()):
            out.append((name, f"{host.hostname} · public {host.public_address} · private {host.private_address}"))
    return out


def _settings(data: RunData) -> list[tuple[str, str]]:
    if data.summary and data.summary.settings:
        return _flatten(data.summary.settings)
    out: list[tuple[str, str]] = []
    for a in data.phases:
        if a.report is not None and a.report.settings:
            out.extend(_flatten(a.report.settings, a.name.removesuffix(".json")))
    return out


def _safe(what: str, fn: Any, problems: list[Problem], default: Any) -> Any:
    """Run one part of the page; a bug or an odd artifact costs that part, never the page."""
    try:
        return fn()
    except Exception as exc:
        tail = traceback.format_exception_only(exc)[-1].strip()
        problems.append(Problem(f"could not render {what}", tail))
        return default


def campaign_context(data: RunData) -> dict[str, Any]:
    problems: list[Problem] = []
    phase_files = {a.name for a in data.phases}
    for issue in data.issues:
        if issue.file not in phase_files:
            problems.append(Problem(f"{issue.file} cannot serve as evidence", issue.message, issue.file))
    durations = dict(data.summary.durations_s) if data.summary else {}
    phases = [_safe(f"phase {a.name}", lambda a=a: _phase_view(a, durations), problems, None) for a in data.phases]
    phases = [p for p in phases if p is not None]
    phase_rows: list[dict[str, str]] = [
        {"anchor": p.anchor, "title": p.title, "status": p.status, "duration": p.duration} for p in phases
    ]
    shown = {p.anchor for p in phases} | {f"phase{a.phase}" for a in data.phases}
    steps = [(k, fmt_duration(v)) for k, v in durations.items() if k not in shown]
    plots: list[Plot] = _safe("the plots", lambda: campaign_plots(data), problems, [])
    if not plots and data.operations:
        plots = [Plot("none", "none", empty_plot("Plots", "the histories hold no completed operation"))]
    sums: list[Summary] = _safe("the summaries", lambda: summaries(data), problems, [])
    analysis = None
    if data.analysis_md is not None:
        analysis = _safe("analysis.md", lambda: Markup(render_markdown(data.analysis_md or "")), problems, None)
    upstream = data.summary.upstream if data.summary else None
    facts = _safe("the facts", lambda: _facts(data), problems, [("campaign", data.campaign_id)])
    view = {
        "campaign_id": data.campaign_id,
        "verdict": data.verdict if data.verdict in ("pass", "fail", "error") else "unknown",
        "scope": scope_class(data),
        "headline": sentence(scope_headline(data)),
        "decision": decision(data),
        "reason": one_line_reason(data),
        "exit_code": data.exit_code,
        "completed_at": fmt_time(data.summary.completed_at) if data.summary and data.summary.completed_at else "",
        "upstream": upstream,
        "facts": facts,
        "phase_rows": phase_rows + [{"anchor": "facts", "title": k, "status": "", "duration": v} for k, v in steps],
        "settings": _safe("the settings", lambda: _settings(data), problems, []),
        "summaries": sums,
        "analysis_html": analysis,
        "problems": problems,
        "plots": [{"key": p.key, "svg": Markup(p.svg), "caption": p.caption} for p in plots],
        "phases": phases,
        "raw_summary": data.summary_raw,
        "raw_inventory": data.inventory_raw,
    }
    return {"c": view, "css": _css(), "csp": CSP, "rendered_at": _now()}


def render_campaign_html(data: RunData) -> str:
    return _env().get_template("campaign.html.j2").render(**campaign_context(data))


# --- JUnit ---------------------------------------------------------------------------------------------


def junit_suites(data: RunData) -> list[JSuite]:
    """One testsuite per phase artifact (a testcase per check) plus one for the campaign's own evidence."""
    suites: list[JSuite] = []
    for art in data.phases:
        stem = art.name.removesuffix(".json")
        suite = JSuite(name=stem, properties={"file": art.name, "phase": str(art.phase)})
        r = art.report
        if r is None:
            suite.cases.append(JCase("artifact", f"shipgate.{stem}", "error", art.issue or "unreadable"))
        else:
            if r.timing is not None:
                suite.time_s, suite.timestamp = r.timing.duration_s, r.timing.started_at
            for c in r.checks:
                detail = f"expected: {fmt_value(c.expected, 4000)}\nobserved: {fmt_value(c.observed, 4000)}"
                if c.detail:
                    detail += f"\n{c.detail}"
                suite.cases.append(JCase(c.id, f"shipgate.{stem}", c.status, c.reason(), detail))
            if not r.checks:
                suite.cases.append(JCase("evidence", f"shipgate.{stem}", "error",
                                         r.error or "the report records no checks: no evidence"))
        suites.append(suite)
    campaign = JSuite(name="campaign", properties={"campaign_id": data.campaign_id, "scope": scope_class(data),
                                                   "scope_headline": scope_headline(data)})
    s = data.summary
    if s is not None:
        if s.scope is not None:
            shape = s.scope.shape
            campaign.properties.update({
                "release_decision": str(s.scope.release_decision).lower(), "target": s.scope.target,
                "phases": ",".join(map(str, shape.phases)), "fault_classes": ",".join(shape.fault_classes),
                "cycles": "" if shape.cycles is None else str(shape.cycles),
                "writes": "" if shape.writes is None else str(shape.writes),
                "seed": "" if shape.seed is None else str(shape.seed)})
        # The campaign's own steps (provision, install, validate, teardown): the phases have their suites.
        steps = [v for k, v in s.durations_s.items() if not k.startswith("phase")]
        campaign.time_s = round(sum(steps), 3) if steps else None
        campaign.timestamp = s.started_at
    phase_files = {a.name for a in data.phases}
    for issue in data.issues:
        if issue.file not in phase_files:
            campaign.cases.append(JCase(issue.file, "shipgate.run.campaign", "error", issue.message))
    campaign.cases.append(JCase("verdict", "shipgate.run.campaign", data.verdict,
                                f"{scope_headline(data)}: {one_line_reason(data)}",
                                "\n".join([decision(data), *data.reasons])))
    suites.append(campaign)
    return suites


# --- public API ----------------------------------------------------------------------------------------


def render_campaign(run_dir: Path) -> Path:
    """Write runs/<id>/index.html and runs/<id>/junit.xml from the artifacts on disk; returns the page."""
    run_dir = Path(run_dir)
    data = load_run(run_dir)
    page = write_text(run_dir / "index.html", render_campaign_html(data))
    label = data.summary.scope.label if data.summary and data.summary.scope else scope_class(data)
    write_junit(run_dir / "junit.xml", f"ai-memory ship-gate {data.campaign_id} ({label})", junit_suites(data),
                time_s=data.summary.duration_s if data.summary else None)
    return page


def _md_cell(text: str) -> str:
    return clean_text(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def step_summary(run_dir: Path, limit: int = STEP_SUMMARY_LIMIT) -> str:
    """Markdown for $GITHUB_STEP_SUMMARY: verdict, phases, failing checks; always under `limit` bytes."""
    data = load_run(Path(run_dir))
    icon = {"pass": "✅", "fail": "❌", "error": "⚠️"}.get(data.verdict, "❔")
    s = data.summary
    head = [f"## {icon} ship-gate {data.verdict.upper()} — `{data.campaign_id}`", "",
            f"**{_md_cell(sentence(scope_headline(data)))}.** {_md_cell(decision(data))}", "",
            _md_cell(one_line_reason(data)), "",
            f"Target: {_md_cell(s.scope.target if s and s.scope else target_name(data))} · provider: "
            f"{_md_cell((s.provider if s else None) or 'not recorded')} · exit code "
            f"{data.exit_code if data.exit_code is not None else 'unknown'}", ""]
    if s is not None and s.scope is not None:
        head += [f"Plan: {_md_cell(s.scope.shape.describe())}", ""]
    head += ["| phase | file | status | ✓ | ✗ | ! | – |", "|---|---|---|---|---|---|---|"]
    bad: list[str] = [f"- ! campaign: {_md_cell(s.cause)}"] if s is not None and s.cause else []
    for art in data.phases:
        checks = art.report.checks if art.report else []
        n = {s: sum(c.status == s for c in checks) for s in MARKS}
        head.append(f"| {art.phase} | `{art.name}` | {MARKS.get(art.status, '?')} {art.status} | {n['pass']} | "
                    f"{n['fail']} | {n['error']} | {n['skipped']} |")
        if art.report is None:
            bad.append(f"- ! `{art.name}`: {_md_cell(art.issue or 'unreadable')}")
        for c in checks:
            if c.status in ("fail", "error"):
                bad.append(f"- {MARKS[c.status]} `{art.name}` {_md_cell(c.reason())}")
    bad.extend(f"- ! `{i.file}`: {_md_cell(i.message)}" for i in data.issues
               if i.file not in {a.name for a in data.phases})
    text = "\n".join(head) + "\n"
    tail = f"\nEvidence: `runs/{data.campaign_id}/index.html`, `runs/{data.campaign_id}/junit.xml`\n"
    if bad:
        text += "\n**What failed or could not be established**\n\n"
        budget = limit - len(text.encode()) - len(tail.encode()) - 200
        for i, line in enumerate(bad):
            size = len(line.encode()) + 1
            if size > budget:
                text += f"- … {len(bad) - i} more lines in junit.xml\n"
                break
            text += line + "\n"
            budget -= size
    return text + tail


def append_step_summary(run_dir: Path, path: str | os.PathLike[str] | None = None) -> Path | None:
    """Append the step summary to `path` or $GITHUB_STEP_SUMMARY; None when neither is set."""
    target = path or os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    with open(target, "a", encoding="utf-8") as fh:
        fh.write(step_summary(run_dir) + "\n")
    return Path(target)


# --- the runs index ------------------------------------------------------------------------------------


@dataclass
class IndexRow:
    campaign_id: str
    href: str
    verdict: str
    scope: str
    scope_title: str
    completed_at: str
    target: str
    provider: str
    phases: str
    upstream_pass: bool | None
    differs: bool
    reason: str
    sort_key: float


def _phases_cell(run: list[int], requested: list[int]) -> str:
    """'1,2,3,4' when every requested phase ran, else 'run 1,2 of 1,2,3,4'."""
    req = ",".join(map(str, requested)) or "none"
    if list(run) == list(requested):
        return req
    return f"ran {','.join(map(str, run)) or 'none'} of {req}"


def _index_row(run_dir: Path) -> IndexRow:
    summary, problem, _ = read_document(run_dir / SUMMARY, CampaignSummary)
    href = quote(run_dir.name) + "/index.html"
    try:
        mtime = run_dir.stat().st_mtime
    except OSError:
        mtime = 0.0
    if summary is None:
        return IndexRow(run_dir.name, href, "error", "unscoped", "no readable campaign summary", "—", "—", "—", "—",
                        None, False, f"{SUMMARY}: {problem}", mtime)
    s: CampaignSummary = summary
    when = s.completed_at or s.started_at
    target = (s.target.version if s.target and s.target.version else None) or s.ai_memory_git_ref or "—"
    up = s.upstream.overall_pass if s.source == "upstream" and s.upstream else None
    reasons = [r for r in s.reasons if r]
    reason = "" if s.verdict == "pass" else (reasons[0] if reasons else "no reason recorded")
    if len(reason) > 160:
        reason = reason[:159] + "…"
    scope = SCOPE_CLASS[s.scope.kind] if s.scope else ("imported" if s.source == "upstream" else "unscoped")
    if s.scope is not None:
        target = s.scope.target_name
    return IndexRow(
        campaign_id=s.campaign_id, href=href, verdict=s.verdict, scope=scope, scope_title=s.scope_headline(),
        completed_at=fmt_time(when) if when else "—", target=target, provider=s.provider or ("upstream" if s.source == "upstream" else "—"),
        phases=_phases_cell(s.phases_run, s.phases_requested),
        upstream_pass=up, differs=up is not None and up != (s.verdict == "pass"), reason=reason,
        sort_key=when.timestamp() if when else mtime,
    )


def campaign_dirs(runs_dir: Path) -> list[Path]:
    """Sub-folders of runs/ that hold a campaign (any JSON artifact); hidden folders, self-test and history
    folders (a selftest.json or history.json and no campaign summary: their campaigns sit in their own
    sub-folders) are skipped."""
    out = []
    for d in sorted(runs_dir.iterdir()):
        if not d.is_dir() or d.name.startswith("."):
            continue
        if ((d / "selftest.json").exists() or (d / "history.json").exists()) and not (d / SUMMARY).exists():
            continue
        if (d / SUMMARY).exists() or any(d.glob("*.json")):
            out.append(d)
    return out


def render_index(runs_dir: Path) -> Path:
    """Write runs/index.html: every campaign, newest first, coloured by verdict."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise FileNotFoundError(f"runs folder {runs_dir} does not exist or is not a directory")
    rows = sorted((_index_row(d) for d in campaign_dirs(runs_dir)), key=lambda r: (-r.sort_key, r.campaign_id))
    counts = {"pass": 0, "fail": 0, "error": 0, "unknown": 0}
    for r in rows:
        counts[r.verdict if r.verdict in counts else "unknown"] += 1
    imported = sum(r.upstream_pass is not None for r in rows)
    differs = sum(r.differs for r in rows)
    kinds = {k: sum(r.scope == k for r in rows) for k in ("release", "partial", "rehearsal", "self-test", "imported",
                                                           "unscoped")}
    html = _env().get_template("index.html.j2").render(rows=rows, counts=counts, imported=imported, differs=differs,
                                                       kinds=kinds, css=_css(), csp=CSP, rendered_at=_now())
    return write_text(runs_dir / "index.html", html)
