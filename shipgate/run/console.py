"""Progress lines on stderr with elapsed time, and the escaping that makes quoted target output safe in them."""

from __future__ import annotations

import re
import sys
import time
from typing import Any

_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


class Console:
    """Progress lines on stderr with elapsed time: CI logs and terminals both read them."""

    def __init__(self, stream: Any = None) -> None:
        self.t0 = time.monotonic()
        self.stream = stream or sys.stderr

    def __call__(self, msg: str) -> None:
        print(f"[{time.monotonic() - self.t0:7.1f}s] {printable(msg)}", file=self.stream, flush=True)


def printable(text: str) -> str:
    """Control characters escaped: a target's output quoted in a progress line can neither drive the
    terminal (escape sequences) nor forge log lines (newlines)."""
    return _CONTROL_RE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
