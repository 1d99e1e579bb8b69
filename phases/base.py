"""What every phase shares: its context, the check recorder, and remote-command helpers.

A phase takes a `PhaseContext` and returns its report model. Phases only speak to hosts through
`HostAccess`, so they never know whether the hosts are namespaces or droplets.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shipgate.evidence.atomic import write_text
from shipgate.evidence.models import Check, OperationEvent, TargetRef, Timing
from shipgate.hosts.inventory import Inventory
from shipgate.hosts.ssh import CommandResult, HostAccess
from shipgate.run.settings import GateSettings
from shipgate.target.capabilities import Capabilities

Progress = Callable[[str], None]


@dataclass
class PhaseContext:
    inventory: Inventory
    access: HostAccess
    settings: GateSettings
    run_dir: Path
    progress: Progress = field(default=lambda msg: None)

    @property
    def history_dir(self) -> Path:
        d = self.run_dir / "history"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def hostname(self, host: str) -> str:
        return self.inventory.hosts[host].hostname

    @property
    def capabilities(self) -> Capabilities | None:
        return self.inventory.target.capabilities

    @property
    def serve_flags(self) -> list[str] | None:
        """The target's serve flags for `ServeSpec.flags` (None when the target was not probed)."""
        caps = self.capabilities
        return None if caps is None else caps.subcommands.get("serve", [])

    def target_ref(self) -> TargetRef:
        return TargetRef.of(self.inventory.target)


class Checks:
    """Collects checks in order. `fail` = the product broke an invariant; `error` = the gate could
    not establish the fact. A check whose observation is missing is an error, never a pass."""

    def __init__(self) -> None:
        self.items: list[Check] = []

    def add(self, id: str, expected: Any, observed: Any, passed: bool | None, detail: str | None = None) -> bool:
        status = "error" if passed is None else ("pass" if passed else "fail")
        self.items.append(Check(id=id, expected=_jsonable(expected), observed=_jsonable(observed),
                                status=status, detail=detail))
        return bool(passed)

    def error(self, id: str, expected: Any, detail: str) -> None:
        self.items.append(Check(id=id, expected=_jsonable(expected), observed=None, status="error", detail=detail))

    def skipped(self, id: str, expected: Any, detail: str) -> None:
        self.items.append(Check(id=id, expected=_jsonable(expected), observed=None, status="skipped", detail=detail))

    def model(self, obj: Any, model: type, id: str) -> Any | None:
        """Validate program output against its model; an unparsable shape is an error check, not a crash."""
        try:
            return model.model_validate(obj)
        except Exception as exc:
            self.error(f"{id}.shape", model.__name__, f"output does not match {model.__name__}: {str(exc)[:300]}")
            return None

    def __len__(self) -> int:
        return len(self.items)

    def passed(self) -> int:
        return sum(c.status == "pass" for c in self.items)


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return json.loads(json.dumps(v, default=str))


def now() -> datetime:
    return datetime.now(UTC)


class Stopwatch:
    """Wall-clock start for the record, monotonic clock for the duration."""

    def __init__(self) -> None:
        self.started_at = now()
        self._t0 = time.monotonic()

    @property
    def elapsed(self) -> float:
        return round(time.monotonic() - self._t0, 3)

    def timing(self) -> Timing:
        return Timing(started_at=self.started_at, finished_at=now(), duration_s=self.elapsed)


def cli(db: str, *args: str, env: dict[str, str] | None = None) -> str:
    """An `ai-memory` command line against an explicit database."""
    words = " ".join(shlex.quote(f"{k}={v}") for k, v in {"AI_MEMORY_DB": db, **(env or {})}.items())
    return f"env {words} ai-memory " + shlex.join(args)


def host_unreachable(res: CommandResult) -> bool:
    """SSH itself failed (not the remote command): the host is gone, later steps cannot run."""
    return bool(res.error) and (res.error.startswith("connect") or res.error.startswith("auth")
                                or "ssh" in res.error.lower())


def write_history(path: Path, events: list[dict]) -> None:
    """Operation history as JSONL, each line an OperationEvent (numbered), written atomically."""
    lines = []
    for i, event in enumerate(events):
        lines.append(OperationEvent.model_validate({**event, "index": i}).model_dump_json(exclude_none=True))
    write_text(path, "".join(line + "\n" for line in lines))
