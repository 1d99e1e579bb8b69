"""Reports: the campaign's evidence as a static HTML page, JUnit XML, a CI step summary, and a runs index.

Public API:
- `render_campaign(run_dir) -> Path`: runs/<id>/index.html and runs/<id>/junit.xml, from the files alone;
- `render_index(runs_dir) -> Path`: runs/index.html, every campaign newest first, coloured by verdict;
- `step_summary(run_dir) -> str`: Markdown for $GITHUB_STEP_SUMMARY (under 1 MiB);
- `append_step_summary(run_dir, path=None) -> Path | None`: appends it to $GITHUB_STEP_SUMMARY when set.
"""

from shipgate.evidence.report.render import append_step_summary, render_campaign, render_index, step_summary

__all__ = ["append_step_summary", "render_campaign", "render_index", "step_summary"]
