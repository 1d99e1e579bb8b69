"""The inventory: everything a campaign needs to know about the hosts it runs on.

Both providers (the lab and DigitalOcean) produce this one model, so phases never learn which
provider made the hosts. Secrets are `SecretStr` and are redacted whenever the inventory is
written to disk.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from shipgate.target.capabilities import Capabilities

PEER_NAMES: tuple[str, ...] = ("node-a", "node-b", "node-c")
HOST_NAMES: tuple[str, ...] = (*PEER_NAMES, "chaos")
CAMPAIGN_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
FEDERATION_PORT = 9077


class Host(BaseModel):
    """One machine: reached by the operator on `public_address`, by its peers on `private_address`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="logical role: node-a, node-b, node-c or chaos")
    hostname: str = Field(description="the host's own hostname (what `hostname` prints on it)")
    public_address: str = Field(description="address the operator's SSH reaches")
    private_address: str = Field(description="VPC address the other hosts reach")
    ssh_port: int = 22
    ssh_user: str = "root"


class SshSettings(BaseModel):
    """How the operator authenticates; host keys are always checked against `known_hosts`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_path: Path = Field(description="private key file (its contents never leave the operator machine)")
    known_hosts: Path = Field(description="known_hosts file with every host's key; no auto-accept")
    connect_timeout_s: float = 10.0
    command_timeout_s: float = 120.0


class PostgresEndpoint(BaseModel):
    """The Postgres the migration phase writes to; reachable only from the VPC."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(description="private address (or managed-database host) as seen from the peers")
    port: int = 5432
    database: str
    user: str
    password: SecretStr
    sslmode: Literal["disable", "prefer", "require"] = "disable"
    pgvector: bool = Field(True, description="whether `CREATE EXTENSION vector` is available")

    def dsn(self) -> SecretStr:
        """The URL the target's `migrate` takes (postgres://user:pass@host:port/db)."""
        pw = quote(self.password.get_secret_value(), safe="")
        suffix = "" if self.sslmode == "disable" else f"?sslmode={self.sslmode}"
        return SecretStr(f"postgres://{quote(self.user, safe='')}:{pw}@{self.host}:{self.port}/{self.database}{suffix}")

    def redacted_dsn(self) -> str:
        suffix = "" if self.sslmode == "disable" else f"?sslmode={self.sslmode}"
        return f"postgres://{self.user}:***@{self.host}:{self.port}/{self.database}{suffix}"


TargetKind = Literal["refpeer", "binary", "release"]


class Target(BaseModel):
    """The program under test: the bundled reference peer, a real `ai-memory` binary given by path, or a
    named real release (`ai-memory@X.Y.Z`, installed by the gate; its installer is not built yet)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: TargetKind
    path: Path = Field(description="operator-side path of what gets installed as `ai-memory` on the hosts")
    version: str | None = Field(None, description="`ai-memory --version` as read back from a host after install")
    git_ref: str | None = Field(None, description="the release candidate's git ref or commit, when known")
    defects: list[str] = Field(default_factory=list, description="seeded reference-peer defects switched on")
    capabilities: Capabilities | None = Field(
        None, description="what the binary's own --help says it can do, probed on node-a at install")
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$",
                               description="sha256 of the file installed as `ai-memory` (binary and release kinds)")
    release: str | None = Field(None, description="the release asked for by name, e.g. ai-memory@0.6.3")
    commit: str | None = Field(None, description="the commit the binary was built from (build provenance)")


def file_sha256(path: Path) -> str:
    """Content hash of a target file: two paths, or one path rebuilt, are the same target only when equal."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Inventory(BaseModel):
    """What a campaign runs against. Written (secrets redacted) to runs/<id>/inventory.json."""

    model_config = ConfigDict(extra="forbid")

    campaign_id: str
    provider: Literal["lab", "digitalocean"]
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    hosts: dict[str, Host]
    ssh: SshSettings
    postgres: PostgresEndpoint
    target: Target
    federation_port: int = FEDERATION_PORT
    vpc_cidr: str = Field(description="the private network every host's private address is in")

    @field_validator("campaign_id")
    @classmethod
    def _campaign_id(cls, v: str) -> str:
        if not CAMPAIGN_ID_RE.match(v):
            raise ValueError(
                f"campaign id {v!r} must be 1-63 chars of lowercase letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        return v

    @model_validator(mode="after")
    def _all_hosts(self) -> Inventory:
        missing = [h for h in HOST_NAMES if h not in self.hosts]
        if missing:
            raise ValueError(f"inventory lacks hosts: {', '.join(missing)}")
        for key, host in self.hosts.items():
            if host.name != key:
                raise ValueError(f"host entry {key!r} names itself {host.name!r}")
        return self

    @property
    def peers(self) -> list[Host]:
        return [self.hosts[n] for n in PEER_NAMES]

    @property
    def chaos(self) -> Host:
        return self.hosts["chaos"]

    def peer_url(self, name: str) -> str:
        """Federation base URL of a peer, by private address (what other hosts use)."""
        return f"http://{self.hosts[name].private_address}:{self.federation_port}"

    def redacted(self) -> dict:
        """JSON-ready dict with every secret replaced; safe for runs/ and logs."""
        data = self.model_dump(mode="json")
        data["postgres"]["password"] = "***"
        data["postgres"]["dsn"] = self.postgres.redacted_dsn()
        return data
