"""`invoke report`: render the evidence of a campaign from its artifacts alone."""

from invoke import task

from shipgate.tasks import not_built


@task(help={"campaign": "campaign id under runs/ (default: every campaign, and runs/index.html)"})
def report(c, campaign=None):
    """Re-render runs/<id>/index.html, junit.xml and runs/index.html from the artifacts."""
    not_built("report", 9)


TASKS = [report]
