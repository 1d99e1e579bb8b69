"""The DigitalOcean Pulumi program under Pulumi's own mocks (offline, ~1 s).

Each test returns an Output (or an Output-dependent value) so that a failing assertion inside
`.apply` fails the test instead of passing silently.
"""

from __future__ import annotations

import ipaddress
import json
import runpy
from pathlib import Path

import paramiko
import pulumi
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from do_mocks import BASE_CONFIG, DoMocks

from infra.config import StackConfigError, parse_stack_config
from infra.resources import Campaign, build, stack_outputs
from shipgate.hosts.inventory import FEDERATION_PORT, HOST_NAMES, PEER_NAMES, Target
from shipgate.providers.digitalocean.stack import StackOutputs, inventory_from_stack_outputs, known_hosts_text

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGN_TAG = "campaign-rc-0-7-0-r1"


def _campaign(**over) -> Campaign:
    return build(parse_stack_config({**BASE_CONFIG, **over}))


def _settled(c: Campaign) -> pulumi.Output:
    """An Output that resolves only once every resource of the campaign has been registered."""
    ids = [
        c.tag.id, c.vpc.id, c.firewall.id, c.database.id, c.database_db.id, c.database_firewall.id,
        *(d.id for d in c.droplets.values()), *(k.id for k in c.host_keys.values()),
    ]
    if c.ssh_key is not None:
        ids.append(c.ssh_key.id)
    return pulumi.Output.all(*ids)


SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"  # Pulumi's wire marker for a secret value


def _secret_value(v: object) -> str:
    """The plain value of an input that must have been sent as a Pulumi secret."""
    assert isinstance(v, dict) and SECRET_SIG in v.values(), "expected a Pulumi secret"
    return v["value"]


def _covers(port_range: str | None, port: int) -> bool:
    if not port_range or port_range in ("all", "0"):
        return True
    lo, _, hi = port_range.partition("-")
    return int(lo) <= port <= int(hi or lo)


@pulumi.runtime.test
def test_resource_counts_and_sizes(mocks: DoMocks):
    c = _campaign()

    def check(_):
        droplets = mocks.of_type(":Droplet")
        assert sorted(d.name for d in droplets) == sorted(HOST_NAMES)
        sizes = {d.name: d.inputs["size"] for d in droplets}
        assert sizes == {"node-a": "s-2vcpu-4gb", "node-b": "s-2vcpu-4gb", "node-c": "s-2vcpu-4gb",
                         "chaos": "s-1vcpu-2gb"}
        assert {d.inputs["image"] for d in droplets} == {"ubuntu-24-04-x64"}
        assert {d.inputs["region"] for d in droplets} == {"nyc3"}
        assert len(mocks.of_type(":Vpc")) == 1
        assert len(mocks.of_type("firewall:Firewall")) == 1
        assert len(mocks.of_type(":DatabaseFirewall")) == 1
        assert len(mocks.of_type(":SshKey")) == 1
        assert len(mocks.of_type("privateKey:PrivateKey")) == 4
        (db,) = mocks.of_type(":DatabaseCluster")
        assert (db.inputs["engine"], db.inputs["version"], db.inputs["size"], db.inputs["nodeCount"]) == (
            "pg", "16", "db-s-1vcpu-1gb", 1)
        (dbdb,) = mocks.of_type(":DatabaseDb")
        assert dbdb.inputs["name"] == "shipgate"
        assert len(mocks.resources) == 1 + 1 + 1 + 4 + 4 + 1 + 1 + 1 + 1  # tag vpc key hostkeys droplets fw db db fw

    return _settled(c).apply(check)


@pulumi.runtime.test
def test_everything_is_in_one_vpc(mocks: DoMocks):
    c = _campaign(vpcCidr="10.77.0.0/24")

    def check(_):
        (vpc,) = mocks.of_type(":Vpc")
        vpc_id = next(iter(mocks.vpc_ranges))
        assert vpc.inputs["ipRange"] == "10.77.0.0/24"
        assert vpc.inputs["name"] == "shipgate-rc-0-7-0-r1"
        assert {d.inputs["vpcUuid"] for d in mocks.of_type(":Droplet")} == {vpc_id}
        (db,) = mocks.of_type(":DatabaseCluster")
        assert db.inputs["privateNetworkUuid"] == vpc_id
        net = ipaddress.ip_network("10.77.0.0/24")
        for d in mocks.of_type(":Droplet"):
            assert ipaddress.ip_address(d.state["ipv4AddressPrivate"]) in net

    return _settled(c).apply(check)


