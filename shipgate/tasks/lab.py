"""`invoke lab.*`: build, inspect and remove the lab (network namespaces standing in for droplets)."""

from invoke import Collection, task

from shipgate.tasks import not_built


@task(help={"target": "path of a real ai-memory binary (default: the bundled reference peer)"})
def up(c, target=None):
    """Build the lab: node-a/b/c, chaos and pg as network namespaces with their own sshd."""
    not_built("lab.up", 4)


@task
def down(c):
    """Remove every namespace, link, rule, process and file of the lab (works without a state file)."""
    not_built("lab.down", 4)


@task
def status(c):
    """Show which lab hosts are up and healthy."""
    not_built("lab.status", 4)


ns = Collection("lab", up, down, status)
