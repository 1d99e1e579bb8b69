"""`invoke schemas`, `invoke validate`, `invoke import-upstream`: the artifact models at work."""

from pathlib import Path

from invoke import task
from invoke.exceptions import Exit


@task(help={"out": "folder to write the schemas to (default: schemas/ of the project)"})
def schemas(c, out=None):
    """Regenerate schemas/<artifact>.schema.json from the pydantic models (deterministic output)."""
    # why: models load late (fast `invoke --list`)
    from shipgate.evidence.models.schemas import SCHEMA_DIR, write_schemas

    for path in write_schemas(Path(out) if out else SCHEMA_DIR):
        print(path)


@task(help={"run_dir": "a run folder, e.g. runs/<campaign-id>"})
def validate(c, run_dir):
    """Check a run folder against schemas/ and against what its campaign requested; prints
    `file  /json/pointer  message` per problem.

    A missing summary, inventory or requested phase artifact is a problem like an invalid one. Exit 0 when the
    folder is complete and valid evidence, 2 when it is not (or does not exist). Validation never exits 1: it
    judges the evidence, not the product; the campaign's verdict is in its campaign-summary.json.
    """
    from shipgate.evidence.validate import check_run  # why: models load late (fast `invoke --list`)

    folder = Path(run_dir)
    if not folder.is_dir():
        raise Exit(f"{run_dir}: no such run folder", code=2)
    problems = check_run(folder)
    for problem in problems:
        print(problem)
    if problems:
        raise Exit(f"{len(problems)} problem(s) in {run_dir}: not valid evidence", code=2)
    print(f"{run_dir}: complete and valid: every requested artifact is present and every artifact is valid")


@task(help={
    "src": "folder of upstream run directories (e.g. tests/fixtures/upstream/runs), or one run directory",
    "out": "where to write our run folders (default: runs/)",
})
def import_upstream(c, src, out="runs"):
    """Import upstream ship-gate runs into our models and print the re-audit table (ours vs overall_pass)."""
    # why: models load late (fast `invoke --list`)
    from shipgate.evidence.upstream import ImportProblem, audit_table
    from shipgate.evidence.upstream import import_upstream as run_import

    try:
        rows = run_import(Path(src), Path(out))
    except ImportProblem as exc:
        raise Exit(str(exc), code=2) from None
    print(audit_table(rows))
    print(f"written to {out}/")


TASKS = [schemas, validate, import_upstream]
