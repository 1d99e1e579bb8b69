"""`invoke history`: every released ai-memory judged by the gate and compared with the product's record."""

from __future__ import annotations

import sys
from pathlib import Path

from invoke import task
from invoke.exceptions import Exit

from shipgate.tasks.cli import GateTask

HISTORY_HELP = {
    "releases": "comma list of versions (0.6.0,0.6.3), 'all' (default: every crates.io release from 0.6.0, "
                "from the index `invoke target.list --published` reads) or 'cached' (those in the release cache)",
    "shape": "small (default: every phase and fault class, phase 4 at 3 cycles x 30 writes, shorter convergence "
             "deadlines; about 3 min per release) or full (the gate's defaults, a release decision each)",
    "config": "TOML settings file (sections phase1..phase4) on top of the shape",
    "cycles": "phase 4 cycles per fault class (overrides the shape)",
    "writes": "phase 4 writes per cycle (overrides the shape)",
    "phases": "phases to run, comma list (default 1,2,3,4)",
    "lab_name": "name of the lab built for each release, one at a time (default hist; must not be up)",
    "lock": "flock this file around each release's campaign (e.g. /tmp/shipgate-lab.lock), so other users of "
            "the lab get it between releases; do not also run the task under flock on the same file",
    "cached_only": "never build: a release missing from the release cache is a row 'not installed'",
    "record": "the expectations file (default docs/release-history.toml)",
    "runs_dir": "where runs/history-<ts>/ goes (default runs/)",
    "rejudge": "compare the campaigns of an existing runs/history-<ts>/ with the record again (after the record "
               "changed): no lab, no install, seconds",
    "publish": "afterwards copy the matrix to docs/release-history-matrix.md and the wall times to "
               "bench/results/history-<date>.{json,md} (the committed result of a full run)",
}


@task(klass=GateTask, long_only=("lock", "cached_only", "record", "publish", "rejudge"), help=HISTORY_HELP)
def history(c, releases=None, shape="small", config=None, cycles=None, writes=None, phases=None, lab_name="hist",
            lock=None, cached_only=False, record=None, runs_dir=None, publish=False, rejudge=None):
    """Judge every released ai-memory with the gate and compare each verdict with the product's own record.

    For each release: install it into the release cache (a no-op when cached), run one campaign at the shape on
    a fresh lab, and compare each phase's verdict with docs/release-history.toml: red for the recorded reason
    (the check ids match), green as expected, or a surprise in either direction -- a red no recorded defect
    explains (a finding) or a recorded defect the gate did not catch (a gap). A release whose install fails or
    whose campaign errors is a row with the reason. Ctrl-C stops after the current campaign's teardown.

    Writes runs/history-<ts>/: history.json, index.html (the matrix), history.md, figures.md and one
    campaign folder per release. Exit 0 every release as the record expects; 1 a surprise, or a release the gate
    could not judge (install or campaign error); 2 a usage or setup error (bad flag, unknown release, unreadable
    record or index, a lab already up) or an interrupted run.
    """

    # why: the history, the engine and the releases load only when it runs (fast `invoke --list`)
    from shipgate.proof.history import (
        RECORD,
        HistoryError,
        HistoryOptions,
        markdown,
        run_history,
        select_releases,
        shape_settings,
    )
    from shipgate.proof.history import publish as publish_outputs
    from shipgate.proof.history import rejudge as rejudge_folder
    from shipgate.run.console import Console
    from shipgate.run.settings import SettingsError, flag_overrides
    from shipgate.target import releases as rel
    from shipgate.tasks.gate import _int
    from shipgate.tasks.wiring import run_campaign

    console = Console()
    if rejudge:
        try:
            folder = Path(rejudge).resolve()
            report = rejudge_folder(folder, Path(record).resolve() if record else RECORD)
        except HistoryError as exc:
            raise Exit(f"history: {exc}", code=2) from None
        return _finish(report, folder, publish, markdown, publish_outputs)
    try:
        try:
            published = rel.published_versions()
        except rel.ReleaseError as exc:
            console(f"warning: {exc}")
            published = None
        chosen, how = select_releases(releases, published, rel.cached_versions())
        overrides = flag_overrides(phases=phases, cycles=_int("cycles", cycles), writes=_int("writes", writes))
        settings = shape_settings(shape, Path(config) if config else None, overrides)
        name = " + ".join([shape, *([f"config {config}"] if config else []), *(["flags"] if overrides else [])])
        opts = HistoryOptions(releases=chosen, selection=how, shape=name, settings=settings, lab_name=lab_name, lock=Path(lock) if lock else None,
                              cached_only=cached_only)
        if record:
            opts.record = Path(record).resolve()
        if runs_dir:
            opts.runs_dir = Path(runs_dir).resolve()
        report = run_history(opts, progress=console, run_campaign=run_campaign)
    except (HistoryError, SettingsError) as exc:
        raise Exit(f"history: {exc}", code=2) from None
    _finish(report, opts.runs_dir / report.history_id, publish, markdown, publish_outputs)


def _finish(report, folder: Path, publish: bool, markdown, publish_outputs) -> None:  # type: ignore[no-untyped-def]
    print(markdown(report).split("\n\nCells:")[0], file=sys.stdout)
    print(f"\n{folder / 'index.html'}, {folder / 'history.json'}, {folder / 'history.md'}", file=sys.stdout)
    if publish and not report.interrupted:
        for path in publish_outputs(folder):
            print(f"published {path}", file=sys.stdout)
    raise Exit(code=report.exit_code)


TASKS = [history]
