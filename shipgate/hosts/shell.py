"""Shell text the gate sends to hosts, built so that every value is quoted by construction.

A value (a path, a name, a PID) becomes a shell word through `word`: integers as digits, strings quoted,
and only `Raw` text -- fragments the gate wrote itself, such as `"$p"` -- passed through. The process
questions ("is PID p alive?", "is that serve gone, port and all?") have one definition here, `PROCESS`,
which every script that asks them starts with.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Iterable

WORKDIR = "shipgate"  # relative to the remote user's home: where the gate keeps its files on a host


class Raw(str):
    """Shell text written by the gate itself (a variable reference, a command substitution): not quoted."""


Word = str | int | Raw


def word(value: Word) -> str:
    """One shell word: a Raw fragment as is, an integer as its digits, any other string quoted."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, bool):
        raise TypeError("a boolean is not a shell word")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return shlex.quote(value)
    raise TypeError(f"{type(value).__name__} is not a shell word")


def join(words: Iterable[Word]) -> str:
    """A command line of words, each quoted by `word`."""
    return " ".join(word(w) for w in words)


def var(name: str) -> Raw:
    """A double-quoted reference to a shell variable the script itself set."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"not a shell variable name: {name!r}")
    return Raw(f'"${name}"')


def contents(path: str) -> Raw:
    """The contents of a file, as one word (a PID file)."""
    return Raw(f'"$(cat {word(path)} 2>/dev/null)"')


# st PID prints the one-letter state of a process from /proc/PID/stat, or "gone" (no such process, or not a
# PID at all); the comm field may hold spaces and parentheses, so it cuts after the last ") ".
# alive PID: the process exists and is no zombie -- `kill -0` alone says yes for a zombie its (namespace)
# init has not reaped yet, which made a restart right after SIGKILL refuse to start or wait in vain.
# gone PID PORT: not alive and nothing listens on PORT -- a multi-threaded server's leader shows as a zombie
# while its other threads still hold the listening socket; a start in that window fails to bind (real 0.6.3).
PROCESS = (
    'st() { case $1 in ""|*[!0-9]*) echo gone; return;; esac; '
    's=$(cat /proc/$1/stat 2>/dev/null) || { echo gone; return; }; s=${s##*) }; echo ${s%% *}; }; '
    'alive() { case $(st "$1") in gone|Z|X) return 1;; esac; }; '
    'gone() { ! alive "$1" && ! ss -Hltn "sport = :$2" 2>/dev/null | grep -q .; }; '
)


def state(pid: Word) -> str:
    """Prints the process's state letter, or "gone" (needs PROCESS)."""
    return join([Raw("st"), pid])


def alive(pid: Word) -> str:
    """True when the process exists and is no zombie (needs PROCESS)."""
    return join([Raw("alive"), pid])


def exists(pid: Word) -> str:
    """True while the PID names any process, a zombie included (needs PROCESS)."""
    return f'[ "$({state(pid)})" != gone ]'


def gone(pid: Word, port: int) -> str:
    """True when the process is not alive and nothing listens on `port` (needs PROCESS)."""
    return join([Raw("gone"), pid, int(port)])


def in_state(pid: Word, states: Iterable[str]) -> str:
    """True when the process's state letter (or "gone") is one of `states` (needs PROCESS)."""
    letters = list(states)
    if not letters or not all(re.fullmatch(r"[A-Za-z]|gone", s) for s in letters):
        raise ValueError(f"process states are single letters or 'gone', not {letters!r}")
    return f"case $({state(pid)}) in {'|'.join(letters)}) true;; *) false;; esac"


def describe(pid: int, port: int) -> str:
    """What a host says about a process that does not answer: its ps line (or that it is gone) and how
    many sockets listen on its port."""
    pid, port = int(pid), int(port)
    return (f"ps -o pid=,stat=,etime=,args= -p {pid} || echo 'pid {pid} gone'; "
            f"ss -ltn 2>/dev/null | grep -c ':{port} ' || true")


def poll(condition: str, *, deadline_s: float, interval_s: float) -> str:
    """A compound command that succeeds as soon as `condition` does, checked every `interval_s`, and fails
    when it still does not after `deadline_s`: the remote counterpart of `shipgate.clock.poll_until`."""
    if deadline_s <= 0 or interval_s <= 0:
        raise ValueError(f"poll needs a positive deadline and interval, not {deadline_s} / {interval_s}")
    tries = max(1, math.ceil(deadline_s / interval_s))
    return (f"{{ for _n in $(seq {tries}); do {condition} && break; sleep {interval_s:g}; done; "
            f"{condition}; }}")
