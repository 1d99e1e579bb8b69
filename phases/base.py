"""What every phase shares: its context, the check recorder, and remote-command helpers.

A phase takes a `PhaseContext` and returns its report model. Phases only speak to hosts through
`HostAccess`, so they never know whether the hosts are namespaces or droplets. `PhaseEntry` is how a phase
module is listed in `phases.PHASES`: the `Phase` the engine runs.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from shipgate.evidence.atomic import write_text
from shipgate.evidence.models import PHASE_MODELS, Check, OperationEvent, PhaseReportBase, Timing
from shipgate.evidence.phase_ids import PHASE_NAMES
from shipgate.evidence.problems import describe
from shipgate.evidence.verdict import expected_artifacts
from shipgate.hosts.inventory import PEER_NAMES
from shipgate.hosts.result import CommandResult
from shipgate.run.context import Phase, PhaseContext, Progress
from shipgate.run.settings import GateSettings

__all__ = ["Checks", "Phase", "PhaseContext", "PhaseEntry", "Progress", "Stopwatch", "cli", "host_unreachable",
           "now", "write_history"]

Runner = Callable[[PhaseContext], PhaseReportBase | list[PhaseReportBase]]
Settle = Callable[[GateSettings], GateSettings]


def _as_given(settings: GateSettings) -> GateSettings:
    return settings


@dataclass(frozen=True)
class PhaseEntry:
    """A phase module as `PHASES` lists it: its number, its runner, and whether it reports once per peer.

    The name, the report model and the artifact names come from the evidence's tables keyed by the number,
    so the engine, the verdict and the report renderer cannot disagree about them."""

    number: int
    runner: Runner
    per_node: bool = False
    settler: Settle = _as_given

    @property
    def name(self) -> str:
        return PHASE_NAMES[self.number]

    def artifacts(self) -> list[str]:
        return expected_artifacts(self.number)

    def settle(self, settings: GateSettings) -> GateSettings:
        return self.settler(settings)

    def artifact_of(self, report: PhaseReportBase) -> str:
        return report.artifact_name if self.per_node else f"phase{self.number}.json"

    def not_run(self, reason: str) -> list[PhaseReportBase]:
        model = PHASE_MODELS[self.number]
        check = Check.error(f"phase{self.number}.ran", "the phase runs to completion", reason)
        if self.per_node:
            return [model.from_checks([check], error=reason, node=n, host=n) for n in PEER_NAMES]
        return [model.from_checks([check], error=reason)]

    def run(self, ctx: PhaseContext) -> list[PhaseReportBase]:
        result = self.runner(ctx)
        return result if isinstance(result, list) else [result]


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
        except ValidationError as exc:
            why = describe(exc)
        except Exception as exc:
            why = str(exc)
        self.error(f"{id}.shape", model.__name__, f"output does not match {model.__name__}: {why[:300]}")
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
