"""poll_until and sleep_until against a fake clock: what they return, what they raise, and that no sleep
ever ends past the deadline. No real time is measured."""

from __future__ import annotations

import pytest

from shipgate.clock import Pending, PollTimeout, poll_until, sleep_until


class FakeClock:
    """Time moves only when the code under test sleeps; every sleep is recorded."""

    def __init__(self, start: float = 1000.0) -> None:
        self.t = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.t += seconds


def test_returns_the_predicates_value_once_it_holds() -> None:
    clock = FakeClock()
    seen: list[float] = []

    def rows() -> list[str] | Pending:
        seen.append(clock.now())
        return ["w1", "w2"] if clock.now() >= 1000.5 else Pending(f"{len(seen)} reads")

    assert poll_until(rows, deadline_s=5, interval_s=0.2, what="rows", clock=clock) == ["w1", "w2"]
    assert seen[0] == 1000.0  # the first call is at once
    assert len(seen) == 4 and clock.sleeps == pytest.approx([0.2, 0.2, 0.2])


def test_a_value_at_the_first_call_never_sleeps() -> None:
    clock = FakeClock()
    assert poll_until(lambda: 7, deadline_s=1, interval_s=0.1, what="seven", clock=clock) == 7
    assert clock.sleeps == []


def test_zero_and_empty_values_are_values_but_none_and_false_are_not_yet() -> None:
    clock = FakeClock()
    assert poll_until(lambda: 0, deadline_s=1, interval_s=0.1, what="zero", clock=clock) == 0
    assert poll_until(lambda: [], deadline_s=1, interval_s=0.1, what="empty", clock=clock) == []
    with pytest.raises(PollTimeout) as none:
        poll_until(lambda: None, deadline_s=0.3, interval_s=0.1, what="none", clock=clock)
    assert none.value.last is None
    with pytest.raises(PollTimeout) as false:
        poll_until(lambda: False, deadline_s=0.3, interval_s=0.1, what="false", clock=clock)
    assert false.value.last is False


def test_the_deadline_names_what_and_the_last_observation() -> None:
    clock = FakeClock()
    n = iter(range(100))

    def missing() -> Pending:
        return Pending({"node-b": [f"w{next(n)}"]})

    with pytest.raises(PollTimeout) as exc:
        poll_until(missing, deadline_s=1.0, interval_s=0.25, what="node-b holds every acknowledged write",
                   clock=clock)
    err = exc.value
    assert isinstance(err, TimeoutError)
    assert err.what == "node-b holds every acknowledged write"
    assert err.polls == 5 and err.last == {"node-b": ["w4"]}
    assert str(err).startswith("node-b holds every acknowledged write: not reached within 1 s (5 polls)")
    assert "{'node-b': ['w4']}" in str(err)


def test_never_sleeps_past_the_deadline_and_polls_at_it() -> None:
    clock = FakeClock()
    polled: list[float] = []

    def never() -> None:
        polled.append(clock.now())

    with pytest.raises(PollTimeout):
        poll_until(never, deadline_s=1.0, interval_s=0.3, what="never", clock=clock)
    assert clock.t == pytest.approx(1001.0)  # the last sleep was cut to the deadline
    assert clock.sleeps == pytest.approx([0.3, 0.3, 0.3, 0.1])
    assert polled[-1] == pytest.approx(1001.0)  # a condition that holds at the deadline is seen


def test_a_slow_predicate_is_not_followed_by_a_sleep_past_the_deadline() -> None:
    clock = FakeClock()

    def slow() -> None:
        clock.t += 0.7  # the read itself takes time (an SSH round trip)

    with pytest.raises(PollTimeout) as exc:
        poll_until(slow, deadline_s=1.0, interval_s=0.5, what="slow", clock=clock)
    assert clock.sleeps == pytest.approx([0.3])
    assert exc.value.polls == 2


def test_a_long_message_is_cut() -> None:
    with pytest.raises(PollTimeout) as exc:
        poll_until(lambda: Pending("x" * 5000), deadline_s=0, interval_s=1, what="big", clock=FakeClock())
    assert len(str(exc.value)) < 400 and exc.value.last == "x" * 5000


def test_nonsense_arguments_are_refused_before_any_call() -> None:
    calls: list[int] = []
    for kwargs in ({"deadline_s": -1, "interval_s": 0.1}, {"deadline_s": 1, "interval_s": 0}):
        with pytest.raises(ValueError, match="poll_until\\('x'\\)"):
            poll_until(lambda: calls.append(1), what="x", clock=FakeClock(), **kwargs)  # type: ignore[arg-type]
    assert calls == []


def test_sleep_until_sleeps_the_remaining_time_only() -> None:
    clock = FakeClock()
    sleep_until(1002.5, clock=clock)
    assert clock.sleeps == [2.5] and clock.t == 1002.5
    sleep_until(1001.0, clock=clock)  # already past: no sleep
    sleep_until(1002.5, clock=clock)
    assert clock.sleeps == [2.5]
