"""The checker: pure judgement of recorded histories; it never talks to a host."""

from shipgate.checker.chaos import (
    UPSTREAM_BOUND_PASS,
    ClassVerdict,
    CycleCheck,
    check_cycle,
    convergence_bound,
    count_string,
    summarise_class,
)

__all__ = [
    "UPSTREAM_BOUND_PASS", "ClassVerdict", "CycleCheck", "check_cycle", "convergence_bound", "count_string",
    "summarise_class",
]
