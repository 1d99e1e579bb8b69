"""DigitalOcean side of the gate: naming, the Pulumi stack outputs, and the `pulumi` CLI wrappers.

The Pulumi program (infra/) and the janitor both name and tag resources through the functions here,
so a leftover found by the janitor is exactly what the program created. The stack outputs are
parsed by one pydantic model (`StackOutputs`): the program's tests check that what it exports
validates against it, and the gate turns it into an `Inventory` without knowing about Pulumi.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from shipgate.evidence.problems import describe, dotted
from shipgate.hosts.inventory import (
    CAMPAIGN_ID_RE,
    HOST_NAMES,
    Host,
    Inventory,
    PostgresEndpoint,
    SshSettings,
    Target,
)

SHARED_TAGS: tuple[str, ...] = ("ai-memory", "ship-gate")
RESOURCE_PREFIX = "shipgate"
NAME_LIMIT = 63
TAG_LIMIT = 255
CONFIG_NAMESPACE = "shipgate"
DEFAULT_PULUMI_TIMEOUT_S = 60.0
# What a host prints once cloud-init (packages, host key, dead-man switch) has finished.
READY_MARKER = "/var/lib/shipgate/ready"
READY_COMMAND = f"timeout 900 cloud-init status --wait >/dev/null; test -f {READY_MARKER}"

_TAG_BAD = re.compile(r"[^A-Za-z0-9:_-]")
_NAME_BAD = re.compile(r"[^a-z0-9-]+")


class DigitalOceanError(RuntimeError):
    """Base for errors of this module; messages name the problem and never carry secrets."""


class PulumiNotFound(DigitalOceanError):
    """The `pulumi` CLI is not installed (or not on PATH)."""


class PulumiFailed(DigitalOceanError):
    """The `pulumi` CLI ran but failed or timed out."""


class StackOutputsError(DigitalOceanError):
    """The stack outputs lack something the inventory needs, or have the wrong shape."""


def _check_campaign_id(campaign_id: str) -> str:
    if not CAMPAIGN_ID_RE.match(campaign_id):
        raise ValueError(
            f"campaign id {campaign_id!r} must be 1-63 chars of lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return campaign_id


def campaign_tag(campaign_id: str) -> str:
    """`campaign-<id>` in DigitalOcean's tag alphabet (letters, digits, ':', '-', '_'); '.' becomes '-'."""
    tag = "campaign-" + _TAG_BAD.sub("-", _check_campaign_id(campaign_id))
    return tag[:TAG_LIMIT]


def campaign_tags(campaign_id: str) -> list[str]:
    """Every tag a campaign's resources carry: the two shared ones and the campaign's own."""
    return [*SHARED_TAGS, campaign_tag(campaign_id)]


def _fit(base: str, campaign_id: str, limit: int = NAME_LIMIT) -> str:
    """Shorten `base` to `limit` chars, keeping it unique per campaign with a short hash when cut."""
    if len(base) <= limit:
        return base
    digest = hashlib.sha256(campaign_id.encode()).hexdigest()[:8]
    return f"{base[: limit - len(digest) - 1].rstrip('-')}-{digest}"


def campaign_slug(campaign_id: str) -> str:
    """The campaign id in the alphabet that names and hostnames accept (lowercase, digits, '-')."""
    slug = _NAME_BAD.sub("-", _check_campaign_id(campaign_id).lower()).strip("-")
    return slug or "x"


def resource_name(campaign_id: str) -> str:
    """Name of the campaign's VPC, firewall, database cluster and registered SSH key (<= 63 chars)."""
    return _fit(f"{RESOURCE_PREFIX}-{campaign_slug(campaign_id)}", campaign_id)


def droplet_name(campaign_id: str, role: str) -> str:
    """Droplet name, which DigitalOcean also makes the droplet's hostname (one DNS label, <= 63 chars)."""
    if role not in HOST_NAMES:
        raise ValueError(f"unknown host role {role!r}; expected one of {', '.join(HOST_NAMES)}")
    base = f"{RESOURCE_PREFIX}-{campaign_slug(campaign_id)}"
    room = NAME_LIMIT - len(role) - 1
    return f"{_fit(base, campaign_id, room)}-{role}"


# --- stack outputs ---------------------------------------------------------------------------------


class HostOutput(BaseModel):
    """One droplet as exported by the Pulumi program."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    hostname: str
    public_address: str
    private_address: str
    droplet_id: int
    size: str
    ssh_user: str = "root"


class PostgresOutput(BaseModel):
    """The managed Postgres cluster's private endpoint (the password is exported separately, as a secret)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(description="private hostname, reachable only from the campaign's VPC")
    port: int
    database: str
    user: str
    sslmode: Literal["disable", "prefer", "require"] = "require"
    pgvector: bool = True
    cluster_id: str


