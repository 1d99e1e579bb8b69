"""Pydantic models of the lab: its state file, teardown report and status."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class LabState(BaseModel):
    """What `up` recorded (root-only file in the lab directory; it holds the Postgres password)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    slot: int
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    host_pids: dict[str, int] = Field(description="root-namespace PID of each host's `unshare` process")
    postgres_pid: int | None = None
    inventory: dict[str, Any] = Field(description="the Inventory as JSON, with the Postgres password")
    warnings: list[str] = Field(default_factory=list)


class Teardown(BaseModel):
    """What `down` removed, and anything it could not remove (empty `leftovers` means clean)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    had_state: bool
    killed_pids: list[int] = Field(default_factory=list)
    namespaces: list[str] = Field(default_factory=list)
    links: list[str] = Field(default_factory=list)
    iptables_rules: list[str] = Field(default_factory=list)
    removed_dir: str | None = None
    leftovers: list[str] = Field(default_factory=list)
    duration_s: float = 0.0

    @property
    def clean(self) -> bool:
        return not self.leftovers


class HostStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    netns: bool
    public_address: str | None = None
    private_address: str | None = None
    sshd_pid: int | None = Field(None, description="root-namespace PID of the host's sshd (PID 1 inside it)")
    ssh_ok: bool = False
    hostname: str | None = None
    serve_pids: list[int] = Field(default_factory=list, description="`ai-memory serve` PIDs inside the host")
    serve_health: str | None = Field(None, description="body of GET /api/v1/health when serve runs")
    error: str | None = None


class LabStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    state_file: bool
    hosts: list[HostStatus] = Field(default_factory=list)
    postgres_ready: bool = False
    postgres_error: str | None = None
    target_version: str | None = None

    @property
    def up(self) -> bool:
        return self.state_file and bool(self.hosts) and all(h.netns for h in self.hosts)

    @property
    def healthy(self) -> bool:
        return self.up and all(h.ssh_ok for h in self.hosts) and self.postgres_ready
