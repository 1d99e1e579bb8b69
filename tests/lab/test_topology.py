"""The lab's topology: SSH by public address, hostnames, PID spaces, environment, the VPC, the firewall,
Postgres with pgvector, the no-routing guard, and the host access layer over real SSH."""

from __future__ import annotations

import ipaddress
import json
import os
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipgate.hosts.inventory import HOST_NAMES, Host, Inventory, SshSettings
from shipgate.hosts.ssh import HostAccess, HostError
from shipgate.providers import lab
from shipgate.providers.lab import LabLayout
from tests.lab.conftest import build_lab, needs_root, poll, start_listener, tcp_probe, unique_name

pytestmark = [pytest.mark.lab, needs_root]
NAME = unique_name("topo")


@pytest.fixture(scope="module")
def inv() -> Iterator[Inventory]:
    yield from build_lab(NAME)


@pytest.fixture(scope="module")
def access(inv: Inventory) -> Iterator[HostAccess]:
    with HostAccess(inv) as a:
        yield a


@pytest.fixture(scope="module")
def listeners(inv: Inventory, access: HostAccess) -> Iterator[dict[str, int]]:
    """HTTP listeners on 9077 of node-a and node-b (bound to every address, so only the firewall decides)."""
    pids = {h: start_listener(access, h) for h in ("node-a", "node-b")}
    for h in pids:
        res = poll(lambda h=h: access.run(h, "curl -s -o /dev/null -w '%{http_code}' -m 2 http://127.0.0.1:9077/"),
                   lambda r: r.stdout.strip() == "200")
        assert res.stdout.strip() == "200", res.describe()
    yield pids
    for h, pid in pids.items():
        access.run(h, f"kill -KILL {pid}")


def test_ssh_reaches_every_host_by_public_address_with_its_own_hostname(inv: Inventory, access: HostAccess):
    results = access.run_many(list(HOST_NAMES), 'hostname; echo "$SSH_CONNECTION"')
    for name, res in results.items():
        assert res.ok, res.describe()
        hostname, connection = res.stdout.splitlines()
        assert hostname == inv.hosts[name].hostname == f"{NAME}-{name}"
        # SSH_CONNECTION = client_ip client_port server_ip server_port
        assert connection.split()[2:] == [inv.hosts[name].public_address, "22"]


def test_each_host_has_its_own_pid_space_sshd_and_environment(inv: Inventory, access: HostAccess):
    results = access.run_many(
        list(HOST_NAMES),
        "tr '\\0' ' ' < /proc/1/cmdline; echo; echo $HOME; echo $PATH; echo $AI_MEMORY_DB; "
        "echo $AI_MEMORY_NO_CONFIG; pwd; command -v ai-memory",
    )
    layout = LabLayout(NAME)
    for name, res in results.items():
        assert res.ok, res.describe()
        init, home, path, db, no_config, cwd, binary = res.stdout.splitlines()
        host_dir = layout.host(name).dir
        assert init.startswith("sshd:") or "sshd" in init.split()[0]
        assert f"/sshd/{name}/sshd_config" in init
        assert home == cwd == str(host_dir)
        assert path.split(":")[0] == str(host_dir / "bin")
        assert db == str(host_dir / "ai-memory.db")
        assert no_config == "1"
        assert binary == str(host_dir / "bin" / "ai-memory")


def test_no_login_shell_noise(access: HostAccess):
    res = access.run("node-a", "true")
    assert res.ok and res.stdout == "" and res.stderr == "", res.describe()


def test_target_version_is_read_back_over_ssh(inv: Inventory, access: HostAccess):
    assert inv.target.kind == "refpeer"
    assert inv.target.version
    res = access.run("node-c", "ai-memory --version")
    assert res.ok, res.describe()
    assert res.stdout.strip() == inv.target.version


def test_federation_port_works_over_the_vpc(inv: Inventory, access: HostAccess, listeners):
    b = inv.hosts["node-b"].private_address
    a = inv.hosts["node-a"].private_address
    res = access.run("node-a", f"curl -s -o /dev/null -w '%{{http_code}}' -m 3 http://{b}:9077/")
    assert res.stdout.strip() == "200", res.describe()
    res = access.run("chaos", f"curl -s -o /dev/null -w '%{{http_code}}' -m 3 http://{a}:9077/")
    assert res.stdout.strip() == "200", res.describe()


def test_federation_port_is_closed_on_public_addresses(inv: Inventory, access: HostAccess, listeners):
    pub_a = inv.hosts["node-a"].public_address
    res = access.run("chaos", tcp_probe(pub_a, 9077))
    assert res.ok and res.stdout.strip().startswith("closed"), res.describe()
    with pytest.raises(OSError), socket.create_connection((pub_a, 9077), timeout=1.5):
        pass  # the operator side cannot reach 9077 either