class StackOutputs(BaseModel):
    """Everything `pulumi stack output --json --show-secrets` returns for a campaign stack."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    campaign_id: str
    provider: Literal["digitalocean"] = "digitalocean"
    region: str
    vpc_id: str
    vpc_cidr: str
    tags: list[str]
    hosts: dict[str, HostOutput]
    known_hosts: str = Field(description="OpenSSH known_hosts lines for every host's public and private address")
    postgres: PostgresOutput
    postgres_password: SecretStr
    target_ref: str | None = None
    dead_man_hours: float


def parse_stack_outputs(outputs: Mapping[str, Any]) -> StackOutputs:
    """Validate raw stack outputs; a missing or malformed key is named in the error."""
    if not isinstance(outputs, Mapping):
        raise StackOutputsError(f"stack outputs must be a JSON object, got {type(outputs).__name__}")
    if outputs.get("postgres_password") == "[secret]":
        raise StackOutputsError(
            "stack output postgres_password is redacted ('[secret]'): read the outputs with --show-secrets"
        )
    try:
        parsed = StackOutputs.model_validate(dict(outputs))
    except ValidationError as err:
        raise StackOutputsError("stack outputs are incomplete or malformed:\n"
                                + describe(err, dotted, sep="\n", prefix="  ")) from None
    missing = [h for h in HOST_NAMES if h not in parsed.hosts]
    if missing:
        raise StackOutputsError(f"stack output 'hosts' lacks: {', '.join(missing)}")
    return parsed


def inventory_from_stack_outputs(
    outputs: Mapping[str, Any], *, ssh_key: Path, known_hosts: Path, target: Target
) -> Inventory:
    """Turn the campaign stack's outputs into the gate's `Inventory` (provider `digitalocean`).

    `known_hosts` is where the caller keeps (or will write, see `write_known_hosts`) the host keys that
    the program generated; host-key checking is never turned off.
    """
    out = parse_stack_outputs(outputs)
    hosts = {
        name: Host(
            name=name,
            hostname=h.hostname,
            public_address=h.public_address,
            private_address=h.private_address,
            ssh_user=h.ssh_user,
        )
        for name, h in out.hosts.items()
        if name in HOST_NAMES
    }
    if target.git_ref is None and out.target_ref:
        target = target.model_copy(update={"git_ref": out.target_ref})
    try:
        return Inventory(
            campaign_id=out.campaign_id,
            provider="digitalocean",
            hosts=hosts,
            ssh=SshSettings(key_path=ssh_key, known_hosts=known_hosts),
            postgres=PostgresEndpoint(
                host=out.postgres.host,
                port=out.postgres.port,
                database=out.postgres.database,
                user=out.postgres.user,
                password=out.postgres_password,
                sslmode=out.postgres.sslmode,
                pgvector=out.postgres.pgvector,
            ),
            target=target,
            vpc_cidr=out.vpc_cidr,
        )
    except ValidationError as err:
        raise StackOutputsError("stack outputs do not make a valid inventory:\n"
                                + describe(err, dotted, sep="\n", prefix="  ")) from None


def known_hosts_text(outputs: Mapping[str, Any]) -> str:
    """The known_hosts lines from the outputs, checked to name every host's public address."""
    out = parse_stack_outputs(outputs)
    lines = [ln.strip() for ln in out.known_hosts.splitlines() if ln.strip()]
    named = {name.strip("[]").split("]:")[0] for ln in lines for name in ln.split()[0].split(",")}
    absent = [h.name for h in out.hosts.values() if h.public_address not in named]
    if absent:
        raise StackOutputsError(f"stack output known_hosts has no host key for: {', '.join(sorted(absent))}")
    return "\n".join(lines) + "\n"