@pulumi.runtime.test
def test_federation_port_admits_only_the_vpc_and_ssh_only_the_operator(mocks: DoMocks):
    c = _campaign(operatorCidrs="198.51.100.7/32,2001:db8::/64")

    def check(_):
        (fw,) = mocks.of_type("firewall:Firewall")
        inbound = fw.inputs["inboundRules"]
        fed = [r for r in inbound if r["protocol"] in ("tcp", "udp") and _covers(r.get("portRange"), FEDERATION_PORT)]
        assert fed == [{"protocol": "tcp", "portRange": "9077", "sourceAddresses": ["10.250.0.0/20"]}]
        ssh = [r for r in inbound if r["protocol"] == "tcp" and _covers(r.get("portRange"), 22)]
        assert ssh == [{"protocol": "tcp", "portRange": "22", "sourceAddresses": ["198.51.100.7/32", "2001:db8::/64"]}]
        assert len(inbound) == 2, "nothing else is reachable from outside"
        assert not any(src in ("0.0.0.0/0", "::/0") for r in inbound for src in r.get("sourceAddresses", []))
        outbound = fw.inputs["outboundRules"]
        assert {r["protocol"] for r in outbound} == {"tcp", "udp", "icmp"}
        assert all(r["destinationAddresses"] == ["0.0.0.0/0", "::/0"] for r in outbound)
        droplet_ids = sorted(int(d.state["urn"].rsplit(":", 1)[1]) for d in mocks.of_type(":Droplet"))
        assert sorted(fw.inputs["dropletIds"]) == droplet_ids
        assert all(float(i).is_integer() for i in fw.inputs["dropletIds"]), "numeric ids (the wire carries numbers)"

    return _settled(c).apply(check)


def test_ssh_is_never_world_open_by_default_and_errors_name_the_key():
    with pytest.raises(StackConfigError, match=r"shipgate:operatorCidrs: Field required"):
        parse_stack_config({k: v for k, v in BASE_CONFIG.items() if k != "operatorCidrs"})
    for world in ("0.0.0.0/0", "::/0", "198.51.100.7/32, 0.0.0.0/0"):
        with pytest.raises(StackConfigError, match=r"opens SSH to the whole internet.*shipgate:allowWorldSsh"):
            parse_stack_config({**BASE_CONFIG, "operatorCidrs": world})
    with pytest.raises(StackConfigError, match=r"shipgate:operatorCidrs: 'example.com' is not an address"):
        parse_stack_config({**BASE_CONFIG, "operatorCidrs": "example.com"})
    with pytest.raises(StackConfigError, match=r"exactly one of shipgate:sshKeyFingerprint or shipgate:sshPublicKey"):
        parse_stack_config({**BASE_CONFIG, "sshKeyFingerprint": "3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa"})
    with pytest.raises(StackConfigError, match=r"shipgate:sshPublicKey: this is a private key"):
        parse_stack_config({**BASE_CONFIG, "sshPublicKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nabc"})
    with pytest.raises(StackConfigError) as many:
        parse_stack_config({**BASE_CONFIG, "vpcCidr": "8.8.8.0/24", "region": "Moon", "deadManHours": "0",
                            "postgresVersion": "9", "peerSize": "HUGE", "typo": "x"})
    text = str(many.value)
    for key in ("vpcCidr", "region", "deadManHours", "postgresVersion", "peerSize"):
        assert f"shipgate:{key}:" in text, key
    assert "RFC 1918" in text


@pulumi.runtime.test
def test_world_ssh_needs_the_explicit_flag_and_then_only_port_22_opens(mocks: DoMocks):
    c = _campaign(operatorCidrs="0.0.0.0/0", allowWorldSsh="true")

    def check(_):
        (fw,) = mocks.of_type("firewall:Firewall")
        by_port = {r["portRange"]: r["sourceAddresses"] for r in fw.inputs["inboundRules"]}
        assert by_port == {"22": ["0.0.0.0/0"], "9077": ["10.250.0.0/20"]}

    return _settled(c).apply(check)


