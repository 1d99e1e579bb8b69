"""Names, addresses and paths of one lab, all derived from its name (and an allocated subnet slot).

Everything a teardown must find is a pure function of the lab name, so `down` works without a state
file: the namespaces are `<name>-<role>`, the root-side links `<name>-<code>-p|v` and the bridges
`<name>-pub|vpc`. Names are restricted so that no two labs can produce the same link or namespace name
and every interface name stays within the kernel's 15 characters.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from shipgate.hosts.inventory import HOST_NAMES

LAB_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,7}$")
ROLES: tuple[str, ...] = (*HOST_NAMES, "pg")
CODES: dict[str, str] = {"node-a": "a", "node-b": "b", "node-c": "c", "chaos": "x", "pg": "pg"}
OCTETS: dict[str, int] = {"node-a": 11, "node-b": 12, "node-c": 13, "chaos": 14, "pg": 20}
OPERATOR_OCTET = 1
SLOTS = 240
PG_PORT = 5432
# Inside a host namespace the two interfaces have fixed names (each namespace has its own name space).
PUBLIC_IF = "pub0"
VPC_IF = "vpc0"
FIREWALL_TAG = "shipgate-lab"


class LabNameError(ValueError):
    """A lab name that could collide with another lab's resources or overflow an interface name."""


def check_name(name: str) -> str:
    if not LAB_NAME_RE.match(name or ""):
        raise LabNameError(
            f"lab name {name!r} must be 1-8 characters: a lowercase letter, then lowercase letters or digits "
            "(no '-': names derive namespace and interface names that must never collide between labs)"
        )
    return name


def base_dir() -> Path:
    """Where labs keep their files; one directory per lab (override with SHIPGATE_LAB_DIR)."""
    return Path(os.environ.get("SHIPGATE_LAB_DIR", "/tmp/shipgate-lab"))


def preferred_slot(name: str) -> int:
    """Deterministic first choice of subnet slot, so a lab usually gets the same addresses every time."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") % SLOTS


def public_cidr(slot: int) -> str:
    return f"10.251.{slot}.0/24"


def vpc_cidr(slot: int) -> str:
    return f"10.250.{slot}.0/24"


@dataclass(frozen=True)
class HostLayout:
    """One host of the lab: its namespace, addresses and files."""

    lab: str
    role: str
    slot: int
    dir: Path
    sshd_dir: Path

    @property
    def netns(self) -> str:
        return f"{self.lab}-{self.role}"

    @property
    def hostname(self) -> str:
        return f"{self.lab}-{self.role}"

    @property
    def public_address(self) -> str:
        return f"10.251.{self.slot}.{OCTETS[self.role]}"

    @property
    def private_address(self) -> str:
        return f"10.250.{self.slot}.{OCTETS[self.role]}"

    @property
    def veth_public(self) -> str:
        return f"{self.lab}-{CODES[self.role]}-p"

    @property
    def veth_private(self) -> str:
        return f"{self.lab}-{CODES[self.role]}-v"

    @property
    def bin_dir(self) -> Path:
        return self.dir / "bin"

    @property
    def db_path(self) -> Path:
        return self.dir / "ai-memory.db"

    @property
    def host_key(self) -> Path:
        return self.sshd_dir / "ssh_host_ed25519_key"

    @property
    def sshd_config(self) -> Path:
        return self.sshd_dir / "sshd_config"

    @property
    def pidfile(self) -> Path:
        """Root-namespace PID of the host's `unshare` process (written before it execs)."""
        return self.sshd_dir / "host.pid"

    @property
    def boot_log(self) -> Path:
        return self.sshd_dir / "boot.log"


@dataclass(frozen=True)
class LabLayout:
    """The whole lab. Teardown uses only the slot-independent names (namespaces, links, files)."""

    name: str
    slot: int = 0

    def __post_init__(self) -> None:
        check_name(self.name)

    @property
    def dir(self) -> Path:
        return base_dir() / self.name

    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    @property
    def ssh_dir(self) -> Path:
        return self.dir / "ssh"

    @property
    def operator_key(self) -> Path:
        return self.ssh_dir / "id_ed25519"

    @property
    def authorized_keys(self) -> Path:
        return self.ssh_dir / "authorized_keys"

    @property
    def known_hosts(self) -> Path:
        return self.ssh_dir / "known_hosts"

    @property
    def empty_file(self) -> Path:
        """Bound over root's ~/.bashrc inside each host so SSH commands carry no login-shell noise."""
        return self.dir / "empty"

    @property
    def target_dir(self) -> Path:
        return self.dir / "target"

    @property
    def pg_data(self) -> Path:
        return self.host("pg").dir / "postgres"

    @property
    def bridge_public(self) -> str:
        return f"{self.name}-pub"

    @property
    def bridge_private(self) -> str:
        return f"{self.name}-vpc"

    @property
    def public_cidr(self) -> str:
        return public_cidr(self.slot)

    @property
    def vpc_cidr(self) -> str:
        return vpc_cidr(self.slot)

    @property
    def operator_address(self) -> str:
        """The root namespace's address on the public bridge: where the operator's SSH comes from."""
        return f"10.251.{self.slot}.{OPERATOR_OCTET}"

    @property
    def public_prefix(self) -> int:
        return ipaddress.ip_network(self.public_cidr).prefixlen

    def host(self, role: str) -> HostLayout:
        return HostLayout(lab=self.name, role=role, slot=self.slot, dir=self.dir / "hosts" / role,
                          sshd_dir=self.dir / "sshd" / role)

    def hosts(self) -> list[HostLayout]:
        return [self.host(r) for r in ROLES]

    def namespaces(self) -> list[str]:
        return [self.host(r).netns for r in ROLES]

    def links(self) -> list[str]:
        """Every root-namespace link the lab may create (veths first, then bridges)."""
        out: list[str] = []
        for h in self.hosts():
            out += [h.veth_public, h.veth_private]
        return [*out, self.bridge_public, self.bridge_private]
