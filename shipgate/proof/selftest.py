"""`invoke selftest`: the gate proves its detection power against the reference peer's seeded defects.

One campaign per row, each on a fresh lab: the clean peer (every phase; `--repeat N` runs it N times and
gives the false-red rate), then every seeded defect in turn, switched on when the lab is built. A row runs
only the phases needed to judge its defect (see `PLAN_NOTE`), all with the *same* settings of the chosen
shape, so the clean row also proves that the shape itself produces no false red.

Requirements (exit 1 when one is not met): the clean peer is green; every defect is red -- `fail`, the
product broke an invariant -- in the phase that owns it (refpeer/defects.py); a defect that shows up as
`error` is the gate failing, not the product, and is a problem too. Exit 2 when the self-test could not
finish (interrupted). Results: runs/selftest-<ts>/selftest.json (SelftestReport), selftest.md, and one
run folder per campaign beside them.
"""

from __future__ import annotations

import fnmatch
import json
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from refpeer.defects import DEFECTS
from shipgate.evidence.atomic import write_text
from shipgate.evidence.models import CampaignSummary, PhaseStatus, TargetRef
from shipgate.evidence.models.common import phase_over_artifacts
from shipgate.evidence.models.selftest import (
    CellOutcome,
    FalseRedRate,
    FoundCheck,
    SelftestCell,
    SelftestReport,
    SelftestRow,
    Shape,
)
from shipgate.evidence.phase_ids import PHASE_NUMBERS
from shipgate.providers import lab
from shipgate.run import signals
from shipgate.run.console import Console
from shipgate.run.options import CampaignOptions
from shipgate.run.settings import FAULT_CLASSES, GateSettings, load_settings

ROOT = Path(__file__).resolve().parents[2]
ALL_PHASES = PHASE_NUMBERS
CampaignRunner = Callable[[CampaignOptions, Callable[[str], None]], CampaignSummary]

# The reduced shape: phase 4 at 5 cycles x 50 writes; shorter convergence deadlines, because a defect that
# loses writes makes every cycle wait for the whole deadline (the clean peer converges in about 1-3 s).
SHAPES: dict[str, dict[str, Any]] = {
    "reduced": {"phase2": {"convergence_deadline_s": 30.0},
                "phase4": {"cycles": 5, "writes": 50, "convergence_deadline_s": 10.0}},
    "full": {},
}

PLAN_NOTE = (
    "clean: every phase, every release fault class. A defect: the phase that owns it (refpeer/defects.py) -- the "
    "other phases exercise the defect's code path no more than the owner does, so they would add time, not "
    "evidence; for a phase-4 defect the reduced shape runs only the fault class designed to expose it, the "
    "full shape every release class. --cross adds phase 4 (the shape's classes) to the phase-2 defects and phase 2 to "
    "the phase-4 defects, to show which other phase also sees them. Every row uses the same settings.")


@dataclass(frozen=True)
class DefectPlan:
    """What the self-test expects of one defect beyond the registry: the checks it should turn red and,
    for phase 4, the fault class that exposes it."""

    checks: tuple[str, ...]
    faults: tuple[str, ...] = ()
    pending: str | None = None  # why no workload of the gate can expose it yet: left out unless named


