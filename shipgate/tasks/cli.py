"""How this project's tasks meet invoke's command line: exit codes and repeatable flags.

The gate's exit codes mean 0 pass, 1 fail (the product broke an invariant), 2 anything else. Invoke itself
exits 1 on its own parse errors (an unknown task, an unknown flag, a flag without its value), which a CI
job would read as a red product. `adopt_program` fixes that for the program that is running: invoke loads
`tasks.py` (which calls it) after parsing its core flags and before parsing the task arguments, so the
parse of the task arguments, the `--help TASK` lookup and the execution can be wrapped there. The README's
`.venv/bin/invoke` and `python -m invoke` both run that one program object, `invoke.main.program`.

`Repeatable` is a flag that takes a value and may be given several times: the values are joined with
commas, so `--fault a --fault b` and `--fault a,b` mean the same. Invoke's own list flags accept a bare
`--fault` as an empty list (which read as "every class") and show no value in the help; a Repeatable is
parsed as a list flag (so a repeat is accepted) but starts with no value (so a bare flag is a parse error),
and `adopt_program` wraps invoke's `ParserContext.help_for` so the help shows it as `--fault=STRING`.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from invoke import Task
from invoke.exceptions import Exit, ParseError, UnexpectedExit
from invoke.parser import Argument, ParserContext

USAGE_HINT = "`invoke --list` shows the tasks, `invoke --help TASK` a task's options"


class Repeatable(Argument):
    """A value-taking flag whose repeats accumulate as one comma list (a str, or None when not given)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(kind=list, **kwargs)
        self.raw_value = self._value = None  # invoke starts list flags at []: then a bare flag passes unseen

    def __repr__(self) -> str:
        return repr(f"--{self.name.replace('_', '-')}")  # invoke's parse errors quote flags by repr

    def set_value(self, value: Any, cast: bool = True) -> None:
        self.raw_value = value
        self._value = value if self._value is None else f"{self._value},{value}"

    @property
    def value(self) -> Any:
        return self._value if self._value is not None else self.default

    @value.setter
    def value(self, arg: Any) -> None:
        self.set_value(arg)


def _help_for(original: Callable[[ParserContext, str], tuple[str, str]]) -> Callable[..., tuple[str, str]]:
    def help_for(self: ParserContext, flag: str) -> tuple[str, str]:
        names, text = original(self, flag)
        if isinstance(self.flags[flag], Repeatable):
            names = ", ".join(n + ("=STRING" if n.startswith("--") else " STRING") for n in names.split(", "))
        return names, text

    return help_for


class GateTask(Task):
    """A Task whose `repeatable` arguments are `Repeatable` flags instead of invoke's list flags, and whose
    `long_only` arguments get no short flag (so the short flags of older options never shift, and no new one
    takes `-h`)."""

    def __init__(self, *args: Any, repeatable: Iterable[str] = (), long_only: Iterable[str] = (),
                 **kwargs: Any) -> None:
        self.repeatable = set(repeatable)
        self.long_only = set(long_only)
        super().__init__(*args, **kwargs)

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        args = super().get_arguments(ignore_unknown_help=ignore_unknown_help)
        out: list[Argument] = []
        for arg in args:
            key = arg.attr_name or arg.name
            names = tuple(n for n in arg.names if len(n) > 1) if key in self.long_only else arg.names
            if key in self.repeatable:
                arg = Repeatable(names=names, default=None, help=arg.help, attr_name=arg.attr_name)
            elif names != arg.names:
                arg = Argument(names=names, kind=arg.kind, default=arg.default, help=arg.help,
                               attr_name=arg.attr_name)
            out.append(arg)
        return out


def _usage(fn: Callable[[], None]) -> Callable[[], None]:
    def wrapped() -> None:
        try:
            try:
                fn()
            finally:
                sys.stdout.flush()  # a block-buffered pipe fails here, not in print
        except ParseError as exc:
            raise Exit(f"{exc} ({USAGE_HINT})", code=2) from None
        except BrokenPipeError:
            _reader_left()

    return wrapped


def _reader_left() -> None:
    """`invoke --list | head`: the reader has what it wanted; no traceback, and none at exit's flush either."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    raise Exit(code=0)


def _guarded(fn: Callable[[], None]) -> Callable[[], None]:
    """A task that crashes or is interrupted outside a campaign is an error (2), not a red product (1)."""

    def wrapped() -> None:
        try:
            fn()
        except (Exit, ParseError, UnexpectedExit, SystemExit):
            raise
        except KeyboardInterrupt:
            raise Exit("interrupted (SIGINT): nothing more was done", code=2) from None
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            raise Exit(f"the task crashed: {type(exc).__name__}: {exc}", code=2) from None

    return wrapped


def adopt_program() -> bool:
    """Wrap the running invoke program's task parsing and execution; True when it was found and wrapped."""
    try:  # why: an invoke without `invoke.main` (embedded use) runs its own parser; nothing to adopt
        from invoke.main import program
    except ImportError:
        return False
    if getattr(program, "_shipgate_adopted", False):
        return True
    program.parse_tasks = _usage(program.parse_tasks)
    program.parse_cleanup = _usage(program.parse_cleanup)
    program.execute = _guarded(program.execute)
    ParserContext.help_for = _help_for(ParserContext.help_for)
    program._shipgate_adopted = True
    return True
