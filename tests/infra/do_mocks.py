"""Pulumi mocks for the DigitalOcean program: no CLI, no plugins, no network.

The mocks answer like the providers would: numeric droplet ids (Firewall.droplet_ids takes ints),
public addresses from TEST-NET-3, private addresses inside the VPC's range, a managed Postgres with
its private host and password, and real ed25519 keys for `tls.PrivateKey` (so the known_hosts the
program exports can be checked against the private key it puts in the user data).
"""

from __future__ import annotations

import ipaddress
import itertools
from dataclasses import dataclass, field
from typing import Any

import pulumi
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

OPERATOR_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGf0sA2qFwjq4b9A0s7oC9k3mQq7nqv3uHk8fHc2yZbM operator@example"
)
BASE_CONFIG: dict[str, Any] = {
    "campaignId": "rc-0.7.0.r1",
    "operatorCidrs": "198.51.100.7/32",
    "sshPublicKey": OPERATOR_KEY,
    "targetRef": "v0.7.0-rc1",
}


@dataclass
class Recorded:
    typ: str
    name: str
    inputs: dict[str, Any]
    state: dict[str, Any]


@dataclass
class DoMocks(pulumi.runtime.Mocks):
    """Records every resource and fills in the outputs DigitalOcean (or pulumi-tls) would compute."""

    resources: list[Recorded] = field(default_factory=list)
    vpc_ranges: dict[str, str] = field(default_factory=dict)
    private_keys: dict[str, Ed25519PrivateKey] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(470_000_001))
    _hosts: itertools.count = field(default_factory=lambda: itertools.count(10))

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        state = dict(args.inputs)
        typ = args.typ
        if typ == "digitalocean:index/vpc:Vpc":
            rid = f"5f2b1c1e-0000-4000-8000-{len(self.vpc_ranges):012d}"
            self.vpc_ranges[rid] = state["ipRange"]
            state["urn"] = f"do:vpc:{rid}"
        elif typ == "digitalocean:index/droplet:Droplet":
            rid = str(next(self._ids))
            n = next(self._hosts)
            net = ipaddress.ip_network(self.vpc_ranges[state["vpcUuid"]])
            state.update(
                ipv4Address=f"203.0.113.{n}",
                ipv4AddressPrivate=str(net.network_address + n),
                status="active",
                urn=f"do:droplet:{rid}",
            )
        elif typ == "digitalocean:index/databaseCluster:DatabaseCluster":
            rid = "9a8b7c6d-0000-4000-8000-000000000001"
            state.update(
                host=f"{state['name']}-do-user-1.db.ondigitalocean.com",
                privateHost=f"private-{state['name']}-do-user-1.db.ondigitalocean.com",
                port=25060,
                user="doadmin",
                password="mock-Pa55word",
                database="defaultdb",
                urn=f"do:dbaas:{rid}",
            )
        elif typ == "digitalocean:index/sshKey:SshKey":
            rid = "41000001"
            state["fingerprint"] = "3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa"
        elif typ == "tls:index/privateKey:PrivateKey":
            rid = f"tls-{args.name}"
            key = Ed25519PrivateKey.generate()
            self.private_keys[args.name] = key
            state.update(
                privateKeyOpenssh=key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
                ).decode(),
                publicKeyOpenssh=key.public_key()
                .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
                .decode()
                + "\n",
            )
        else:
            rid = f"{args.name}-id"
        self.resources.append(Recorded(typ, args.name, dict(args.inputs), state))
        return rid, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        return {}

    def of_type(self, suffix: str) -> list[Recorded]:
        """Recorded resources whose type token ends with `suffix` (e.g. ':Droplet')."""
        return [r for r in self.resources if r.typ.endswith(suffix)]
