"""The lab as a provider: hosts are network namespaces on this machine, built for the campaign or already up.

The gate removes the lab it built (unless --keep) and never a lab that was already up.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

from shipgate.evidence.models import TargetRef
from shipgate.hosts.inventory import Inventory
from shipgate.hosts.ssh import HostAccess
from shipgate.providers import lab
from shipgate.providers.base import Claim, Progress, check_target, wanted_target, with_provenance
from shipgate.providers.lab.system import preflight
from shipgate.run.options import CampaignError, CampaignOptions, Plan, new_campaign_id
from shipgate.run.settings import GateSettings


class LabProvider:
    name: ClassVar[str] = "lab"

    def __init__(self, opts: CampaignOptions) -> None:
        self.opts = opts
        self.built = False

    @classmethod
    def claim(cls, opts: CampaignOptions) -> Claim:
        """The lab is the default: it never needs to claim a campaign."""
        return Claim(True, "")

    def plan(self, settings: GateSettings, why: str, facts: dict[str, Any]) -> Plan:
        opts = self.opts
        cloud = [f for f, v in (("--stack", opts.stack), ("--ssh-key", opts.ssh_key), ("--destroy", opts.destroy))
                 if v]
        if cloud:
            raise CampaignError(f"{', '.join(cloud)}: DigitalOcean option(s), but the campaign would run on the lab "
                                f"({why or 'lab'}); `pulumi up` a stack first, or leave them out")
        try:
            lab.LabLayout(opts.lab_name)
            defects = lab.check_defects(opts.defects, opts.target)
            sha256 = check_target(opts.target) if opts.target is not None else None
            preflight()
            existing = lab.load(opts.lab_name)
        except (lab.LabError, lab.LabNameError) as exc:
            raise CampaignError(str(exc)) from None
        wanted = wanted_target(replace(opts, defects=defects), sha256)
        campaign_id = opts.campaign_id or new_campaign_id()
        how = f" ({why})" if why else ""
        if existing is None:
            return Plan(campaign_id=campaign_id, provider="lab", where=f"lab {opts.lab_name!r}, built for this "
                        f"campaign{how}", settings=settings, target=wanted)
        have = TargetRef.of(existing.target).model_copy(
            update={"sha256": lab.installed_target_sha256(opts.lab_name)})
        if (_file_kind(have.kind), have.sha256, sorted(have.defects)) != (
                _file_kind(wanted.kind), wanted.sha256, sorted(wanted.defects)):
            raise CampaignError(f"lab {opts.lab_name!r} is already up with {_describe(have)}, not "
                                f"{_describe(wanted)}: `invoke lab.down --name {opts.lab_name}` first, or ask for "
                                "the lab's own target")
        target = have.model_copy(update={"path": wanted.path, "git_ref": opts.git_ref or have.git_ref})
        return Plan(campaign_id=campaign_id, provider="lab", where=f"lab {opts.lab_name!r}, already up (it stays "
                    f"up){how}", settings=settings, target=target, inventory=existing)

    def acquire(self, plan: Plan, progress: Progress) -> Inventory:
        opts = self.opts
        if plan.inventory is not None:
            progress(f"lab {opts.lab_name!r} is already up; using it (it stays up)")
            return with_provenance(plan.inventory, plan, opts)
        progress(f"building lab {opts.lab_name!r}")
        inv = lab.up(opts.lab_name, target=opts.target, defects=opts.defects, campaign_id=plan.campaign_id)
        self.built = True
        return with_provenance(inv, plan, opts)

    def prepare(self, inventory: Inventory, access: HostAccess, progress: Progress) -> None:
        """Nothing: building the lab installed the target in each host's HOME."""

    def release(self, plan: Plan, progress: Progress) -> None:
        name = self.opts.lab_name
        if not self.built:
            return
        if self.opts.keep:
            progress(f"lab {name!r} kept up (--keep); `invoke lab.down --name {name}` removes it")
            return
        progress(f"removing lab {name!r}")
        try:
            lab.down(name)
        except Exception as exc:
            progress(f"lab teardown failed: {exc}; run `invoke lab.down --name {name}`")


def _file_kind(kind: str | None) -> str | None:
    """A named release is a binary file too: the same file up in the lab is the same target."""
    return "binary" if kind == "release" else kind


def _describe(t: TargetRef) -> str:
    if t.kind == "refpeer":
        return "the bundled reference peer" + (f" with defects {','.join(t.defects)}" if t.defects else
                                               " (no defects)")
    return f"{t.kind} {t.path or '?'} (sha256 {(t.sha256 or 'unknown')[:16]})"
