"""DigitalOcean as a provider: the hosts are the droplets of a Pulumi stack the operator brought up.

The stack is the operator's: `release` leaves it up, unless --destroy asked for `pulumi destroy`; the
janitor then checks by the campaign's tag that nothing is left.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from shipgate.evidence.models import TargetRef
from shipgate.hosts.inventory import HOST_NAMES, Inventory, Target
from shipgate.hosts.ssh import HostAccess
from shipgate.providers.base import Claim, Progress, check_target
from shipgate.providers.digitalocean import stack as do
from shipgate.run.options import CampaignError, CampaignOptions, Plan
from shipgate.run.settings import GateSettings


class DigitalOceanProvider:
    name: ClassVar[str] = "digitalocean"

    def __init__(self, opts: CampaignOptions) -> None:
        self.opts = opts

    @classmethod
    def claim(cls, opts: CampaignOptions) -> Claim:
        """--infra auto: the campaign is this provider's when the named (or selected) stack has outputs."""
        if opts.defects:
            return Claim(False, "auto: --defects seeds the reference peer, which runs on the lab")
        try:
            do.pulumi_executable()
        except do.PulumiNotFound:
            return Claim(False, "auto: no pulumi CLI on PATH; --infra digitalocean to use a stack")
        stack = _stack_name(opts)
        try:
            outputs = do.read_stack_outputs(stack=stack)
        except do.PulumiFailed as exc:
            if do.no_such_stack(exc) and not opts.stack:
                which = f"no Pulumi stack {stack}" if stack else "no Pulumi stack selected"
                return Claim(False, f"auto: {which}; --infra digitalocean to use one")
            raise CampaignError(f"cannot tell whether a Pulumi stack is up ({exc}); give --infra lab or "
                                "--infra digitalocean") from None
        if not outputs and not opts.stack:
            return Claim(False, f"auto: Pulumi stack {stack or '(selected)'} has no outputs (not up)")
        how = "--stack" if opts.stack else "--campaign-id" if opts.campaign_id else "the selected Pulumi stack"
        return Claim(True, f"auto: {how} has outputs; --infra lab to use the lab",
                     {"outputs": outputs, "stack": stack})

    def plan(self, settings: GateSettings, why: str, facts: dict[str, Any]) -> Plan:
        opts = self.opts
        outputs, stack = facts.get("outputs"), facts.get("stack")
        if opts.defects:
            raise CampaignError("--defects seeds the bundled reference peer and only works on the lab (--infra lab)")
        if opts.target is None:
            raise CampaignError("on DigitalOcean the gate needs --target: the ai-memory binary to install on the "
                                f"droplets (the reference peer runs only on the lab; {why or '--infra digitalocean'})")
        sha256 = check_target(opts.target)
        key = opts.ssh_key or Path(os.environ.get("SHIPGATE_SSH_KEY", Path.home() / ".ssh" / "id_ed25519"))
        if not key.is_file():
            raise CampaignError(f"SSH private key {key} not found: give --ssh-key or set SHIPGATE_SSH_KEY")
        try:
            if outputs is None:
                stack = _stack_name(opts)
                outputs = do.read_stack_outputs(stack=stack)
            if stack is None:
                stack = do.selected_stack()
            if not outputs:
                raise CampaignError(f"Pulumi stack {stack} has no outputs: run `pulumi up` first")
            parsed = do.parse_stack_outputs(outputs)
        except do.DigitalOceanError as exc:
            raise CampaignError(str(exc).replace("\n", " ")) from None
        if opts.campaign_id and opts.campaign_id != parsed.campaign_id:
            raise CampaignError(f"--campaign-id {opts.campaign_id} does not match Pulumi stack {stack}, whose "
                                f"campaign is {parsed.campaign_id} (its resources carry the tag "
                                f"{do.campaign_tag(parsed.campaign_id)})")
        known_hosts = Path.home() / ".cache" / "shipgate" / f"{parsed.campaign_id}.known_hosts"
        target = Target(kind="release" if opts.release else "binary", path=opts.target.resolve(),
                        git_ref=opts.git_ref, sha256=sha256, release=opts.release)
        try:
            inv = do.inventory_from_stack_outputs(outputs, ssh_key=key, known_hosts=known_hosts, target=target)
        except do.DigitalOceanError as exc:
            raise CampaignError(str(exc).replace("\n", " ")) from None
        run_id = parsed.campaign_id
        n = 2
        while (opts.runs_dir / run_id).exists():
            run_id, n = f"{parsed.campaign_id}.{n}"[:63], n + 1
        where = f"digitalocean, Pulumi stack {stack} (campaign {parsed.campaign_id}; {why or '--infra digitalocean'})"
        if run_id != parsed.campaign_id:
            where += f"; runs/{parsed.campaign_id} exists, so this run is runs/{run_id}"
        return Plan(campaign_id=run_id, provider="digitalocean", where=where, settings=settings,
                    target=TargetRef.of(inv.target), inventory=inv, stack=stack, stack_campaign=parsed.campaign_id,
                    facts={"outputs": outputs})

    def acquire(self, plan: Plan, progress: Progress) -> Inventory:
        """The stack's droplets, their host keys (from the stack's outputs) written for SSH."""
        assert plan.inventory is not None, "a DigitalOcean plan always holds the stack's hosts"
        do.write_known_hosts(plan.facts["outputs"], plan.inventory.ssh.known_hosts)
        return plan.inventory

    def prepare(self, inventory: Inventory, access: HostAccess, progress: Progress) -> None:
        """cloud-init finished on every droplet, then the target binary uploaded as /usr/local/bin/ai-memory."""
        progress("waiting for cloud-init to finish on the droplets")
        results = access.run_many(list(HOST_NAMES), do.READY_COMMAND, timeout=960)
        not_ready = {h: (r.error or f"exit {r.exit_code}") for h, r in results.items() if not r.ok}
        if not_ready:
            raise RuntimeError(f"droplets not ready (cloud-init): {not_ready}")
        if inventory.target.kind in ("binary", "release"):
            progress(f"installing {inventory.target.path} as /usr/local/bin/ai-memory on the hosts")
            for host in HOST_NAMES:
                access.put(host, inventory.target.path, "/usr/local/bin/ai-memory", mode=0o755)

    def release(self, plan: Plan, progress: Progress) -> None:
        """A no-op unless --destroy: the stack stays up, and the line says how to remove it."""
        if plan.stack is None:
            return
        janitor = f"`invoke janitor --campaign {plan.stack_campaign}`"
        if not self.opts.destroy:
            progress(f"Pulumi stack {plan.stack} stays up (the gate never destroys it unasked): `pulumi destroy "
                     f"--stack {plan.stack}` removes it, then {janitor} checks that nothing is left")
            return
        progress(f"destroying Pulumi stack {plan.stack} (--destroy)")
        try:
            do.pulumi_destroy(stack=plan.stack)
            progress(f"stack {plan.stack} destroyed; {janitor} checks that nothing is left")
        except do.DigitalOceanError as exc:
            progress(f"pulumi destroy failed ({exc}); {janitor} --yes removes what is left")


def _stack_name(opts: CampaignOptions) -> str | None:
    """The stack named by --stack, else campaign-<id> for --campaign-id, else None (the selected one)."""
    if opts.stack:
        return opts.stack
    return do.stack_name_for(opts.campaign_id) if opts.campaign_id else None
