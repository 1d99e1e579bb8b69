"""Invoke entry point. Thin on purpose: each area's tasks live in shipgate/tasks/<area>.py."""

from invoke import Collection

from shipgate.tasks import artifacts, cli, gate, history, infra, lab, report, target

cli.adopt_program()  # invoke's own parse errors exit 2 (a usage mistake), never 1 (a red product)

ns = Collection()
for module in (gate, history, artifacts, report, infra):
    for t in module.TASKS:
        ns.add_task(t)
ns.add_collection(lab.ns)
ns.add_collection(infra.ns)
ns.add_collection(target.ns)
