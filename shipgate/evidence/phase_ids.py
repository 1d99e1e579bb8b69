"""The phases by number and name: the one table every layer reads (settings, verdicts, models, tasks).

A leaf with no imports, so settings and the `invoke --list` path can read it without loading the models.
The runners (`phases.PHASES`) and the report models (`PHASE_MODELS`) are keyed by these numbers; a test
holds the three together.
"""

from __future__ import annotations

PHASE_NAMES: dict[int, str] = {1: "functional", 2: "federation", 3: "migration", 4: "chaos"}
PHASE_NUMBERS: tuple[int, ...] = tuple(PHASE_NAMES)


def comma_list() -> str:
    """'1,2,3,4'"""
    return ",".join(map(str, PHASE_NUMBERS))


def in_words() -> str:
    """'1, 2, 3 and 4'"""
    *rest, last = map(str, PHASE_NUMBERS)
    return f"{', '.join(rest)} and {last}" if rest else last
