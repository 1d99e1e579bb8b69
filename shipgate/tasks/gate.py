"""`invoke gate`, `invoke phase1`..`phase4`, `invoke selftest`, `invoke bench`."""

from invoke import task

from shipgate.tasks import not_built


@task
def gate(c):
    """Run the whole gate: lab (or --infra digitalocean) -> phases -> validate -> summary -> report -> teardown."""
    not_built("gate", 6)


@task
def phase1(c):
    """Phase 1 alone: functional checks on each node, in parallel."""
    not_built("phase1", 6)


@task
def phase2(c):
    """Phase 2 alone: federation burst, quorum probes, convergence."""
    not_built("phase2", 6)


@task
def phase3(c):
    """Phase 3 alone: SQLite -> Postgres -> SQLite migration with content comparison."""
    not_built("phase3", 6)


@task
def phase4(c):
    """Phase 4 alone: the chaos campaign (kill, partition, pause, clock skew)."""
    not_built("phase4", 7)


@task
def selftest(c):
    """Run the gate against the clean reference peer and each seeded defect; print the detection matrix."""
    not_built("selftest", 10)


@task
def bench(c):
    """Run the benchmarks under bench/ and write figures to bench/results/."""
    not_built("bench", 10)


TASKS = [gate, phase1, phase2, phase3, phase4, selftest, bench]
