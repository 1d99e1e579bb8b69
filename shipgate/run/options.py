"""What a campaign is asked to do (`CampaignOptions`) and what it settled on before anything exists (`Plan`)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shipgate.evidence.models import TargetRef
from shipgate.hosts.inventory import Inventory
from shipgate.run.settings import GateSettings

ROOT = Path(__file__).resolve().parents[2]


class CampaignError(ValueError):
    """The campaign cannot start (bad options); nothing was provisioned."""


@dataclass
class CampaignOptions:
    settings: GateSettings
    # A provider's name; None: the registry's default (its first entry, the lab). auto (the CLI's default): the
    # first provider after the default that claims the campaign (DigitalOcean when the Pulumi stack, named by
    # `stack`, or campaign-<id>, or the selected one, has outputs), else the default.
    provider: str | None = None
    lab_name: str = "sg"
    target: Path | None = None
    release: str | None = None  # `ai-memory@X.Y.Z` when --target named a release (then `target` is its binary)
    defects: list[str] = field(default_factory=list)
    keep: bool = False
    runs_dir: Path = ROOT / "runs"
    campaign_id: str | None = None
    git_ref: str | None = None
    inventory: Inventory | None = None  # given directly (tests); then nothing is provisioned
    render: bool = True
    ssh_key: Path | None = None  # DigitalOcean: the operator's private key (default ~/.ssh/id_ed25519)
    stack: str | None = None  # DigitalOcean: the Pulumi stack (default campaign-<id>, else the selected one)
    destroy: bool = False  # DigitalOcean: `pulumi destroy` the stack once the campaign is summarised


@dataclass
class Plan:
    """What a campaign will run, settled before anything exists: every startup error is raised while making it."""

    campaign_id: str
    provider: str
    where: str
    settings: GateSettings
    target: TargetRef
    inventory: Inventory | None = None  # the hosts already known (up, given, or the stack's); None: built later
    stack: str | None = None  # the cloud stack the hosts belong to (recorded in the summary)
    stack_campaign: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)  # what the provider read while planning, for acquire
    given: bool = False  # the hosts were handed in (CampaignOptions.inventory): nothing is acquired or released


def new_campaign_id(prefix: str = "gate") -> str:
    return f"{prefix}-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