PLANS: dict[str, DefectPlan] = {
    "fanout_abort": DefectPlan(("convergence.*",)),
    "quorum_w1": DefectPlan(("probe2.both_peers_down",)),
    "quorum_hang": DefectPlan(("probe2.fast", "probe2.both_peers_down", "probe3.within_timeout")),
    "quorum_timeout_ignored": DefectPlan(("probe3.within_timeout", "probe3.both_peers_silent")),
    "list_ignores_limit": DefectPlan(("list.*.honours_limit",)),
    "list_cap_200": DefectPlan(("workload.*.list_honours_limit",)),
    "fanout_no_retry": DefectPlan(("fanout_retry.node-b.delivered",)),
    "no_catchup": DefectPlan(("catchup.after_restart",)),
    "backup_no_manifest": DefectPlan(("backup.manifest_count",)),
    "backup_corrupt": DefectPlan(("backup.sha256_matches_manifest",)),
    "skew_cursor": DefectPlan(("clock_skew_peer.lost_acknowledged",), ("clock_skew_peer",)),
    "ack_before_durable": DefectPlan(("kill_primary_mid_write.lost_acknowledged",), ("kill_primary_mid_write",)),
    "mcp_core_profile": DefectPlan(("mcp.tool_count",)),
    "migrate_truncate": DefectPlan(("content.roundtrip.identical",)),
    "migrate_duplicates": DefectPlan(("migrate.idempotent.*", "postgres.rows_after_idempotent")),
    "pg_list_cap_1000": DefectPlan(("migrate.reverse.read", "counts.src_equals_dst", "content.roundtrip.identical")),
    "migrate_page_cap_500": DefectPlan(("migrate.forward.read", "postgres.rows_after_forward",
                                        "content.forward.identical")),
    "migrate_drops_links": DefectPlan(("links.forward.identical", "links.roundtrip.identical")),
    "migrate_mangles_unicode": DefectPlan(("content.forward.identical", "content.roundtrip.identical")),
    "recall_hangs_offline": DefectPlan(("recall.answers",)),
    "update_title_not_replicated": DefectPlan(("update_title.*.replicated",)),
    "bulk_tied_timestamps": DefectPlan(("bulk_catchup.*.replicated",)),
    "update_not_fanned_out": DefectPlan(("update.*.replicated", "update_title.*.replicated")),
    "delete_not_fanned_out": DefectPlan(("delete.*.replicated",)),
    "promote_not_fanned_out": DefectPlan(("promote.*.replicated",)),
    "link_not_fanned_out": DefectPlan(("link.*.replicated",)),
    "consolidate_not_fanned_out": DefectPlan(("consolidate.*.replicated",)),
    "bulk_fanout_drops_row": DefectPlan(("bulk.*.replicated",)),
}

MAX_CHECKS_PER_CELL = 12


class SelftestError(ValueError):
    """Bad self-test input (unknown defect, lab already up, ...): the message names the problem."""


@dataclass(frozen=True)
class RowPlan:
    """One campaign to run: its name, defect, phases and phase-4 classes."""

    name: str
    defect: str | None
    phases: tuple[int, ...]
    faults: tuple[str, ...]
    run: int = 1

    @property
    def owner(self) -> int | None:
        return int(DEFECTS[self.defect].phase) if self.defect else None


@dataclass
class SelftestOptions:
    shape: Shape = "reduced"
    defects: list[str] | None = None  # None: every defect of the registry; []: the clean peer only
    repeat: int = 1
    clean: bool = True
    cross: bool = False
    lab_name: str = "st"
    runs_dir: Path = ROOT / "runs"
    seed: int | None = None
    selftest_id: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)  # extra settings on top of the shape (tests)


# --- planning ------------------------------------------------------------------------------------------


def parse_defects(text: str | None) -> list[str] | None:
    """'a,b' -> ['a', 'b']; None or 'all' -> None (every defect); 'none' -> [] (the clean peer only)."""
    if text is None or text.strip().lower() in ("", "all"):
        return None
    if text.strip().lower() == "none":
        return []
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in DEFECTS]
    if unknown:
        raise SelftestError(f"unknown defect(s): {', '.join(unknown)} (valid: {', '.join(DEFECTS)}, or all / none)")
    return list(dict.fromkeys(names))


def shape_settings(shape: Shape, seed: int | None = None, overrides: dict[str, Any] | None = None) -> GateSettings:
    """The settings every row of a shape runs with (phases and classes are set per row)."""
    if shape not in SHAPES:
        raise SelftestError(f"shape must be reduced or full (got {shape!r})")
    data: dict[str, Any] = {k: dict(v) for k, v in SHAPES[shape].items()}
    for key, value in (overrides or {}).items():
        data.setdefault(key, {}).update(value)
    if seed is not None:
        data.setdefault("phase4", {})["seed"] = seed
    return load_settings(overrides=data)


def plan_rows(shape: Shape, defects: list[str] | None, *, repeat: int = 1, clean: bool = True,
              cross: bool = False) -> list[RowPlan]:
    """The campaigns of a self-test, in order: the clean peer (`repeat` times), then each defect."""
    if repeat < 1:
        raise SelftestError(f"--repeat must be at least 1 (got {repeat})")
    names = [d for d in DEFECTS if not PLANS[d].pending] if defects is None else defects
    rows: list[RowPlan] = []
    if clean:
        rows += [RowPlan("clean", None, ALL_PHASES, FAULT_CLASSES, run=i) for i in range(1, repeat + 1)]
    for name in names:
        owner = int(DEFECTS[name].phase)
        phases = {owner}
        if cross and owner == 2:
            phases.add(4)
        if cross and owner == 4:
            phases.add(2)
        plan = PLANS.get(name)
        faults = plan.faults if (shape == "reduced" and owner == 4 and plan and plan.faults) else FAULT_CLASSES
        rows.append(RowPlan(name, name, tuple(sorted(phases)), tuple(faults)))
    if not rows:
        raise SelftestError("nothing to run: --no-clean with --defects none")
    return rows


