"""SIGTERM and SIGINT, swapped for the length of a block: raised as an exception, or noted and deferred.

The one place the gate installs signal handlers. Python delivers signals to the main thread only, so off it
the block runs with the handlers untouched (a worker thread cannot be interrupted this way anyway).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def _swapped(handler: Callable[[int, Any], None], signals: tuple[signal.Signals, ...]) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def raising(make: Callable[[str], BaseException],
            signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> Iterator[None]:
    """Each signal raises `make(name)` where the main thread is, so the `finally` blocks around it clean up."""
    def handler(signum: int, _frame: Any) -> None:
        raise make(signal.Signals(signum).name)

    with _swapped(handler, signals):
        yield


@contextlib.contextmanager
def deferred(signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> Iterator[list[str]]:
    """Signals are noted (their names, in order), not obeyed: a second Ctrl-C cannot cut a teardown short."""
    seen: list[str] = []

    def handler(signum: int, _frame: Any) -> None:
        seen.append(signal.Signals(signum).name)

    with _swapped(handler, signals):
        yield seen
