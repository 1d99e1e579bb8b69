"""The operator's monotonic clock: waiting for a condition with a deadline, and sleeping until an instant.

Every wait of the gate in Python is one of two kinds, so it is one of two calls: a wait for a condition is
`poll_until` (it returns what it waited for, or raises naming what it waited for and what it last saw), a
wait for an instant of a schedule is `sleep_until`. Both read `time.monotonic`, never the wall clock, so a
stepped or skewed system clock cannot stretch or cut a wait. Commands that wait on a host are shell loops
(`shipgate.hosts.shell.poll`), the remote counterpart.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    """What a wait needs of a clock; tests hand in a fake one instead of measuring real time."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class _Monotonic:
    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


MONOTONIC: Clock = _Monotonic()


@dataclass(frozen=True)
class Pending:
    """A predicate's "not yet", carrying what it saw (reported at the deadline, kept on the exception)."""

    observation: Any


class PollTimeout(TimeoutError):
    """The condition did not hold by the deadline. `last` is the last observation, for callers that report
    the state they ended in (a convergence poll records the last reads) rather than give up."""

    def __init__(self, what: str, deadline_s: float, polls: int, last: Any) -> None:
        super().__init__(f"{what}: not reached within {deadline_s:g} s ({polls} polls); "
                         f"last observed: {_short(last)}")
        self.what = what
        self.deadline_s = deadline_s
        self.polls = polls
        self.last = last


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 300 else text[:297] + "..."


def _ready(result: Any) -> bool:
    return not (result is None or result is False or isinstance(result, Pending))


def poll_until(predicate: Callable[[], T | Pending | None], *, deadline_s: float, interval_s: float, what: str,
               clock: Clock = MONOTONIC) -> T:
    """Call `predicate` every `interval_s` until it returns a value (anything but None, False or a `Pending`)
    and return that value. The first call is at once and the last at the deadline, so a condition that holds
    by then is seen; no sleep ever ends past the deadline. Raises PollTimeout naming `what` and the last
    observation (a `Pending`'s `observation`, else the falsy result)."""
    if deadline_s < 0:
        raise ValueError(f"poll_until({what!r}): deadline_s must be >= 0, not {deadline_s}")
    if interval_s <= 0:
        raise ValueError(f"poll_until({what!r}): interval_s must be > 0, not {interval_s}")
    deadline = clock.now() + deadline_s
    polls = 0
    while True:
        result = predicate()
        polls += 1
        if _ready(result):
            return result  # type: ignore[return-value]
        now = clock.now()
        if now >= deadline:
            last = result.observation if isinstance(result, Pending) else result
            raise PollTimeout(what, deadline_s, polls, last)
        clock.sleep(min(interval_s, deadline - now))


def sleep_until(t: float, *, clock: Clock = MONOTONIC) -> None:
    """Sleep until the monotonic instant `t` (at once when it has passed): a schedule, not a wait for a condition."""
    delay = t - clock.now()
    if delay > 0:
        clock.sleep(delay)