def row_settings(base: GateSettings, row: RowPlan) -> GateSettings:
    data = base.model_dump()
    data["phases"] = list(row.phases)
    data["phase4"]["faults"] = list(row.faults)
    return GateSettings.model_validate(data)


# --- judging -------------------------------------------------------------------------------------------




def _outcome(status: PhaseStatus, clean: bool) -> CellOutcome:
    if clean:
        return "green" if status == "pass" else "false_red" if status == "fail" else "error"
    if status == "fail":
        return "caught"
    return "missed" if status == "pass" else "error"


def _cell(summary: CampaignSummary, phase: int, row: RowPlan) -> SelftestCell:
    results = [r for r in summary.phase_results if r.phase == phase]
    status = phase_over_artifacts([r.status for r in results])
    found: list[FoundCheck] = []
    fault_status: dict[str, PhaseStatus] = {}
    reported = set()
    for report in summary.phases:
        if report.phase != phase:
            continue
        reported.add(report.artifact_name)
        for c in report.checks:
            if c.status in ("fail", "error"):
                found.append(FoundCheck(artifact=report.artifact_name, id=c.id, status=c.status,
                                        expected=c.expected, observed=c.observed, detail=c.detail))
        for name, result in (getattr(report, "faults", None) or {}).items():
            fault_status[name] = result.status
    for r in results:  # an artifact that is missing or invalid has no checks: its reason is the evidence
        if r.status != "pass" and r.artifact not in reported:
            found.append(FoundCheck(artifact=r.artifact, id="artifact", status="error", detail=r.reason))
    found.sort(key=lambda c: (c.status != "fail", c.artifact))
    return SelftestCell(phase=phase, status=status, outcome=_outcome(status, row.defect is None),
                        owner=phase == row.owner, faults=list(row.faults) if phase == 4 else [],
                        fault_status=fault_status, checks=found,
                        duration_s=summary.durations_s.get(f"phase{phase}"))


def _campaign_reasons(summary: CampaignSummary) -> list[str]:
    """Reasons the campaign added beyond its phases (gate crash, invalid artifact, interruption)."""
    prefixes = tuple(f"{r.artifact}: " for r in summary.phase_results)
    return [r for r in summary.reasons if not r.startswith(prefixes)]


def _describe(check: FoundCheck, limit: int = 160) -> str:
    text = f"{check.artifact} {check.id} {check.status}"
    if check.detail:
        detail = check.detail if len(check.detail) <= limit else check.detail[: limit - 3] + "..."
        text += f": {detail}"
    return text


def judge_row(row: RowPlan, summary: CampaignSummary, run_dir: str, duration_s: float) -> SelftestRow:
    """One campaign against its requirement (pure: reads only the summary the campaign returned)."""
    cells = [_cell(summary, p, row) for p in row.phases]
    extra = _campaign_reasons(summary)
    problems: list[str] = []
    warnings: list[str] = []
    right: bool | None = None
    plan = PLANS.get(row.defect or "")
    if row.defect is None:
        for cell in cells:
            if cell.outcome != "green":
                why = "; ".join(_describe(c) for c in cell.checks[:3]) or cell.status
                what = "a false red" if cell.outcome == "false_red" else "an error (the gate failed)"
                problems.append(f"clean run {row.run}: phase {cell.phase} is {cell.status} -- {what}: {why}")
    else:
        owner = next(c for c in cells if c.owner)
        if owner.outcome == "missed":
            problems.append(f"{row.defect}: missed -- phase {owner.phase} (its owner) passed")
        elif owner.outcome == "error":
            why = "; ".join(_describe(c) for c in owner.checks[:3]) or "no reason recorded"
            problems.append(f"{row.defect}: phase {owner.phase} is error, not fail -- the gate failed, "
                            f"not the product: {why}")
        else:
            errors = [c for c in owner.checks if c.status == "error"]
            if errors:
                warnings.append(f"{row.defect}: caught, but {len(errors)} check(s) of phase {owner.phase} "
                                f"errored: {'; '.join(_describe(c) for c in errors[:3])}")
            if plan:
                fails = [c.id for c in owner.checks if c.status == "fail"]
                right = any(fnmatch.fnmatchcase(i, p) for i in fails for p in plan.checks)
                if not right:
                    warnings.append(f"{row.defect}: red for another reason than expected "
                                    f"({', '.join(plan.checks)}): failing checks {', '.join(sorted(set(fails)))}")
        for cell in cells:
            if not cell.owner and cell.outcome == "error":
                warnings.append(f"{row.defect}: phase {cell.phase} (not its owner) is error: "
                                f"{'; '.join(_describe(c) for c in cell.checks[:2])}")
    label = row.defect or f"clean run {row.run}"
    for reason in extra:
        problems.append(f"{label}: the campaign itself reported: {reason}")
    return SelftestRow(
        name=row.name, defect=row.defect, breaks=DEFECTS[row.defect].breaks if row.defect else None,
        owner_phase=row.owner, expected_checks=list(plan.checks) if plan else [], right_reason=right,
        run=row.run, campaign_id=summary.campaign_id, run_dir=run_dir, phases=list(row.phases),
        verdict=summary.verdict, exit_code=summary.exit_code, duration_s=round(duration_s, 3), cells=cells,
        campaign_reasons=extra, ok=not problems, problems=problems, warnings=warnings)


