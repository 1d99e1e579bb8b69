"""`invoke infra.up`, `invoke infra.down` and `invoke janitor`: the DigitalOcean side.

`infra.up`/`infra.down` wrap the `pulumi` CLI for users who have it (a clear message when they do
not); one Pulumi stack per campaign (`campaign-<id>`). The janitor talks to the DigitalOcean API
directly, so it works even when the Pulumi state is lost.
"""

from __future__ import annotations

import os
from pathlib import Path

from invoke import Collection, task
from invoke.exceptions import Exit

from shipgate.providers.digitalocean import stack as do
from shipgate.providers.digitalocean.janitor import (
    DEFAULT_API_URL,
    DoApiError,
    DoClient,
    delete_leftovers,
    describe,
    find_leftovers,
    token_from_env,
)


def _stack(stack: str | None, campaign: str | None) -> str | None:
    if stack:
        return stack
    if campaign:
        try:
            return do.stack_name_for(campaign)
        except ValueError as err:
            raise Exit(f"--campaign: {err}", code=2) from None
    return None


def _seconds(flag: str, value: str | float) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise Exit(f"--{flag} takes a number of seconds (got {value!r})", code=2) from None
    if seconds <= 0:
        raise Exit(f"--{flag} must be more than 0 seconds (got {value!r})", code=2)
    return seconds


def _read_public_key(path: str | None) -> str | None:
    if path is None:
        return None
    p = Path(path).expanduser()
    if not p.is_file():
        raise Exit(f"--ssh-public-key: no such file: {p}", code=2)
    text = p.read_text().strip()
    if "PRIVATE KEY" in text:
        raise Exit(f"--ssh-public-key: {p} is a private key; give the .pub file", code=2)
    return text


@task(
    auto_shortflags=False,
    help={
        "campaign": "campaign id; selects (or creates) the stack campaign-<id> and sets shipgate:campaignId",
        "stack": "Pulumi stack name (default: campaign-<id>, or the currently selected stack)",
        "region": "DigitalOcean region slug (shipgate:region, default nyc3)",
        "operator_cidr": "who may SSH in, e.g. 198.51.100.7/32; comma-separate several (shipgate:operatorCidrs)",
        "ssh_public_key": "path of an OpenSSH .pub file to register (shipgate:sshPublicKey)",
        "ssh_key_fingerprint": "fingerprint of a key already registered with DigitalOcean",
        "target_ref": "the ai-memory git ref under test, recorded in the outputs (shipgate:targetRef)",
        "dead_man_hours": "power the droplets off after this many hours (shipgate:deadManHours, default 8)",
        "timeout": "seconds `pulumi up` may take (default 3600)",
    },
)
def up(
    c,
    campaign=None,
    stack=None,
    region=None,
    operator_cidr=None,
    ssh_public_key=None,
    ssh_key_fingerprint=None,
    target_ref=None,
    dead_man_hours=None,
    timeout="3600",
):
    """`pulumi up` for one campaign stack (needs the pulumi CLI and DIGITALOCEAN_TOKEN)."""
    name = _stack(stack, campaign)
    settings = {
        "campaignId": campaign,
        "region": region,
        "operatorCidrs": operator_cidr,
        "sshPublicKey": _read_public_key(ssh_public_key),
        "sshKeyFingerprint": ssh_key_fingerprint,
        "targetRef": target_ref,
        "deadManHours": None if dead_man_hours is None else str(dead_man_hours),
    }
    try:
        if name:
            do.select_stack(name, create=True)
        do.set_stack_config(settings, stack=name)
        do.pulumi_up(stack=name, timeout_s=_seconds("timeout", timeout))
    except do.DigitalOceanError as err:
        raise Exit(f"infra.up: {err}", code=2) from None
    where = f" --stack {name}" if name else ""
    print(f"infra.up: stack {name or '(the selected one)'} is up; next: invoke gate --target <ai-memory binary>"
          f"{where} (the gate runs on a stack that has outputs; `invoke infra.down{where}` destroys it)")


@task(
    help={
        "campaign": "campaign id (selects the stack campaign-<id>)",
        "stack": "Pulumi stack name (default: campaign-<id>, or the currently selected stack)",
        "timeout": "seconds `pulumi destroy` may take (default 3600)",
    }
)
def down(c, campaign=None, stack=None, timeout="3600"):
    """`pulumi destroy` on a campaign stack; if it fails, `invoke janitor --campaign ID --yes` cleans up."""
    name = _stack(stack, campaign)
    try:
        do.pulumi_destroy(stack=name, timeout_s=_seconds("timeout", timeout))
    except do.DigitalOceanError as err:
        hint = f" Run `invoke janitor --campaign {campaign} --yes` to remove leftovers." if campaign else ""
        raise Exit(f"infra.down: {err}.{hint}", code=2) from None
    print(f"infra.down: stack {name or '(current)'} destroyed")


@task(
    help={
        "campaign": "campaign id whose tagged (or named) resources to find",
        "yes": "delete them, not only list",
        "api_url": f"DigitalOcean API base URL (default {DEFAULT_API_URL})",
        "vpc_wait": "seconds to wait for the VPC to empty before deleting it (default 900)",
        "poll": "seconds between polls of the VPC's members (default 10)",
    }
)
def janitor(c, campaign, yes=False, api_url=DEFAULT_API_URL, vpc_wait="900", poll="10"):
    """List (and with --yes delete) DigitalOcean droplets, databases, firewalls, SSH key and VPC of a campaign.

    The token comes from DIGITALOCEAN_TOKEN and is never printed. Exit 0 when nothing is left (or, without
    --yes, after listing), 2 when something could not be found or deleted.
    """
    wait_s, poll_s = _seconds("vpc-wait", vpc_wait), _seconds("poll", poll)
    try:
        do.campaign_tag(campaign)
        token = token_from_env(dict(os.environ))
    except (ValueError, DoApiError) as err:
        raise Exit(f"janitor: {err}", code=2) from None
    try:
        with DoClient(token, base_url=api_url) as client:
            found = find_leftovers(client, campaign)
            print(f"janitor: campaign {campaign}: {len(found)} resource(s) found")
            print(describe(found))
            if not found:
                return
            if not yes:
                print("janitor: nothing deleted; run again with --yes to delete these")
                return
            outcome = delete_leftovers(client, campaign, found, vpc_wait_s=wait_s, poll_s=poll_s)
    except DoApiError as err:
        raise Exit(f"janitor: {err}", code=2) from None
    gone = len(outcome.deleted) + len(outcome.already_gone)
    print(f"janitor: {gone} of {len(found)} removed, {len(outcome.failed)} failed")
    if not outcome.clean:
        raise Exit("janitor: some resources are still there (see above); run it again or remove them by hand", code=2)


ns = Collection("infra", up, down)
TASKS = [janitor]
