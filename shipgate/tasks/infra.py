"""`invoke infra.*` and `invoke janitor`: the DigitalOcean side."""

from invoke import Collection, task

from shipgate.tasks import not_built


@task
def up(c):
    """`pulumi up` on the current stack (needs the pulumi CLI and a DigitalOcean token)."""
    not_built("infra.up", 8)


@task
def down(c):
    """`pulumi destroy` on the current stack."""
    not_built("infra.down", 8)


@task(help={"campaign": "campaign id whose tagged resources to find", "yes": "delete them, not only list"})
def janitor(c, campaign, yes=False):
    """List (and with --yes delete) DigitalOcean resources tagged for a campaign."""
    not_built("janitor", 8)


ns = Collection("infra", up, down)
TASKS = [janitor]