def false_red_rate(rows: Sequence[SelftestRow]) -> FalseRedRate:
    clean = [r for r in rows if r.defect is None]
    fail = sum(r.verdict == "fail" for r in clean)
    error = sum(r.verdict == "error" for r in clean)
    return FalseRedRate(runs=len(clean), red=fail + error, fail=fail, error=error,
                        rate=round((fail + error) / len(clean), 4) if clean else None)


def finish_report(report: SelftestReport, planned: Sequence[RowPlan], stopped: str | None = None) -> SelftestReport:
    """Requirements over every row; rows that never ran (interrupted) leave the requirements unmet."""
    problems = [p for r in report.rows for p in r.problems]
    if stopped:
        problems.append(stopped)
    warnings = [w for r in report.rows for w in r.warnings]
    missing = len(planned) - len(report.rows)
    if missing > 0:
        problems.append(f"{missing} of {len(planned)} campaign(s) did not run: "
                        + ", ".join(p.name for p in planned[len(report.rows):]))
    if not any(r.defect is None for r in planned):
        warnings.append("the clean peer was not run (--no-clean): nothing shows the gate stays green")
    ran = {p.defect for p in planned}
    warnings += [f"{name}: not run, no workload exposes it yet: {plan.pending}"
                 for name, plan in PLANS.items() if plan.pending and name not in ran]
    met = not problems and not report.interrupted
    return report.model_copy(update={
        "problems": problems, "warnings": warnings, "false_red": false_red_rate(report.rows),
        "requirements_met": met, "exit_code": 2 if report.interrupted else (0 if met else 1)})


# --- output --------------------------------------------------------------------------------------------


