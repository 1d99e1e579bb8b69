"""`invoke history`: every released ai-memory judged by the gate, compared with the product's own record.

For each release (default: every crates.io release from 0.6.0, the first with federation), in order: install it
into the release cache (a no-op when it is there), take the lab lock when one is named (held per release, so
other users of the lab get it between releases), run one campaign at the history shape on a fresh lab, and
compare its verdict with docs/release-history.toml (shipgate.proof.history_record). A release whose install
fails or whose campaign errors is a row with the reason; Ctrl-C or SIGTERM stops after the current campaign's
teardown (the engine tears the lab down) and the rows done so far are written.

Results: runs/history-<ts>/history.json (ReleaseHistoryReport), index.html (the matrix, self-contained),
history.md (the matrix in Markdown, for docs/), figures.md (wall times, for bench/results/),
and one campaign folder per release beside them. Exit 0 every release as the record expects, 1 a surprise or
a release not judged, 2 a usage or setup error or an interrupted run.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shipgate import clock
from shipgate.evidence import report
from shipgate.evidence.atomic import write_text
from shipgate.evidence.models import CampaignSummary, RunShape
from shipgate.evidence.models.release_history import HistoryInstall, HistoryRow, ReleaseHistoryReport
from shipgate.proof.history_html import (
    CELL_TEXT,
    DEFECT_TEXT,
    OUTCOME_TEXT,
    cell_summary,
    mmss,
    render_html,
)
from shipgate.proof.history_record import (
    PHASES,
    Record,
    RecordError,
    compare,
    evidence_of,
    read_record,
)
from shipgate.proof.selftest import CampaignRunner
from shipgate.providers import lab
from shipgate.run import signals
from shipgate.run.console import Console
from shipgate.run.options import CampaignError, CampaignOptions
from shipgate.run.settings import GateSettings, SettingsError, load_settings
from shipgate.target import releases

ROOT = Path(__file__).resolve().parents[2]
RECORD = ROOT / "docs" / "release-history.toml"
FIRST_FEDERATED = "0.6.0"
DOCS_MATRIX = ROOT / "docs" / "release-history-matrix.md"
BENCH_RESULTS = ROOT / "bench" / "results"

# The small shape: every phase, every fault class, 3 cycles x 30 writes (CI's real-binary lane), with the
# self-test's shorter convergence deadlines (a release that loses writes waits out each deadline). About 3 min
# per release on the lab; the full shape is the gate's defaults (a release decision, ~13 min per release).
SHAPES: dict[str, dict[str, Any]] = {
    "small": {"phase2": {"convergence_deadline_s": 30.0},
              "phase4": {"cycles": 3, "writes": 30, "convergence_deadline_s": 10.0}},
    "full": {},
}

Progress = Callable[[str], None]


class HistoryError(ValueError):
    """Bad input or setup (unknown release, unreadable record or index): nothing was run."""


@dataclass
class HistoryOptions:
    releases: list[str]
    selection: str
    shape: str = "small"
    settings: GateSettings = field(default_factory=GateSettings)
    lab_name: str = "hist"
    runs_dir: Path = ROOT / "runs"
    record: Path = RECORD
    lock: Path | None = None
    cached_only: bool = False
    history_id: str | None = None


# --- choosing releases ----------------------------------------------------------------------------------

def _key(version: str) -> tuple[int, ...]:
    return releases._numeric(version)


def select_releases(text: str | None, published: list[Any] | None, cached: list[str]) -> tuple[list[str], str]:
    """(versions, how they were chosen). Default: every published, unyanked, non-pre-release version from 0.6.0;
    `cached`: those of them (or, with no index, every version >= 0.6.0) in the release cache; else a comma list,
    each of which must be published (when the index could be read) or cached."""
    def federated(v: str) -> bool:
        return "-" not in v and _key(v) >= _key(FIRST_FEDERATED)

    if text is None or text.strip() in ("", "all"):
        if published is None:
            raise HistoryError("cannot read the crates.io index to list the releases; name them with --releases "
                               "(e.g. --releases 0.6.0,0.6.3) or --releases cached")
        chosen = sorted({p.version for p in published if not p.yanked and federated(p.version)}, key=_key)
        return chosen, f"every crates.io release from {FIRST_FEDERATED} (unyanked, no pre-releases): {len(chosen)}"
    if text.strip() == "cached":
        pool = {p.version for p in published if not p.yanked} if published is not None else None
        chosen = sorted({v for v in cached if federated(v) and (pool is None or v in pool)}, key=_key)
        if not chosen:
            raise HistoryError(f"--releases cached: the release cache holds no release from {FIRST_FEDERATED}")
        return chosen, f"the releases in the cache from {FIRST_FEDERATED}: {len(chosen)}"
    names = list(dict.fromkeys(v.strip().removeprefix("ai-memory@") for v in text.split(",") if v.strip()))
    bad = [v for v in names if not releases.VERSION_RE.match(v)]
    if bad or not names:
        raise HistoryError(f"--releases takes a comma list of versions like 0.6.0,0.6.3 (or all, cached); "
                           f"not a version: {', '.join(bad) or repr(text)}")
    if published is not None:
        by_version = {p.version: p for p in published}
        unknown = [v for v in names if v not in by_version]
        yanked = [v for v in names if v in by_version and by_version[v].yanked]
        if unknown or yanked:
            have = ", ".join(p.version for p in published if not p.yanked and federated(p.version))
            what = "; ".join(x for x in (f"not on crates.io: {', '.join(unknown)}" if unknown else "",
                                         f"yanked: {', '.join(yanked)}" if yanked else "") if x)
            raise HistoryError(f"--releases: {what} (published from {FIRST_FEDERATED}: {have})")
    else:
        missing = [v for v in names if v not in cached]
        if missing:
            raise HistoryError(f"cannot read the crates.io index, and {', '.join(missing)} is not in the release "
                               "cache: nothing to check the name against")
    return names, f"--releases {','.join(names)}"


def shape_settings(shape: str, config: Path | None = None, overrides: dict[str, Any] | None = None) -> GateSettings:
    """The settings of every campaign: the shape, then a TOML config (sections phase1..phase4), then flags."""
    if shape not in SHAPES:
        raise HistoryError(f"--shape must be {' or '.join(SHAPES)} (got {shape!r})")
    data: dict[str, Any] = {k: dict(v) for k, v in SHAPES[shape].items()}
    layers: list[dict[str, Any]] = []
    if config is not None:
        try:
            layers.append(tomllib.loads(config.read_text()))
        except OSError as exc:
            raise HistoryError(f"config file {config}: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise HistoryError(f"config file {config} is not valid TOML: {exc}") from None
    layers.append(overrides or {})
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict):
                data.setdefault(key, {}).update(value)
            else:
                data[key] = value
    try:
        return load_settings(overrides=data)
    except SettingsError as exc:
        raise HistoryError(str(exc)) from None


# --- running --------------------------------------------------------------------------------------------

def run_one_campaign(run_campaign: CampaignRunner, settings: GateSettings, binary: Path, release: str,
                     lab_name: str, runs_dir: Path, campaign_id: str, progress: Progress) -> CampaignSummary:
    """The one place the history calls the engine (`run_campaign`, wired by the task as `invoke gate` is)."""
    opts = CampaignOptions(settings=settings, provider="lab", lab_name=lab_name, target=binary, release=release,
                           runs_dir=runs_dir, campaign_id=campaign_id, render=False)
    return run_campaign(opts, progress)


@contextlib.contextmanager
def lab_lock(path: Path | None, say: Progress) -> Iterator[float]:
    """Hold the flock at `path` (none: nothing to hold); yields the seconds spent waiting for it."""
    if path is None:
        yield 0.0
        return
    t = time.monotonic()
    with path.open("a") as fh:
        if not _try_lock(fh):
            say(f"waiting for the lab lock {path} (another user of the lab holds it)")
            # Polled, not a blocking flock: a Ctrl-C then acts within 0.2 s, whichever thread of this process
            # the kernel delivers it to (a blocking flock is interrupted only in the thread that gets it).
            clock.poll_until(lambda: _try_lock(fh), deadline_s=LOCK_WAIT_S, interval_s=0.2,
                             what=f"the lab lock {path}")
        try:
            yield round(time.monotonic() - t, 3)
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


LOCK_WAIT_S = 6 * 3600.0  # one campaign at the full shape holds the lock ~13 min; 6 h means its holder is stuck


def _try_lock(fh: Any) -> bool:
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class _Stop(Exception):
    def __init__(self, row: HistoryRow, why: str) -> None:
        super().__init__(why)
        self.row, self.why = row, why


def _row_base(version: str, record: Record) -> dict[str, Any]:
    rel = record.releases.get(version)
    return dict(version=version, release=f"ai-memory@{version}", in_record=rel is not None,
                expected_current_gate=rel.expected_current_gate if rel else None)


def judge(version: str, record: Record, summary: CampaignSummary, run_dir: str, timings: dict[str, float | None],
          install: HistoryInstall | None) -> HistoryRow:
    """A finished campaign as a history row (pure: the record and the summary the campaign returned)."""
    cmp = compare(record.releases.get(version), record.findings, evidence_of(summary), version)
    ran = bool(summary.phases_run)
    surprises = list(cmp.surprises)
    if summary.cause:
        surprises.insert(0, f"the campaign stopped short: {summary.cause}")
    status = "judged" if ran else "campaign_error"
    outcome = "error" if not ran else ("surprise" if surprises else "as_expected")
    return HistoryRow(**_row_base(version, record), status=status, outcome=outcome,
                      reason=summary.cause or (None if ran else "; ".join(summary.reasons[:2])),
                      campaign_id=summary.campaign_id, run_dir=run_dir, verdict=summary.verdict,
                      exit_code=summary.exit_code, install=install, cells=cmp.cells, defects=cmp.defects,
                      findings=cmp.findings, surprises=surprises, **timings)


def not_judged(version: str, record: Record, status: str, reason: str, wall_s: float, **extra: Any) -> HistoryRow:
    """A release the gate could not judge (install failed, campaign could not start, never reached)."""
    outcome = "not_run" if status == "not_run" else "error"
    return HistoryRow(**_row_base(version, record), status=status, outcome=outcome, reason=reason,
                      wall_s=round(wall_s, 3), surprises=[] if status == "not_run" else [reason], **extra)


def finish(report: ReleaseHistoryReport) -> ReleaseHistoryReport:
    judged_rows = [r for r in report.rows if r.outcome != "not_run"]
    surprises = sum(r.outcome == "surprise" for r in judged_rows)
    errors = sum(r.outcome == "error" for r in judged_rows)
    ok = sum(r.outcome == "as_expected" for r in judged_rows)
    code = 2 if report.interrupted else (0 if ok == len(report.rows) and report.rows else 1)
    return report.model_copy(update={"as_expected": ok, "surprises": surprises, "errors": errors, "exit_code": code})


def run_history(opts: HistoryOptions, progress: Progress | None = None, *,
                run_campaign: CampaignRunner) -> ReleaseHistoryReport:
    """Every release in turn with `run_campaign` (the wired engine); the outputs are rewritten after each one,
    so a stopped run leaves its rows."""
    say = progress or Console()
    try:
        record = read_record(opts.record)
    except RecordError as exc:
        raise HistoryError(str(exc)) from None
    try:
        lab.LabLayout(opts.lab_name)
    except lab.LabNameError as exc:
        raise HistoryError(str(exc)) from None
    if lab.load(opts.lab_name) is not None:
        raise HistoryError(f"a lab named {opts.lab_name!r} is already up; the history builds one lab per release: "
                           f"`invoke lab.down --name {opts.lab_name}` or pick another --lab-name")
    started = datetime.now(UTC)
    history_id = opts.history_id or f"history-{started:%Y%m%d-%H%M%S}"
    folder = opts.runs_dir / history_id
    folder.mkdir(parents=True, exist_ok=False)
    t0 = time.monotonic()
    report = ReleaseHistoryReport(
        history_id=history_id, started_at=started, record=_display(opts.record),
        record_sha256=hashlib.sha256(opts.record.read_bytes()).hexdigest(), selection=opts.selection,
        releases=list(opts.releases), shape=opts.shape, shape_description=RunShape.of(opts.settings).describe(),
        settings=opts.settings.model_dump(mode="json"), lab_name=opts.lab_name,
        lock=str(opts.lock) if opts.lock else None, install="cached_only" if opts.cached_only else "install",
        exit_code=2)
    say(f"history {history_id}: {len(opts.releases)} release(s) ({', '.join(opts.releases)}), {opts.shape} shape "
        f"({report.shape_description}), lab {opts.lab_name!r}"
        + (f", lab lock {opts.lock} per release" if opts.lock else "") + f" -> {folder}")
    rows: list[HistoryRow] = []
    interrupted: str | None = None
    # SIGINT and SIGTERM between campaigns stop the history (run_campaign handles them inside one). SIGINT is
    # installed too, as the gate does: a process started in the background by a script inherits it ignored.
    with signals.raising(KeyboardInterrupt):
        for i, version in enumerate(opts.releases, 1):
            try:
                row = _one_release(opts, record, folder, history_id, version, f"[{i}/{len(opts.releases)}]", say,
                                   run_campaign)
            except _Stop as stop:
                rows.append(stop.row)
                interrupted = stop.why
            except KeyboardInterrupt:
                interrupted = f"interrupted (SIGINT/SIGTERM) at {version}, between campaigns"
            else:
                rows.append(row)
            if interrupted:
                say(interrupted + "; the history stops here")
                done = {r.version for r in rows}
                rows += [not_judged(v, record, "not_run", "not run: the history was interrupted", 0.0)
                         for v in opts.releases if v not in done]
            report = finish(report.model_copy(update={"rows": list(rows), "interrupted": interrupted is not None,
                                                      "problems": [interrupted] if interrupted else []}))
            write_outputs(folder, report)
            if interrupted:
                break
    report = finish(report.model_copy(update={"completed_at": datetime.now(UTC),
                                              "duration_s": round(time.monotonic() - t0, 3)}))
    write_outputs(folder, report)
    return report


def rejudge(folder: Path, record_path: Path = RECORD) -> ReleaseHistoryReport:
    """Compare the campaigns of an existing history folder with the record again (after the record changed):
    no lab, no install; rows that were never judged keep their reason. The outputs are rewritten."""
    try:
        old = ReleaseHistoryReport.load(folder / "history.json")
    except (OSError, ValueError) as exc:
        raise HistoryError(f"{folder}: no readable history.json ({type(exc).__name__}: {exc})") from None
    try:
        record = read_record(record_path)
    except RecordError as exc:
        raise HistoryError(str(exc)) from None
    rows = []
    for row in old.rows:
        path = folder / row.run_dir / "campaign-summary.json" if row.run_dir else None
        if path is None or not path.is_file():
            rows.append(row)
            continue
        timings = dict(install_s=row.install_s, lock_wait_s=row.lock_wait_s, campaign_s=row.campaign_s,
                       wall_s=row.wall_s)
        rows.append(judge(row.version, record, CampaignSummary.load(path), row.run_dir, timings, row.install))
    report = finish(old.model_copy(update={"rows": rows, "record": _display(record_path),
                                           "record_sha256": hashlib.sha256(record_path.read_bytes()).hexdigest()}))
    write_outputs(folder, report)
    return report


def _one_release(opts: HistoryOptions, record: Record, folder: Path, history_id: str, version: str, label: str,
                 say: Progress, run_campaign: CampaignRunner) -> HistoryRow:
    t = time.monotonic()
    say(f"{label} ai-memory {version}: install")
    rec = releases.installed(version)
    try:
        if rec is None and opts.cached_only:
            return not_judged(version, record, "install_error", f"ai-memory {version} is not in the release cache "
                              "(--cached-only: not built)", time.monotonic() - t, install_s=0.0)
        if rec is None:
            rec = releases.install(version, progress=lambda m: say(f"  {version}: {m}"))
    except releases.BuildInterrupted as exc:
        raise _Stop(not_judged(version, record, "install_error", str(exc), time.monotonic() - t),
                    f"interrupted while building {version}") from None
    except releases.ReleaseError as exc:
        reason = str(exc).splitlines()[0]
        say(f"{label} ai-memory {version}: install failed: {reason}")
        return not_judged(version, record, "install_error", f"install failed: {reason}", time.monotonic() - t,
                          install_s=round(time.monotonic() - t, 3))
    install_s = round(time.monotonic() - t, 3)
    install = HistoryInstall(built_by=rec.built_by, binary=str(rec.binary), sha256=rec.sha256,
                             reported_version=rec.reported_version, build_s=rec.build_s)
    campaign_id = f"{history_id}-{version}"
    with lab_lock(opts.lock, say) as waited:
        say(f"{label} ai-memory {version}: campaign {campaign_id}")
        c0 = time.monotonic()
        try:
            summary = run_one_campaign(run_campaign, opts.settings, rec.binary, f"ai-memory@{version}", opts.lab_name, folder,
                                       campaign_id, lambda m: say(f"  {version}: {m}"))
        except CampaignError as exc:
            say(f"{label} ai-memory {version}: the campaign could not start: {exc}")
            return not_judged(version, record, "campaign_error", f"the campaign could not start: {exc}",
                              time.monotonic() - t, install=install, install_s=install_s, lock_wait_s=waited)
        campaign_s = round(time.monotonic() - c0, 3)
    _render(folder / campaign_id, say)
    row = judge(version, record, summary, campaign_id,
                dict(install_s=install_s, lock_wait_s=waited, campaign_s=campaign_s,
                     wall_s=round(time.monotonic() - t, 3)), install)
    say(f"{label} {row_line(row)}")
    if any(r.startswith("interrupted by") for r in summary.reasons):
        raise _Stop(row, f"the campaign of {version} was interrupted")
    return row


def _render(run_dir: Path, say: Progress) -> None:
    """The campaign's own page, linked from the matrix; a rendering problem never changes a verdict."""
    try:
        report.render_campaign(run_dir)
    except Exception as exc:
        say(f"  report of {run_dir.name} failed ({type(exc).__name__}: {exc}); its artifacts are intact")


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


