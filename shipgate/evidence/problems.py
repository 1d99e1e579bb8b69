"""The one reading of a pydantic `ValidationError`: each problem as (where, message), where in either notation.

Artifacts name a place as a JSON pointer (`/phases/0/status`), settings and stack outputs as a dotted path
(`phase4.cycles`); both come from the same (location, message) pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pydantic import ValidationError


def pointer(path: Iterable[Any]) -> str:
    """RFC 6901 JSON pointer of a path ('' is the whole document)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def dotted(path: Iterable[Any]) -> str:
    """'phase4.cycles'; '(top level)' for the whole document."""
    return ".".join(str(p) for p in path) or "(top level)"


def field_errors(exc: ValidationError) -> list[tuple[tuple[str, ...], str]]:
    """(location, message) for every error, locations as strings."""
    return [(tuple(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]


def describe(exc: ValidationError, where: Callable[[Iterable[Any]], str] = pointer, *, sep: str = "; ",
             prefix: str = "", limit: int | None = None) -> str:
    """'loc: message' per error joined by `sep` (each after `prefix`), '(+N more)' past `limit`."""
    errors = field_errors(exc)
    shown = errors if limit is None else errors[:limit]
    text = sep.join(f"{prefix}{where(loc) or '/'}: {msg}" for loc, msg in shown)
    more = len(errors) - len(shown)
    return text + (f" (+{more} more)" if more > 0 else "")
