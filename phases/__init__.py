"""The workloads: the only code that knows what a phase checks.

`PHASES` is the one list of phases the engine is handed (by `shipgate.tasks`): number, name, artifacts(),
not_run(reason), run(ctx). Numbers and names are the evidence's own table (`shipgate.evidence.phase_ids`);
a test keeps the two in step.
"""

from __future__ import annotations

import secrets

from phases import phase1, phase2, phase3, phase4
from phases.base import Phase, PhaseEntry
from shipgate.run.settings import GateSettings


def _draw_seed(settings: GateSettings) -> GateSettings:
    """Phase 4's seed, drawn before the campaign starts when none was given, so every record holds the one used."""
    if settings.phase4.seed is not None:
        return settings
    return settings.model_copy(update={"phase4": settings.phase4.model_copy(update={"seed": secrets.randbits(31)})})


PHASES: tuple[Phase, ...] = (
    PhaseEntry(1, phase1.run, per_node=True),
    PhaseEntry(2, phase2.run),
    PhaseEntry(3, phase3.run),
    PhaseEntry(4, phase4.run, settler=_draw_seed),
)
