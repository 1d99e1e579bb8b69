"""The Provider seam: where a campaign's hosts come from, how the target gets onto them, where they go.

A provider kind is a class in `shipgate.providers.registry.PROVIDERS`, made once per campaign from its
options. The engine calls, in order: `plan` (every startup error, nothing created), `acquire` (the hosts,
as an `Inventory`), `prepare` (the target installed on them), and `release` on every exit path. For
`--infra auto` the engine asks each kind after the default whether it `claim`s the campaign.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from shipgate.evidence.models import TargetRef
from shipgate.hosts.inventory import Inventory, file_sha256
from shipgate.run.options import CampaignError, CampaignOptions, Plan
from shipgate.run.settings import GateSettings

if TYPE_CHECKING:  # the transport is only a type here: reading answers must not load paramiko
    from shipgate.hosts.ssh import HostAccess

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Claim:
    """A provider's answer to `--infra auto`: it takes the campaign (why), or declines (why not)."""

    taken: bool
    why: str
    facts: dict[str, Any] = field(default_factory=dict)  # what it read to decide, handed to `plan`


class Provider(Protocol):
    """One campaign's hosts, from plan to release."""

    def plan(self, settings: GateSettings, why: str, facts: dict[str, Any]) -> Plan:
        """Settle the campaign on this provider; raise `CampaignError` naming any startup problem."""
        ...

    def acquire(self, plan: Plan, progress: Progress) -> Inventory:
        """The hosts, up and reachable over SSH."""
        ...

    def prepare(self, inventory: Inventory, access: HostAccess, progress: Progress) -> None:
        """Make the target runnable on the hosts (what the provider has not installed already)."""
        ...

    def release(self, plan: Plan, progress: Progress) -> None:
        """Give back what `acquire` made, as far as this provider removes it; says what stays."""
        ...


class ProviderKind(Protocol):
    """A provider class: `name`, `claim(opts)` for --infra auto, and its constructor from the options."""

    name: ClassVar[str]

    def __call__(self, opts: CampaignOptions) -> Provider: ...

    def claim(self, opts: CampaignOptions) -> Claim: ...


def check_target(target: Path) -> str:
    """sha256 of a --target file; a missing or non-executable file is a startup error."""
    if not target.is_file():
        raise CampaignError(f"--target {target}: no such file")
    if not os.access(target, os.X_OK):
        raise CampaignError(f"--target {target}: not an executable file")
    return file_sha256(target)


def wanted_target(opts: CampaignOptions, sha256: str | None) -> TargetRef:
    """The target the options ask for: the reference peer (with its defects), a binary or a named release."""
    if opts.target is None:
        return TargetRef(kind="refpeer", defects=list(opts.defects), git_ref=opts.git_ref)
    return TargetRef(kind="release" if opts.release else "binary", path=str(opts.target), sha256=sha256,
                     git_ref=opts.git_ref, release=opts.release)


def with_provenance(inv: Inventory, plan: Plan, opts: CampaignOptions) -> Inventory:
    """The inventory stamped with the campaign id and what the options know of the target (sha256, ref, release)."""
    inv = inv.model_copy(update={"campaign_id": plan.campaign_id})
    provenance = {"sha256": plan.target.sha256 or inv.target.sha256, "git_ref": opts.git_ref or inv.target.git_ref}
    if opts.release:
        provenance.update(kind="release", release=opts.release)
    return inv.model_copy(update={"target": inv.target.model_copy(update=provenance)})