@pulumi.runtime.test
def test_database_firewall_admits_only_the_campaign_droplets(mocks: DoMocks):
    c = _campaign()

    def check(_):
        (dbfw,) = mocks.of_type(":DatabaseFirewall")
        (db,) = mocks.of_type(":DatabaseCluster")
        assert dbfw.inputs["clusterId"] == db.state["urn"].rsplit(":", 1)[1]
        droplet_ids = {d.state["urn"].rsplit(":", 1)[1] for d in mocks.of_type(":Droplet")}
        rules = dbfw.inputs["rules"]
        assert {r["type"] for r in rules} == {"droplet"}
        assert {r["value"] for r in rules} == droplet_ids
        assert len(rules) == 4

    return _settled(c).apply(check)


@pulumi.runtime.test
def test_every_taggable_resource_carries_the_three_tags(mocks: DoMocks):
    c = _campaign()
    want = ["ai-memory", "ship-gate", CAMPAIGN_TAG]

    def check(_):
        (tag,) = mocks.of_type(":Tag")
        assert tag.inputs["name"] == CAMPAIGN_TAG
        for d in mocks.of_type(":Droplet"):
            assert d.inputs["tags"] == want, d.name
        (db,) = mocks.of_type(":DatabaseCluster")
        assert db.inputs["tags"] == want
        names = {r.inputs.get("name") for r in mocks.resources if r.typ.split(":")[-1] in ("Vpc", "Firewall", "SshKey")}
        assert names == {"shipgate-rc-0-7-0-r1"}, "untaggable resources are found by name"

    return _settled(c).apply(check)


@pulumi.runtime.test
def test_user_data_installs_packages_host_key_and_arms_the_dead_man_switch(mocks: DoMocks):
    c = _campaign(deadManHours="8")

    def check(_):
        for d in mocks.of_type(":Droplet"):
            text = _secret_value(d.inputs["userData"])
            assert text.startswith("#cloud-config\n")
            doc = yaml.safe_load(text)
            assert doc["hostname"] == d.inputs["name"]
            assert {"python3", "iptables", "libfaketime", "faketime", "curl", "jq", "postgresql-client"} <= set(
                doc["packages"])
            boot = [" ".join(cmd) for cmd in doc["bootcmd"]]
            assert any("shutdown -P +480" in b for b in boot), boot
            assert any("+ 28800" in b for b in boot), "deadline fixed at first boot, 8 h later"
            files = {f["path"]: f["content"] for f in doc["write_files"]}
            timer = files["/etc/systemd/system/shipgate-deadman.timer"]
            assert "OnUnitActiveSec=5min" in timer
            assert "systemctl poweroff" in files["/usr/local/sbin/shipgate-deadman"]
            assert ["systemctl", "enable", "--now", "shipgate-deadman.timer"] in doc["runcmd"]
            key = mocks.private_keys[f"{d.name}-host-key"]
            installed = serialization.load_ssh_private_key(doc["ssh_keys"]["ed25519_private"].encode(), None)
            assert installed.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            ) == key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            assert doc["ssh_deletekeys"] is True and doc["ssh_genkeytypes"] == []

    return _settled(c).apply(check)


