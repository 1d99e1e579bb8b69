"""The checker: pure judgement of recorded histories; it never talks to a host.

`history` is the one judge of operation histories (phase 2 and phase 4), `convergence` the one poll (its
reads come through a callable), `chaos` the cycle rules and the class summary. Their module docstrings
state the API.
"""

from shipgate.checker.chaos import (
    UPSTREAM_BOUND_PASS,
    ClassVerdict,
    CycleCheck,
    check_cycle,
    convergence_bound,
    count_string,
    summarise_class,
)
from shipgate.checker.convergence import Convergence, converged, holds_ids, holds_titles, poll, replicas_agree
from shipgate.checker.history import KindTally, Op, RowJudgement, Tally, judge_rows, outcome, rows_of, tally

__all__ = [
    "UPSTREAM_BOUND_PASS", "ClassVerdict", "Convergence", "CycleCheck", "KindTally", "Op", "RowJudgement",
    "Tally", "check_cycle", "converged", "convergence_bound", "count_string", "holds_ids", "holds_titles",
    "judge_rows", "outcome", "poll", "replicas_agree", "rows_of", "summarise_class", "tally",
]
