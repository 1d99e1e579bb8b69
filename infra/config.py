"""Typed stack configuration for the DigitalOcean program, validated before any resource is declared.

Keys live in the `shipgate:` namespace (`pulumi config set shipgate:operatorCidrs 198.51.100.7/32`).
A bad value stops `pulumi up` with a message naming the key, not a provider error ten minutes later.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shipgate.hosts.inventory import CAMPAIGN_ID_RE
from shipgate.providers.digitalocean.stack import CONFIG_NAMESPACE, campaign_tag

PRIVATE_V4 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_REGION = re.compile(r"^[a-z]{3}[0-9]$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_FINGERPRINT = re.compile(r"^([0-9a-f]{2}:){15}[0-9a-f]{2}$|^SHA256:[A-Za-z0-9+/=]{43,44}$")
_PUBKEY = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]{40,}( \S.*)?$")


class StackConfigError(ValueError):
    """Raised with one line per bad key (`shipgate:<key>: <why>`)."""


class StackConfig(BaseModel):
    """Everything the program needs; the field aliases are the `shipgate:` config keys."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    campaign_id: str = Field(alias="campaignId", description="campaign id; tags and names derive from it")
    region: str = Field("nyc3", description="DigitalOcean region slug")
    peer_size: str = Field("s-2vcpu-4gb", alias="peerSize", description="droplet size of node-a/b/c")
    chaos_size: str = Field("s-1vcpu-2gb", alias="chaosSize", description="droplet size of the chaos client")
    image: str = Field("ubuntu-24-04-x64", description="droplet image slug")
    db_size: str = Field("db-s-1vcpu-1gb", alias="dbSize", description="managed Postgres size (smallest)")
    postgres_version: str = Field("16", alias="postgresVersion", description="managed Postgres major version")
    database_name: str = Field("shipgate", alias="databaseName", description="database the migration phase uses")
    vpc_cidr: str = Field("10.250.0.0/20", alias="vpcCidr", description="the campaign VPC's private range")
    operator_cidrs: list[str] = Field(
        alias="operatorCidrs", min_length=1, description="who may reach port 22 (required; no world-open default)"
    )
    allow_world_ssh: bool = Field(
        False, alias="allowWorldSsh", description="explicitly accept 0.0.0.0/0 or ::/0 in operatorCidrs"
    )
    ssh_key_fingerprint: str | None = Field(
        None, alias="sshKeyFingerprint", description="an SSH key already registered with DigitalOcean"
    )
    ssh_public_key: str | None = Field(
        None, alias="sshPublicKey", description="an OpenSSH public key to register for this campaign"
    )
    dead_man_hours: float = Field(8.0, alias="deadManHours", gt=0, le=72, description="power off after this long")
    target_ref: str | None = Field(None, alias="targetRef", description="the ai-memory ref under test (recorded)")

    @field_validator("campaign_id")
    @classmethod
    def _campaign(cls, v: str) -> str:
        if not CAMPAIGN_ID_RE.match(v):
            raise ValueError(
                f"{v!r} must be 1-63 chars of lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        return v

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        if not _REGION.match(v):
            raise ValueError(f"{v!r} is not a DigitalOcean region slug (like nyc3, fra1, sfo3)")
        return v

    @field_validator("peer_size", "chaos_size", "db_size", "image")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not _SLUG.match(v):
            raise ValueError(f"{v!r} is not a DigitalOcean slug (lowercase letters, digits and '-')")
        return v

    @field_validator("postgres_version", mode="before")
    @classmethod
    def _pg_version(cls, v: str | int) -> str:
        v = str(v)
        if not v.isdigit() or not 13 <= int(v) <= 18:
            raise ValueError(f"{v!r} is not a managed Postgres major version (13..18); pgvector needs one of these")
        return v

    @field_validator("database_name")
    @classmethod
    def _dbname(cls, v: str) -> str:
        if not re.match(r"^[a-z_][a-z0-9_]{0,62}$", v):
            raise ValueError(f"{v!r} must be a plain lowercase SQL identifier")
        return v

    @field_validator("vpc_cidr")
    @classmethod
    def _vpc(cls, v: str) -> str:
        try:
            net = ipaddress.ip_network(v, strict=True)
        except ValueError as err:
            raise ValueError(f"{v!r} is not a network in CIDR notation ({err})") from None
        if net.version != 4 or not any(net.subnet_of(p) for p in PRIVATE_V4):
            raise ValueError(f"{v} must be an RFC 1918 private IPv4 range (10/8, 172.16/12, 192.168/16)")
        if not 16 <= net.prefixlen <= 28:
            raise ValueError(f"{v}: DigitalOcean VPCs must be between /16 and /28")
        return str(net)

    @field_validator("operator_cidrs", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [part.strip() for part in v.replace(" ", ",").split(",") if part.strip()]
        return v

    @field_validator("operator_cidrs")
    @classmethod
    def _operators(cls, v: list[str]) -> list[str]:
        nets = []
        for raw in v:
            try:
                nets.append(str(ipaddress.ip_network(raw, strict=False)))
            except ValueError:
                raise ValueError(f"{raw!r} is not an address or network in CIDR notation (e.g. 198.51.100.7/32)") from None
        return nets

    @field_validator("ssh_key_fingerprint")
    @classmethod
    def _fp(cls, v: str | None) -> str | None:
        if v is not None and not _FINGERPRINT.match(v.strip()):
            raise ValueError(f"{v!r} is not an SSH key fingerprint (MD5 aa:bb:..:ff, as DigitalOcean shows it)")
        return v.strip() if v else v

    @field_validator("ssh_public_key")
    @classmethod
    def _pub(cls, v: str | None) -> str | None:
        if v is None:
            return v
        v = v.strip()
        if "PRIVATE KEY" in v:
            raise ValueError("this is a private key; give the public key (the .pub file) instead")
        if not _PUBKEY.match(v):
            raise ValueError("not an OpenSSH public key line (expected 'ssh-ed25519 AAAA... comment')")
        return v

    @model_validator(mode="after")
    def _cross(self) -> StackConfig:
        world = [n for n in self.operator_cidrs if ipaddress.ip_network(n).prefixlen == 0]
        if world and not self.allow_world_ssh:
            raise ValueError(
                f"operatorCidrs contains {', '.join(world)}, which opens SSH to the whole internet; give your own "
                "address (e.g. 198.51.100.7/32), or set shipgate:allowWorldSsh true if you really mean it"
            )
        if (self.ssh_key_fingerprint is None) == (self.ssh_public_key is None):
            raise ValueError("set exactly one of shipgate:sshKeyFingerprint or shipgate:sshPublicKey")
        return self

    @property
    def tag(self) -> str:
        """This campaign's own tag."""
        return campaign_tag(self.campaign_id)

    @property
    def dead_man_minutes(self) -> int:
        """The dead-man delay in whole minutes, rounded up (what `shutdown -P +M` takes)."""
        return max(1, math.ceil(round(self.dead_man_hours * 3600) / 60))


FIELD_KEYS: tuple[str, ...] = tuple(f.alias or n for n, f in StackConfig.model_fields.items())


def parse_stack_config(raw: Mapping[str, Any]) -> StackConfig:
    """Validate raw config (keys as in `shipgate:<key>`); every problem is reported at once, by key."""
    unknown = sorted(set(raw) - set(FIELD_KEYS) - set(StackConfig.model_fields))
    try:
        cfg = StackConfig.model_validate({k: v for k, v in raw.items() if v is not None})
    except ValidationError as err:
        lines = []
        for e in err.errors():
            key = ".".join(str(p) for p in e["loc"]) or "(config)"
            msg = e["msg"].removeprefix("Value error, ")
            lines.append(f"  {CONFIG_NAMESPACE}:{key}: {msg}" if e["loc"] else f"  {msg}")
        lines += [f"  {CONFIG_NAMESPACE}:{k}: not a known key" for k in unknown if k]
        raise StackConfigError("invalid stack configuration:\n" + "\n".join(dict.fromkeys(lines))) from None
    if unknown:
        raise StackConfigError(
            "invalid stack configuration:\n" + "\n".join(f"  {CONFIG_NAMESPACE}:{k}: not a known key" for k in unknown)
        )
    return cfg


def load_stack_config(get: Callable[[str], str | None]) -> StackConfig:
    """Read every known key with `get` (e.g. `pulumi.Config("shipgate").get`) and validate.

    `operatorCidrs` may be a comma-separated string or a JSON list (`--path shipgate:operatorCidrs[0]`).
    """
    raw: dict[str, Any] = {}
    for key in FIELD_KEYS:
        value = get(key)
        if value is None:
            continue
        if key == "operatorCidrs" and value.lstrip().startswith("["):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise StackConfigError(f"invalid stack configuration:\n  {CONFIG_NAMESPACE}:operatorCidrs: not valid JSON") from None
        raw[key] = value
    return parse_stack_config(raw)