# --- output ---------------------------------------------------------------------------------------------

def row_line(row: HistoryRow) -> str:
    cells = "; ".join(f"p{c.phase} {cell_summary(c)}" for c in row.cells) or row.reason or ""
    return f"ai-memory {row.version}: {OUTCOME_TEXT[row.outcome]} ({row.wall_s:.0f} s) -- {cells}"


def _md(text: str) -> str:
    return (str(text).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\r", " ").replace("\n", " "))


def _why(cell: Any) -> str:
    """Why a cell is a surprise: the gaps and the unexplained reds, named."""
    parts = [f"gap: {', '.join(cell.gaps)}"] if cell.gaps else []
    parts += [f"finding: {', '.join(cell.unexplained)}"] if cell.unexplained else []
    return f" ({_md('; '.join(parts))})" if parts else ""


def markdown(report: ReleaseHistoryReport) -> str:
    """The matrix and every release's defects, for docs/ (the committed result)."""
    out = [f"# Release history judged by the gate: `{report.history_id}`", "",
           f"{len(report.rows)} release(s), {report.as_expected} as the record expects, {report.surprises} with a "
           f"surprise, {report.errors} not judged; exit {report.exit_code}"
           + (" (interrupted)" if report.interrupted else "") + ".",
           f"Shape: {report.shape} ({_md(report.shape_description)}). Record: `{report.record}` "
           f"(sha256 {report.record_sha256[:12]}). Selection: {_md(report.selection)}. "
           f"Wall time {mmss(report.duration_s)}.", ""]
    unchecked: dict[str, list[str]] = {}
    for row in report.rows:
        for d in row.defects:
            if d.outcome == "uncovered":
                unchecked.setdefault(d.id, []).append(row.version)
    if unchecked:
        out += ["Not judged, as the gate has no check for them yet (lab-observable recorded defects, so \"as the "
                "record expects\" does not cover them): "
                + "; ".join(f"`{i}` ({', '.join(v)})" for i, v in unchecked.items()) + ".", ""]
    out += ["| release | phase 1 | phase 2 | phase 3 | phase 4 | outcome | wall |",
           "|---|---|---|---|---|---|---|"]
    for row in report.rows:
        by = {c.phase: c for c in row.cells}
        cols = []
        for p in PHASES:
            c = by.get(p)
            cols.append("·" if c is None else f"{_md(cell_summary(c))} — {CELL_TEXT[c.outcome]}{_why(c)}")
        if not row.cells:
            cols = [_md(row.reason or row.status)] + ["·"] * 3
        out.append(f"| {row.version} | {' | '.join(cols)} | {OUTCOME_TEXT[row.outcome]} | {mmss(row.wall_s)} |")
    out += ["", "Cells: the phase's verdict and the check(s) that decided it, then the comparison with the record "
            "(red, as recorded: every failing check is a recorded defect or a filed finding).", ""]
    for row in report.rows:
        out += [f"## {row.version} — {OUTCOME_TEXT[row.outcome]}", ""]
        if row.run_dir:
            out.append(f"Campaign `{row.run_dir}` ({row.verdict}, exit {row.exit_code}).")
        if row.reason:
            out.append(f"Reason: {_md(row.reason)}")
        if row.expected_current_gate:
            out.append(f"The record's prediction: _{_md(row.expected_current_gate)}_")
        out.append("")
        if row.surprises:
            out += ["Surprises:", "", *[f"- {_md(s)}" for s in row.surprises], ""]
        if row.defects:
            out += ["| defect | fixed in | check | outcome | why |", "|---|---|---|---|---|"]
            for d in row.defects:
                check = ", ".join(f"`{p}`" for p in d.patterns) or "–"
                out.append(f"| `{d.id}` | {d.fixed_in} | {check}{' (proposed)' if d.proposed else ''} | "
                           f"{DEFECT_TEXT[d.outcome]} | {_md(d.why)} |")
            out.append("")
        filed = [f for f in row.findings if f.filed_as]
        if filed:
            out += ["Filed findings reproduced: " + ", ".join(sorted({f"`{f.check.id}` ({f.filed_as})"
                                                                        for f in filed})), ""]
    return "\n".join(out) + "\n"


def figures(report: ReleaseHistoryReport) -> dict[str, Any]:
    """Wall time per release (install, lock wait, campaign, each phase) and in total: bench/results/ figures."""
    per = []
    for row in report.rows:
        per.append({"release": row.version, "outcome": row.outcome, "wall_s": row.wall_s,
                    "install_s": row.install_s, "lock_wait_s": row.lock_wait_s, "campaign_s": row.campaign_s,
                    "phases_s": {f"phase{c.phase}": c.duration_s for c in row.cells if c.duration_s is not None}})
    return {"name": "history", "history_id": report.history_id, "shape": report.shape,
            "shape_description": report.shape_description, "started_at": report.started_at.isoformat(),
            "releases": per, "total_s": report.duration_s, "note": _figures_note(report)}


def _figures_note(report: ReleaseHistoryReport) -> str:
    """What the figures include, from the report itself (never a fixed sentence about the machine)."""
    waited = [(r.version, r.lock_wait_s) for r in report.rows if r.lock_wait_s]
    if not waited:
        return "No release waited for the lab lock"
    return ("The lab lock was held by another user of the lab before " + ", ".join(
        f"{v} ({mmss(s)})" for v, s in waited) + "; that wait is in the wall time, not in the campaign")


def figures_markdown(fig: dict[str, Any]) -> str:
    out = [f"# `invoke history` wall times: {fig['history_id']}", "",
           f"Shape {fig['shape']}: {_md(fig['shape_description'])}. {fig['note']}.", "",
           "| release | outcome | install | lock wait | campaign | phase 1 | phase 2 | phase 3 | phase 4 | wall |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in fig["releases"]:
        ph = [mmss(r["phases_s"].get(f"phase{p}")) for p in PHASES]
        out.append(f"| {r['release']} | {r['outcome']} | {mmss(r['install_s'])} | {mmss(r['lock_wait_s'])} | "
                   f"{mmss(r['campaign_s'])} | {' | '.join(ph)} | {mmss(r['wall_s'])} |")
    out += ["", f"Total: {mmss(fig['total_s'])} for {len(fig['releases'])} release(s)."]
    return "\n".join(out) + "\n"


def write_outputs(folder: Path, report: ReleaseHistoryReport) -> None:
    write_text(folder / "history.json", report.to_json())
    write_text(folder / "history.md", markdown(report))
    write_text(folder / "index.html", render_html(report))
    write_text(folder / "figures.md", figures_markdown(figures(report)))


def publish(folder: Path, docs: Path = DOCS_MATRIX, bench: Path = BENCH_RESULTS) -> list[Path]:
    """Copy the matrix to docs/ and the figures to bench/results/ (the committed result of a full run)."""
    report = ReleaseHistoryReport.load(folder / "history.json")
    stem = f"history-{report.started_at:%Y-%m-%d}"
    out = [docs, bench / f"{stem}.json", bench / f"{stem}.md"]
    fig = figures(report)
    write_text(docs, markdown(report))
    write_text(out[1], json.dumps(fig, indent=2) + "\n")
    write_text(out[2], figures_markdown(fig))
    return out