def test_ssh_is_only_open_to_the_operator(inv: Inventory, access: HostAccess):
    res = access.run("chaos", tcp_probe(inv.hosts["node-a"].private_address, 22))
    assert res.stdout.strip().startswith("closed"), res.describe()
    res = access.run("chaos", tcp_probe(inv.hosts["node-a"].public_address, 22))
    assert res.stdout.strip().startswith("closed"), res.describe()


def test_postgres_accepts_pgvector_from_node_a_only_over_the_vpc(inv: Inventory, access: HostAccess):
    probe = (
        "import sys, psycopg\n"
        "with psycopg.connect(sys.stdin.read().strip(), connect_timeout=5, autocommit=True) as c:\n"
        "    c.execute('CREATE EXTENSION IF NOT EXISTS vector')\n"
        "    c.execute('CREATE TABLE IF NOT EXISTS t4 (id serial primary key, v vector(3))')\n"
        "    c.execute(\"INSERT INTO t4 (v) VALUES ('[1,2,3]')\")\n"
        "    print(c.execute(\"SELECT v <-> '[1,2,4]' FROM t4 ORDER BY id LIMIT 1\").fetchone()[0])\n"
    )
    res = access.run("node-a", f"{sys.executable} -c {shlex.quote(probe)}",
                     stdin=inv.postgres.dsn().get_secret_value(), timeout=60)
    assert res.ok, res.describe()
    assert float(res.stdout.strip()) == pytest.approx(1.0)
    assert ipaddress.ip_address(inv.postgres.host) in ipaddress.ip_network(inv.vpc_cidr)
    pg_public = next(h.public_address for h in lab.status(NAME).hosts if h.name == "pg")
    assert pg_public
    with pytest.raises(OSError), socket.create_connection((pg_public, 5432), timeout=1.5):
        pass


def test_guard_nothing_routes_beyond_the_lab(inv: Inventory, access: HostAccess):
    script = ("ip -j -4 route show table main; echo ---; cat /proc/sys/net/ipv4/ip_forward; echo ---; "
              "iptables -w 5 -t nat -S; echo ---; iptables -w 5 -S FORWARD; echo ---; ip -j link show; echo ---; "
              "ip -6 -o addr")
    results = access.run_many([*HOST_NAMES], script)
    for name, res in results.items():
        assert res.ok, res.describe()
        routes, forward, nat, fwd_rules, links, v6 = (part.strip() for part in res.stdout.split("---"))
        public = str(ipaddress.ip_network(f"{inv.hosts[name].public_address}/24", strict=False))
        assert {r["dst"] for r in json.loads(routes)} == {inv.vpc_cidr, public}, f"{name}: {routes}"
        assert all("gateway" not in r for r in json.loads(routes)), f"{name}: a route via a gateway"
        assert forward == "0", f"{name}: ip_forward is on"
        assert [ln for ln in nat.splitlines() if not ln.startswith("-P ")] == [], f"{name}: NAT rules"
        assert fwd_rules.splitlines() == ["-P FORWARD DROP"], f"{name}: forwarding allowed"
        assert {link["ifname"] for link in json.loads(links)} == {"lo", "pub0", "vpc0"}, name
        assert v6 == "", f"{name}: IPv6 addresses would bypass the IPv4 firewall: {v6}"
    # Root namespace: the VPC bridge has no address, and the bridges hold only this lab's veths.
    layout = lab.LabLayout(NAME)
    out = subprocess.run(["ip", "-j", "-4", "addr", "show", "dev", layout.bridge_private],
                         capture_output=True, text=True, timeout=10, check=True).stdout
    assert all(not d.get("addr_info") for d in json.loads(out))
    for bridge, suffix in ((layout.bridge_public, "p"), (layout.bridge_private, "v")):
        out = subprocess.run(["ip", "-j", "link", "show", "master", bridge], capture_output=True, text=True,
                             timeout=10, check=True).stdout
        ports = {d["ifname"] for d in json.loads(out)}
        assert ports == {f"{NAME}-{c}-{suffix}" for c in ("a", "b", "c", "x", "pg")}
    nat = subprocess.run(["iptables", "-w", "5", "-t", "nat", "-S"], capture_output=True, text=True,
                         timeout=10, check=True).stdout
    assert NAME not in nat and "10.250." not in nat and "10.251." not in nat


def test_host_keys_are_checked_never_auto_accepted(inv: Inventory, tmp_path: Path):
    other = tmp_path / "known_hosts"
    other.write_text("")
    bad = inv.model_copy(update={"ssh": SshSettings(key_path=inv.ssh.key_path, known_hosts=other,
                                                   connect_timeout_s=3)})
    with HostAccess(bad) as a:
        res = a.run("node-a", "true")
    assert res.error is not None and res.error.startswith("hostkey:"), res
    assert other.read_text() == ""


