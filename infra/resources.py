"""The campaign's DigitalOcean resources and the stack outputs the gate turns into an `Inventory`.

One VPC per campaign holds three peer droplets, a chaos client and a managed Postgres. The cloud
firewall admits 9077 (federation) only from the VPC range and 22 only from the operator's CIDRs; the
database firewall admits only the campaign's droplets. Every resource that DigitalOcean can tag
carries `ai-memory`, `ship-gate` and `campaign-<id>`; the others (VPC, firewall, SSH key) are named
`shipgate-<id>` so the janitor finds them too.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_digitalocean as do
import pulumi_tls as tls

from infra.cloud_init import render_user_data
from infra.config import StackConfig
from shipgate.hosts.inventory import FEDERATION_PORT, HOST_NAMES, PEER_NAMES
from shipgate.providers.digitalocean.stack import SHARED_TAGS, droplet_name, resource_name

POSTGRES_ENGINE = "pg"
ALL_IPV4 = "0.0.0.0/0"
ALL_IPV6 = "::/0"


@dataclass
class Campaign:
    """Handles on everything the program declared (the tests inspect these)."""

    config: StackConfig
    tag: do.Tag
    vpc: do.Vpc
    ssh_key_fingerprint: pulumi.Output[str]
    ssh_key: do.SshKey | None
    host_keys: dict[str, tls.PrivateKey]
    droplets: dict[str, do.Droplet]
    firewall: do.Firewall
    database: do.DatabaseCluster
    database_db: do.DatabaseDb
    database_firewall: do.DatabaseFirewall


def _size(cfg: StackConfig, role: str) -> str:
    return cfg.peer_size if role in PEER_NAMES else cfg.chaos_size


def build(cfg: StackConfig) -> Campaign:
    """Declare every resource of one campaign."""
    name = resource_name(cfg.campaign_id)
    tag = do.Tag("campaign-tag", name=cfg.tag)
    tags = [*SHARED_TAGS, tag.name]

    vpc = do.Vpc(
        "vpc",
        name=name,
        region=cfg.region,
        ip_range=cfg.vpc_cidr,
        description=f"ai-memory ship-gate campaign {cfg.campaign_id}",
    )

    ssh_key: do.SshKey | None = None
    if cfg.ssh_public_key:
        ssh_key = do.SshKey("operator-key", name=name, public_key=cfg.ssh_public_key)
        fingerprint = ssh_key.fingerprint
    else:
        fingerprint = pulumi.Output.from_input(cfg.ssh_key_fingerprint or "")

    host_keys: dict[str, tls.PrivateKey] = {}
    droplets: dict[str, do.Droplet] = {}
    for role in HOST_NAMES:
        hostname = droplet_name(cfg.campaign_id, role)
        key = tls.PrivateKey(f"{role}-host-key", algorithm="ED25519")
        user_data = pulumi.Output.secret(
            pulumi.Output.all(key.private_key_openssh, key.public_key_openssh).apply(
                lambda pair, hostname=hostname: render_user_data(
                    hostname=hostname,
                    dead_man_minutes=cfg.dead_man_minutes,
                    host_key_private=pair[0],
                    host_key_public=pair[1],
                )
            )
        )
        host_keys[role] = key
        droplets[role] = do.Droplet(
            role,
            name=hostname,
            region=cfg.region,
            size=_size(cfg, role),
            image=cfg.image,
            vpc_uuid=vpc.id,
            ssh_keys=[fingerprint],
            tags=tags,
            user_data=user_data,
            ipv6=False,
            monitoring=False,
            backups=False,
            graceful_shutdown=False,
            opts=pulumi.ResourceOptions(delete_before_replace=True),
        )

    droplet_ids = [d.id.apply(int) for d in droplets.values()]
    firewall = do.Firewall(
        "firewall",
        name=name,
        droplet_ids=droplet_ids,
        inbound_rules=[
            do.FirewallInboundRuleArgs(
                protocol="tcp", port_range=str(FEDERATION_PORT), source_addresses=[cfg.vpc_cidr]
            ),
            do.FirewallInboundRuleArgs(protocol="tcp", port_range="22", source_addresses=list(cfg.operator_cidrs)),
        ],
        outbound_rules=[
            do.FirewallOutboundRuleArgs(protocol="tcp", port_range="1-65535", destination_addresses=[ALL_IPV4, ALL_IPV6]),
            do.FirewallOutboundRuleArgs(protocol="udp", port_range="1-65535", destination_addresses=[ALL_IPV4, ALL_IPV6]),
            do.FirewallOutboundRuleArgs(protocol="icmp", destination_addresses=[ALL_IPV4, ALL_IPV6]),
        ],
    )

    database = do.DatabaseCluster(
        "postgres",
        name=name,
        engine=POSTGRES_ENGINE,
        version=cfg.postgres_version,
        size=cfg.db_size,
        region=cfg.region,
        node_count=1,
        private_network_uuid=vpc.id,
        tags=tags,
    )
    database_db = do.DatabaseDb("postgres-db", cluster_id=database.id, name=cfg.database_name)
    database_firewall = do.DatabaseFirewall(
        "postgres-firewall",
        cluster_id=database.id,
        rules=[do.DatabaseFirewallRuleArgs(type="droplet", value=d.id) for d in droplets.values()],
    )
    return Campaign(
        config=cfg,
        tag=tag,
        vpc=vpc,
        ssh_key_fingerprint=fingerprint,
        ssh_key=ssh_key,
        host_keys=host_keys,
        droplets=droplets,
        firewall=firewall,
        database=database,
        database_db=database_db,
        database_firewall=database_firewall,
    )


def _known_hosts(c: Campaign) -> pulumi.Output[str]:
    """known_hosts lines: each host's public and private address with the key the program generated."""
    parts = []
    for role, d in c.droplets.items():
        parts.append(
            pulumi.Output.all(d.ipv4_address, d.ipv4_address_private, c.host_keys[role].public_key_openssh).apply(
                lambda v: f"{v[0]},{v[1]} {' '.join(v[2].split()[:2])}"
            )
        )
    return pulumi.Output.all(*parts).apply(lambda lines: "\n".join(lines) + "\n")


def stack_outputs(c: Campaign) -> dict[str, object]:
    """The exports; `shipgate.providers.digitalocean.stack.StackOutputs` is their schema (a test checks they agree)."""
    cfg = c.config
    hosts = {
        role: {
            "name": role,
            "hostname": d.name,
            "public_address": d.ipv4_address,
            "private_address": d.ipv4_address_private,
            "droplet_id": d.id.apply(int),
            "size": d.size,
            "ssh_user": "root",
        }
        for role, d in c.droplets.items()
    }
    return {
        "campaign_id": cfg.campaign_id,
        "provider": "digitalocean",
        "region": cfg.region,
        "vpc_id": c.vpc.id,
        "vpc_cidr": c.vpc.ip_range,
        "tags": [*SHARED_TAGS, c.tag.name],
        "hosts": hosts,
        "known_hosts": _known_hosts(c),
        "postgres": {
            "host": c.database.private_host,
            "port": c.database.port,
            "database": c.database_db.name,
            "user": c.database.user,
            "sslmode": "require",
            "pgvector": True,
            "cluster_id": c.database.id,
        },
        "postgres_password": pulumi.Output.secret(c.database.password),
        "target_ref": cfg.target_ref,
        "dead_man_hours": cfg.dead_man_hours,
    }
