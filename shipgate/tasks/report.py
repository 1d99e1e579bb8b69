"""`invoke report`: render the evidence of a campaign from its artifacts alone."""

from pathlib import Path

from invoke import task
from invoke.exceptions import Exit

RUNS = Path(__file__).resolve().parents[2] / "runs"


@task(help={
    "campaign": "campaign id under the runs folder (default: every campaign)",
    "runs_dir": "the runs folder (default: runs/ of the project)",
    "step_summary": "also append the Markdown summary to $GITHUB_STEP_SUMMARY when it is set",
})
def report(c, campaign=None, runs_dir=None, step_summary=False):
    """Re-render runs/<id>/index.html and junit.xml (one campaign or all), then runs/index.html.

    Exit 0 when every page was written, 2 when the runs folder or the campaign does not exist or a page
    could not be written. The campaign's own verdict does not change the exit code: `invoke gate` owns that.
    """
    # why: the renderer loads only when asked (fast `invoke --list`)
    from shipgate.evidence.report import append_step_summary, render_campaign, render_index
    from shipgate.evidence.report.render import campaign_dirs

    runs = Path(runs_dir) if runs_dir else RUNS
    if not runs.is_dir():
        raise Exit(f"{runs}: no such runs folder", code=2)
    if campaign:
        folder = runs / campaign
        if not folder.is_dir():
            known = ", ".join(d.name for d in campaign_dirs(runs)[:10]) or "none"
            raise Exit(f"{folder}: no such campaign folder (campaigns here: {known})", code=2)
        folders = [folder]
    else:
        folders = campaign_dirs(runs)
    failed = 0
    for folder in folders:
        try:
            print(render_campaign(folder))
        except Exception as exc:
            failed += 1
            print(f"{folder}: could not render: {type(exc).__name__}: {exc}")
        if step_summary and append_step_summary(folder) is None:
            print("GITHUB_STEP_SUMMARY is not set; no step summary written")
    print(render_index(runs))
    if failed:
        raise Exit(f"{failed} campaign page(s) could not be rendered", code=2)


TASKS = [report]