def _md(text: str) -> str:
    """Safe inside a Markdown table cell or list item: no pipes, no line breaks, no inline HTML."""
    return (text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\r", " ").replace("\n", " "))


CELL_TEXT: dict[str, str] = {"caught": "**caught**", "missed": "MISSED", "error": "ERROR", "green": "green",
                             "false_red": "FALSE RED", "skipped": "skipped"}


def matrix_table(report: SelftestReport) -> str:
    """The detection matrix: one line per campaign, one column per phase (★ marks the owning phase)."""
    lines = ["| row | owner | phase 1 | phase 2 | phase 3 | phase 4 | verdict | ok | time |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in report.rows:
        by_phase = {c.phase: c for c in row.cells}
        cols = []
        for p in ALL_PHASES:
            cell = by_phase.get(p)
            if cell is None:
                cols.append("·")
                continue
            text = CELL_TEXT[cell.outcome] + (" ★" if cell.owner else "")
            if cell.phase == 4 and cell.fault_status:
                text += " (" + ", ".join(f"{f}: {s}" for f, s in cell.fault_status.items()) + ")"
            cols.append(text)
        name = row.name if row.defect or report.repeat == 1 else f"clean #{row.run}"
        lines.append(f"| {_md(name)} | {row.owner_phase or '–'} | {' | '.join(cols)} | {row.verdict} | "
                     f"{'yes' if row.ok else '**NO**'} | {row.duration_s:.0f} s |")
    return "\n".join(lines)


def _check_line(c: FoundCheck) -> str:
    def short(v: Any) -> str:
        s = json.dumps(v, ensure_ascii=False)
        return s if len(s) <= 80 else s[:77] + "..."

    detail = f": {c.detail[:300]}" if c.detail else ""
    return (f"- `{_md(c.artifact)}` `{_md(c.id)}` **{c.status}** (expected {_md(short(c.expected))}, "
            f"observed {_md(short(c.observed))}){_md(detail)}")


def markdown(report: SelftestReport) -> str:
    fr = report.false_red
    defect_rows = [r for r in report.rows if r.defect]
    caught = sum(r.ok for r in defect_rows)
    status = "MET" if report.requirements_met else ("INTERRUPTED" if report.interrupted else "NOT MET")
    out = [f"# Gate self-test `{report.selftest_id}` ({report.shape} shape)", "",
           f"Requirements: **{status}** (exit {report.exit_code}). Clean peer: "
           + (f"{fr.runs - fr.red} of {fr.runs} run(s) green, false reds {fr.red} of {fr.runs} ({fr.fail} fail, "
               f"{fr.error} error)." if fr.runs
              else "not run.")
           + f" Defects: {caught} of {len(defect_rows)} red (fail) "
           f"in their owning phase. Target: {(report.target.version if report.target else None) or 'unknown'}; "
           f"lab `{report.lab_name}`; {report.duration_s or 0:.0f} s.", "",
           matrix_table(report), "",
           "★ owning phase · `·` not run · caught = the phase failed (the product broke an invariant) · "
           "ERROR = the gate could not establish the facts.", ""]
    if report.problems:
        out += ["## Problems", "", *[f"- {_md(p)}" for p in report.problems], ""]
    if report.warnings:
        out += ["## Warnings", "", *[f"- {_md(w)}" for w in report.warnings], ""]
    out += ["## The reasons the gate gave", ""]
    for row in report.rows:
        label = row.name if row.defect or report.repeat == 1 else f"clean #{row.run}"
        out.append(f"### {_md(label)} — {row.verdict} (`{_md(row.run_dir)}`)")
        if row.breaks:
            out.append(f"_{_md(row.breaks)}_")
        out.append("")
        shown = False
        for cell in row.cells:
            if not cell.checks:
                continue
            shown = True
            out.append(f"Phase {cell.phase} ({cell.outcome}{', owner' if cell.owner else ''}):")
            out += [_check_line(c) for c in cell.checks[:MAX_CHECKS_PER_CELL]]
            if len(cell.checks) > MAX_CHECKS_PER_CELL:
                out.append(f"- … {len(cell.checks) - MAX_CHECKS_PER_CELL} more in selftest.json")
        for reason in row.campaign_reasons:
            shown = True
            out.append(f"- campaign: {_md(reason)}")
        if not shown:
            out.append("Every check passed.")
        out.append("")
    out += ["## How the phases were chosen", "", PLAN_NOTE, ""]
    return "\n".join(out)


def write_outputs(folder: Path, report: SelftestReport) -> None:
    write_text(folder / "selftest.json", report.to_json())
    write_text(folder / "selftest.md", markdown(report))


# --- running -------------------------------------------------------------------------------------------


def _interrupted(summary: CampaignSummary) -> bool:
    return any(r.startswith("interrupted by") for r in summary.reasons)


def _row_line(row: SelftestRow, label: str) -> str:
    cells = ", ".join(f"phase {c.phase} {c.outcome}" for c in row.cells)
    first = next((c for c in row.cells if c.checks and (c.owner or row.defect is None)), None)
    why = f" -- {_describe(first.checks[0], 100)}" if first else ""
    return f"{label}: {cells} ({row.verdict}, {row.duration_s:.0f}s){'' if row.ok else ' PROBLEM'}{why}"


def run_selftest(opts: SelftestOptions, progress: Callable[[str], None] | None = None, *,
                 run_campaign: CampaignRunner) -> SelftestReport:
    """Run every planned campaign in turn with `run_campaign` (the wired engine) and return the report (also
    written as it goes)."""
    say = progress or Console()
    base = shape_settings(opts.shape, opts.seed, opts.overrides)
    rows = plan_rows(opts.shape, opts.defects, repeat=opts.repeat, clean=opts.clean, cross=opts.cross)
    try:
        lab.LabLayout(opts.lab_name)
    except lab.LabNameError as exc:
        raise SelftestError(str(exc)) from None
    if lab.load(opts.lab_name) is not None:
        raise SelftestError(f"a lab named {opts.lab_name!r} is already up; the self-test builds its own labs "
                            f"(with the defect switched on): `invoke lab.down --name {opts.lab_name}` or pick "
                            "another --lab-name")
    started = datetime.now(UTC)
    selftest_id = opts.selftest_id or f"selftest-{started:%Y%m%d-%H%M%S}"
    folder = opts.runs_dir / selftest_id
    folder.mkdir(parents=True, exist_ok=False)
    t0 = time.monotonic()
    report = SelftestReport(
        selftest_id=selftest_id, shape=opts.shape, started_at=started, lab_name=opts.lab_name,
        settings=base.model_dump(mode="json"), plan=PLAN_NOTE,
        defects=list(DEFECTS) if opts.defects is None else list(opts.defects), repeat=opts.repeat,
        false_red=FalseRedRate(runs=0, red=0), requirements_met=False, exit_code=2)
    say(f"selftest {selftest_id}: {len(rows)} campaign(s), {opts.shape} shape, lab {opts.lab_name!r} -> {folder}")
    done: list[SelftestRow] = []
    stopped: str | None = None
    # SIGTERM between campaigns stops the self-test like Ctrl-C (run_campaign handles it inside one).
    with signals.raising(KeyboardInterrupt, (signal.SIGTERM,)):
        try:
            for i, row in enumerate(rows, 1):
                if lab.load(opts.lab_name) is not None:
                    stopped = (f"lab {opts.lab_name!r} is still up after the previous campaign (its teardown "
                               f"failed); `invoke lab.down --name {opts.lab_name}`, then run the self-test again")
                    say(stopped)
                    break
                judged, summary = _run_row(opts, base, folder, selftest_id, row, i, len(rows), say, run_campaign)
                done.append(judged)
                if report.target is None and summary.target is not None:
                    report = report.model_copy(update={"target": TargetRef.model_validate(summary.target.dump())})
                report = report.model_copy(update={"rows": list(done)})
                write_outputs(folder, finish_report(report, rows[:i]))
                if _interrupted(summary):
                    stopped = "a campaign was interrupted (SIGINT/SIGTERM); the self-test stopped there"
                    say(stopped)
                    break
        except KeyboardInterrupt:
            stopped = "interrupted (SIGINT/SIGTERM) between campaigns; the self-test stopped there"
            say(stopped)
    report = report.model_copy(update={"rows": done, "interrupted": stopped is not None,
                                       "completed_at": datetime.now(UTC),
                                       "duration_s": round(time.monotonic() - t0, 3)})
    report = finish_report(report, rows, stopped)
    write_outputs(folder, report)
    return report


def _run_row(opts: SelftestOptions, base: GateSettings, folder: Path, selftest_id: str, row: RowPlan, i: int,
             total: int, say: Callable[[str], None], run_campaign: CampaignRunner) -> tuple[SelftestRow, CampaignSummary]:
    """One campaign of the self-test, with its progress lines, judged."""
    label = row.name if row.defect or opts.repeat == 1 else f"clean #{row.run}"
    what = "every phase" if row.defect is None else f"phase(s) {','.join(map(str, row.phases))}, owner {row.owner}"
    classes = f"; classes {', '.join(row.faults)}" if 4 in row.phases else ""
    say(f"[{i}/{total}] {label}: {what}{classes}")
    run = f"-r{row.run}" if opts.repeat > 1 and row.defect is None else ""
    campaign_id = f"{selftest_id}-{row.name.replace('_', '-')}{run}"
    copts = CampaignOptions(settings=row_settings(base, row), lab_name=opts.lab_name,
                            defects=[row.defect] if row.defect else [], runs_dir=folder, campaign_id=campaign_id,
                            render=False)
    t = time.monotonic()
    summary = run_campaign(copts, lambda msg: say(f"  {label}: {msg}"))
    judged = judge_row(row, summary, campaign_id, time.monotonic() - t)
    say(f"[{i}/{total}] {_row_line(judged, label)}")
    return judged, summary


def print_result(report: SelftestReport, folder: Path, stream: Any = None) -> None:
    """The matrix and the verdict on stdout (progress went to stderr)."""
    out = stream or sys.stdout
    print(matrix_table(report), file=out)
    fr = report.false_red
    print(f"\nfalse reds (clean peer): {fr.red} of {fr.runs} ({fr.fail} fail, {fr.error} error)", file=out)
    for p in report.problems:
        print(f"PROBLEM: {p}", file=out)
    for w in report.warnings:
        print(f"warning: {w}", file=out)
    status = "MET" if report.requirements_met else ("INTERRUPTED" if report.interrupted else "NOT MET")
    print(f"requirements {status} (exit {report.exit_code}); {folder / 'selftest.json'}, "
          f"{folder / 'selftest.md'}", file=out)
