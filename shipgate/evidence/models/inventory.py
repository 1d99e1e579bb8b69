"""inventory.json: the Inventory as written to a run folder, secrets redacted."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator

from shipgate.evidence.models.common import REDACTED, ArtifactModel, redact_url
from shipgate.hosts.inventory import CAMPAIGN_ID_RE, FEDERATION_PORT, Host, Inventory, SshSettings, Target


class RedactedPostgres(ArtifactModel):
    """The Postgres endpoint without its password: the password field can only hold '***'."""

    host: str
    port: int = 5432
    database: str
    user: str
    password: Literal["***"] = REDACTED
    sslmode: Literal["disable", "prefer", "require"] = "disable"
    pgvector: bool = True
    dsn: str = Field(description="the URL with its password replaced by ***")

    @field_validator("dsn", mode="after")
    @classmethod
    def _redact(cls, v: str) -> str:
        return redact_url(v)


class InventoryRecord(ArtifactModel):
    """What `Inventory.redacted()` writes; re-readable without any secret."""

    campaign_id: str = Field(pattern=CAMPAIGN_ID_RE.pattern)
    provider: Literal["lab", "digitalocean"]
    created_at: datetime
    hosts: dict[str, Host]
    ssh: SshSettings
    postgres: RedactedPostgres
    target: Target
    federation_port: int = FEDERATION_PORT
    vpc_cidr: str

    @classmethod
    def from_inventory(cls, inventory: Inventory) -> InventoryRecord:
        return cls.model_validate(inventory.redacted())