@pulumi.runtime.test
def test_outputs_are_complete_secret_where_needed_and_make_an_inventory(mocks: DoMocks, tmp_path: Path):
    c = _campaign()
    outputs = stack_outputs(c)

    def check(args):
        resolved, password_secret, user_data_secret = args
        assert password_secret, "the Postgres password must be exported as a Pulumi secret"
        assert user_data_secret, "user data carries a host private key and must stay a secret"
        as_cli_prints = json.loads(json.dumps(resolved))  # what `pulumi stack output --json --show-secrets` gives
        StackOutputs.model_validate(as_cli_prints)
        assert set(as_cli_prints) == set(StackOutputs.model_fields)
        inv = inventory_from_stack_outputs(
            as_cli_prints, ssh_key=tmp_path / "id", known_hosts=tmp_path / "kh",
            target=Target(kind="binary", path=Path("/build/ai-memory")),
        )
        assert inv.provider == "digitalocean" and inv.campaign_id == "rc-0.7.0.r1"
        assert inv.vpc_cidr == "10.250.0.0/20"
        assert inv.target.git_ref == "v0.7.0-rc1"
        assert [h.name for h in inv.peers] == list(PEER_NAMES)
        for name in HOST_NAMES:
            d = next(r for r in mocks.of_type(":Droplet") if r.name == name)
            h = inv.hosts[name]
            assert (h.public_address, h.private_address) == (d.state["ipv4Address"], d.state["ipv4AddressPrivate"])
            assert h.hostname == d.inputs["name"] and h.hostname.endswith(name)
        assert inv.postgres.host.startswith("private-"), "peers reach Postgres over the VPC"
        assert (inv.postgres.port, inv.postgres.user, inv.postgres.database, inv.postgres.sslmode) == (
            25060, "doadmin", "shipgate", "require")
        assert inv.postgres.password.get_secret_value() == "mock-Pa55word"
        assert "mock-Pa55word" not in json.dumps(inv.redacted())
        hk = paramiko.HostKeys()
        path = tmp_path / "known_hosts"
        path.write_text(known_hosts_text(as_cli_prints))
        hk.load(str(path))
        for name in HOST_NAMES:
            key = mocks.private_keys[f"{name}-host-key"]
            raw = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
            for addr in (inv.hosts[name].public_address, inv.hosts[name].private_address):
                got = hk.lookup(addr)
                assert got is not None and list(got) == ["ssh-ed25519"], addr
                assert f"ssh-ed25519 {got['ssh-ed25519'].get_base64()}".encode() == raw

    user_data = c.droplets["node-a"].user_data
    return pulumi.Output.all(
        pulumi.Output.from_input(outputs),
        pulumi.Output.from_input(outputs["postgres_password"].is_secret()),
        pulumi.Output.from_input(user_data.is_secret()),
    ).apply(check)


@pulumi.runtime.test
def test_existing_key_fingerprint_registers_no_key(mocks: DoMocks):
    fp = "3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa"
    cfg = {k: v for k, v in BASE_CONFIG.items() if k != "sshPublicKey"}
    c = build(parse_stack_config({**cfg, "sshKeyFingerprint": fp}))

    def check(_):
        assert mocks.of_type(":SshKey") == []
        assert {tuple(d.inputs["sshKeys"]) for d in mocks.of_type(":Droplet")} == {(fp,)}

    return _settled(c).apply(check)


@pytest.fixture
def stack_config():
    """Set Pulumi config for one test and clear it afterwards."""
    from pulumi.runtime.config import set_all_config

    def _set(values: dict[str, str]) -> None:
        set_all_config({f"shipgate:{k}": v for k, v in values.items()}, [])

    yield _set
    set_all_config({}, [])


def test_the_entry_point_reads_stack_config_and_exports(mocks: DoMocks, stack_config):
    stack_config({**BASE_CONFIG, "region": "fra1", "deadManHours": "2"})

    @pulumi.runtime.test
    def run_program():
        runpy.run_path(str(ROOT / "infra" / "__main__.py"), run_name="__main__")

    run_program()  # returns once every registration has finished, so plain asserts below are safe
    droplets = mocks.of_type(":Droplet")
    assert len(droplets) == 4 and {d.inputs["region"] for d in droplets} == {"fra1"}
    assert "shutdown -P +120" in " ".join(" ".join(c) for c in yaml.safe_load(_secret_value(droplets[0].inputs["userData"]))["bootcmd"])


def test_the_entry_point_stops_with_a_clear_error_on_bad_config(mocks: DoMocks, stack_config):
    stack_config({**BASE_CONFIG, "operatorCidrs": "0.0.0.0/0"})
    with pytest.raises(pulumi.RunError, match="opens SSH to the whole internet"):
        runpy.run_path(str(ROOT / "infra" / "__main__.py"), run_name="__main__")
    assert mocks.resources == []


def test_the_pulumi_project_file_runs_this_program_in_the_project_venv():
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    assert project["runtime"]["options"]["virtualenv"] == ".venv"
    assert (ROOT / project["main"] / "__main__.py").is_file()