def test_timeout_kills_the_remote_command(access: HostAccess):
    marker = f"t4-sleeper-{os.getpid()}"
    res = access.run("node-b", f"exec -a {marker} sleep 30", timeout=1)
    assert res.error == "timeout after 1s", res
    left = poll(lambda: access.run("node-b", f"pgrep -f '^{marker}' || true"), lambda r: r.stdout.strip() == "",
                timeout=5)
    assert left.stdout.strip() == "", f"timed-out command still runs: {left.stdout}"


def test_run_passes_env_and_stdin_and_reports_failures(access: HostAccess):
    res = access.run("node-a", 'printf "%s|" "$GREETING"; cat', env={"GREETING": "hello world"}, stdin="from stdin")
    assert res.ok and res.stdout == "hello world|from stdin", res.describe()
    res = access.run("node-a", "echo oops >&2; exit 7")
    assert res.exit_code == 7 and res.error is None and not res.ok and res.stderr.strip() == "oops"
    with pytest.raises(HostError, match="node-a"):
        res.check()


def test_the_session_environment_reaches_every_command_and_a_call_env_wins(access: HostAccess):
    """The target's process environment (0.9.0: attestation opt-out) must reach the CLI as well as serve."""
    access.session_env.update({"SG_SESSION": "on", "SG_BOTH": "session"})
    try:
        res = access.run("node-b", 'printf "%s|%s" "$SG_SESSION" "$SG_BOTH"', env={"SG_BOTH": "call"})
        assert res.ok and res.stdout == "on|call", res.describe()
        pid = access.spawn("node-b", "sleep 30", log="session-env.log")
        environ = access.run("node-b", f"tr '\\0' '\\n' < /proc/{pid}/environ").stdout.splitlines()
        access.run("node-b", f"kill {pid}")
        assert "SG_SESSION=on" in environ
    finally:
        access.session_env.clear()
    assert access.run("node-b", 'printf "%s" "${SG_SESSION-unset}"').stdout == "unset"


def test_run_many_is_parallel_and_an_unreachable_host_is_only_a_result(inv: Inventory, tmp_path: Path):
    hosts = dict(inv.hosts)
    gone = "10.251.{}.99".format(inv.hosts["node-a"].public_address.split(".")[2])
    hosts["node-c"] = Host(name="node-c", hostname="gone", public_address=gone, private_address="10.250.0.99")
    broken = inv.model_copy(update={"hosts": hosts, "ssh": inv.ssh.model_copy(update={"connect_timeout_s": 1.0})})
    with HostAccess(broken) as a:
        results = a.run_many(["node-a", "node-b", "node-c", "chaos"], "date +%s.%N; sleep 1; date +%s.%N")
    assert results["node-c"].error and results["node-c"].error.startswith("connect:"), results["node-c"]
    spans = []
    for h in ("node-a", "node-b", "chaos"):
        assert results[h].ok, results[h].describe()
        spans.append([float(x) for x in results[h].stdout.split()])
    # The hosts share this machine's clock: every command started before any of them finished.
    assert max(s for s, _ in spans) < min(e for _, e in spans), f"not parallel: {spans}"


def test_put_uploads_with_mode_and_names_the_host_on_failure(access: HostAccess, tmp_path: Path):
    src = tmp_path / "payload.sh"
    src.write_text("#!/bin/sh\necho payload-ran\n")
    access.put("chaos", src, "payload.sh", mode=0o750)
    res = access.run("chaos", "stat -c %a payload.sh && ./payload.sh && rm payload.sh")
    assert res.ok and res.stdout.split() == ["750", "payload-ran"], res.describe()
    with pytest.raises(HostError, match="chaos"):
        access.put("chaos", src, "/nonexistent-dir/payload.sh")


def test_status_load_and_up_again(inv: Inventory):
    st = lab.status(NAME)
    assert st.healthy, st.model_dump()
    assert {h.name: h.hostname for h in st.hosts} == {r: f"{NAME}-{r}" for r in (*HOST_NAMES, "pg")}
    assert all(h.sshd_pid for h in st.hosts)
    loaded = lab.load(NAME)
    assert loaded is not None and loaded.model_dump() == inv.model_dump()
    pids = {h.name: h.sshd_pid for h in st.hosts}
    again = lab.up(NAME)
    assert again.model_dump() == inv.model_dump()
    assert {h.name: h.sshd_pid for h in lab.status(NAME).hosts} == pids, "up twice rebuilt the lab"
