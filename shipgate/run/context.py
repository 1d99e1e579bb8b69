"""What the engine hands a phase (`PhaseContext`) and what it expects of one (`Phase`).

The engine runs whatever phases it is given: it never imports `phases`, so a phase is known to it only by
this contract. `phases.base` re-exports both for the phases themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from shipgate.evidence.models import PhaseReportBase, TargetRef
from shipgate.hosts.inventory import Inventory
from shipgate.run.settings import GateSettings
from shipgate.target.capabilities import Capabilities

if TYPE_CHECKING:  # the transport is only a type here: reading answers must not load paramiko
    from shipgate.hosts.ssh import HostAccess

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


class Phase(Protocol):
    """One phase as the engine sees it: its number and name, the files it leaves, and how it runs."""

    @property
    def number(self) -> int: ...

    @property
    def name(self) -> str: ...

    def artifacts(self) -> list[str]:
        """The files the phase must leave in the run folder."""
        ...

    def settle(self, settings: GateSettings) -> GateSettings:
        """The settings with what the phase draws before the campaign starts (e.g. a seed) filled in."""
        ...

    def artifact_of(self, report: PhaseReportBase) -> str:
        """The file one of its reports is written to."""
        ...

    def not_run(self, reason: str) -> list[PhaseReportBase]:
        """The reports of the phase when it could not run: one error check naming `reason` each."""
        ...

    def run(self, ctx: PhaseContext) -> list[PhaseReportBase]:
        """Run the phase; its reports (one per artifact)."""
        ...
