"""The workloads: the only code that knows what a phase checks.

`PHASES` is the one list of phases the engine is handed (by `shipgate.tasks`): number, name, artifacts(),
not_run(reason), run(ctx). Numbers and names are the evidence's own table (`shipgate.evidence.phase_ids`);
a test keeps the two in step.
"""

from __future__ import annotations

from phases import phase1, phase2, phase3, phase4
from phases.base import Phase, PhaseEntry

PHASES: tuple[Phase, ...] = (
    PhaseEntry(1, phase1.run, per_node=True),
    PhaseEntry(2, phase2.run),
    PhaseEntry(3, phase3.run),
    PhaseEntry(4, phase4.run),
)
