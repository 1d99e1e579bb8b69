"""`invoke schemas`, `invoke validate`, `invoke import-upstream`: the artifact models at work."""

from invoke import task

from shipgate.tasks import not_built


@task
def schemas(c):
    """Regenerate schemas/ from the pydantic models."""
    not_built("schemas", 5)


@task(help={"run_dir": "a run folder, e.g. runs/<campaign-id>"})
def validate(c, run_dir):
    """Validate every artifact of a run folder against schemas/ (file + JSON pointer + message)."""
    not_built("validate", 5)


@task(help={"src": "folder of upstream run directories (e.g. ../shared/fixtures/upstream-runs)"})
def import_upstream(c, src):
    """Import upstream ship-gate runs into our models and print the re-audit table."""
    not_built("import-upstream", 5)


TASKS = [schemas, validate, import_upstream]