def write_known_hosts(outputs: Mapping[str, Any], path: Path) -> Path:
    """Write the program-generated host keys to `path` (mode 0600), replacing what was there."""
    text = known_hosts_text(outputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.chmod(0o600)
    tmp.replace(path)
    return path


# --- the pulumi CLI ----------------------------------------------------------------------------------


def project_root() -> Path:
    """The folder holding Pulumi.yaml (the repository root)."""
    return Path(__file__).resolve().parents[3]


def pulumi_executable(pulumi: str = "pulumi") -> str:
    """Absolute path of the pulumi CLI, or `PulumiNotFound` with what to do about it."""
    found = shutil.which(pulumi)
    if found is None:
        raise PulumiNotFound(
            f"the pulumi CLI ({pulumi!r}) is not on PATH. Install it (https://www.pulumi.com/docs/install/), "
            "or run the gate on the lab (--infra lab), which needs no cloud account."
        )
    return found


def _stack_args(stack: str | None) -> list[str]:
    return ["--stack", stack] if stack else []


def run_pulumi(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    timeout_s: float,
    capture: bool = False,
    pulumi: str = "pulumi",
) -> subprocess.CompletedProcess[str]:
    """Run `pulumi <args>` non-interactively with a time limit; raise `PulumiFailed` on failure.

    With `capture` the output is returned (and stderr quoted in errors); otherwise it streams to the
    terminal so a long `up` shows progress.
    """
    exe = pulumi_executable(pulumi)
    argv = [exe, "--non-interactive", *args]
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd or project_root(),
            capture_output=capture,
            text=True,
            timeout=timeout_s,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise PulumiFailed(f"`pulumi {args[0]}` did not finish within {timeout_s:g} s and was stopped") from None
    if proc.returncode != 0:
        detail = (proc.stderr or "").strip()[-2000:] if capture else "(see its output above)"
        raise PulumiFailed(f"`pulumi {' '.join(args[:2])}` exited {proc.returncode}: {detail}")
    return proc


def read_stack_outputs(
    *,
    stack: str | None = None,
    cwd: Path | None = None,
    timeout_s: float = DEFAULT_PULUMI_TIMEOUT_S,
    pulumi: str = "pulumi",
) -> dict[str, Any]:
    """`pulumi stack output --json --show-secrets`, parsed. The result holds the Postgres password."""
    proc = run_pulumi(
        ["stack", "output", "--json", "--show-secrets", *_stack_args(stack)],
        cwd=cwd,
        timeout_s=timeout_s,
        capture=True,
        pulumi=pulumi,
    )
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError as err:
        raise PulumiFailed(f"`pulumi stack output --json` did not print JSON ({err.msg} at char {err.pos})") from None
    if not isinstance(data, dict):
        raise PulumiFailed(f"`pulumi stack output --json` printed a {type(data).__name__}, not an object")
    return data


def load_inventory(
    *,
    ssh_key: Path,
    known_hosts: Path,
    target: Target,
    stack: str | None = None,
    cwd: Path | None = None,
    timeout_s: float = DEFAULT_PULUMI_TIMEOUT_S,
    pulumi: str = "pulumi",
) -> Inventory:
    """What `invoke gate --infra digitalocean` calls: read the stack, write known_hosts, build the inventory."""
    outputs = read_stack_outputs(stack=stack, cwd=cwd, timeout_s=timeout_s, pulumi=pulumi)
    inventory = inventory_from_stack_outputs(outputs, ssh_key=ssh_key, known_hosts=known_hosts, target=target)
    write_known_hosts(outputs, known_hosts)
    return inventory


def stack_name_for(campaign_id: str) -> str:
    """The Pulumi stack name used for a campaign (one stack per campaign)."""
    return f"campaign-{campaign_slug(campaign_id)}"


def selected_stack(*, cwd: Path | None = None, timeout_s: float = DEFAULT_PULUMI_TIMEOUT_S,
                   pulumi: str = "pulumi") -> str:
    """The name of the project's currently selected stack (`pulumi stack --show-name`)."""
    proc = run_pulumi(["stack", "--show-name"], cwd=cwd, timeout_s=timeout_s, capture=True, pulumi=pulumi)
    name = proc.stdout.strip().splitlines()[-1].strip() if proc.stdout.strip() else ""
    if not name:
        raise PulumiFailed("`pulumi stack --show-name` printed no stack name")
    return name


def no_such_stack(err: PulumiFailed) -> bool:
    """Whether a pulumi failure only says there is no such (or no selected) stack."""
    return "no stack" in str(err).lower()


def set_stack_config(
    settings: Mapping[str, str | None],
    *,
    stack: str | None = None,
    cwd: Path | None = None,
    timeout_s: float = DEFAULT_PULUMI_TIMEOUT_S,
    pulumi: str = "pulumi",
) -> list[str]:
    """`pulumi config set shipgate:<key> <value>` for every non-None setting; returns the keys set."""
    done = []
    for key, value in settings.items():
        if value is None:
            continue
        run_pulumi(
            ["config", "set", *_stack_args(stack), f"{CONFIG_NAMESPACE}:{key}", "--", value],
            cwd=cwd,
            timeout_s=timeout_s,
            capture=True,
            pulumi=pulumi,
        )
        done.append(key)
    return done


def select_stack(
    stack: str, *, create: bool = True, cwd: Path | None = None, timeout_s: float = DEFAULT_PULUMI_TIMEOUT_S,
    pulumi: str = "pulumi",
) -> None:
    """`pulumi stack select [--create] <stack>`."""
    run_pulumi(
        ["stack", "select", *(["--create"] if create else []), stack],
        cwd=cwd,
        timeout_s=timeout_s,
        capture=True,
        pulumi=pulumi,
    )


def pulumi_up(
    *, stack: str | None = None, cwd: Path | None = None, timeout_s: float = 3600.0, pulumi: str = "pulumi"
) -> None:
    """`pulumi up --yes --skip-preview` (the managed Postgres alone takes several minutes)."""
    run_pulumi(["up", "--yes", "--skip-preview", *_stack_args(stack)], cwd=cwd, timeout_s=timeout_s, pulumi=pulumi)


def pulumi_destroy(
    *, stack: str | None = None, cwd: Path | None = None, timeout_s: float = 3600.0, pulumi: str = "pulumi"
) -> None:
    """`pulumi destroy --yes --skip-preview`."""
    run_pulumi(
        ["destroy", "--yes", "--skip-preview", *_stack_args(stack)], cwd=cwd, timeout_s=timeout_s, pulumi=pulumi
    )
