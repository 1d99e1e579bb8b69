"""Fault primitives on a real lab: iptables partitions, packet loss and a one-request refusal with counters, SIGSTOP/SIGCONT/SIGKILL read back
from /proc, and a real libfaketime offset on a process started over SSH (the reference peer's serve too)."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Iterator

import pytest

from shipgate import nemesis
from shipgate.hosts.inventory import Inventory
from shipgate.hosts.ssh import HostAccess
from tests.lab.conftest import build_lab, needs_root, poll, start_listener, tcp_probe, unique_name

pytestmark = [pytest.mark.lab, needs_root]
NAME = unique_name("nem")
# A process that reports its own wall clock every 0.1 s (Event.wait: libfaketime breaks time.sleep).
CLOCK_REPORTER = ("python3 -u -c " + shlex.quote(
    "import threading, time\n"
    "e = threading.Event()\n"
    "while True:\n"
    "    print(time.time(), flush=True)\n"
    "    e.wait(0.1)\n"))


@pytest.fixture(scope="module")
def inv() -> Iterator[Inventory]:
    yield from build_lab(NAME)


@pytest.fixture(scope="module")
def access(inv: Inventory) -> Iterator[HostAccess]:
    with HostAccess(inv) as a:
        yield a


@pytest.fixture
def sleeper(access: HostAccess) -> Iterator[int]:
    pid = access.spawn("node-b", "sleep 600")
    yield pid
    access.run("node-b", f"kill -KILL {pid} 2>/dev/null; true")


def _probe_b(access: HostAccess, inv: Inventory, src: str) -> str:
    return access.run(src, tcp_probe(inv.hosts["node-b"].private_address, 9077, timeout=2)).stdout.strip()


def test_partition_blocks_only_the_partitioned_host_and_heal_restores(inv: Inventory, access: HostAccess):
    listener = start_listener(access, "node-b")
    try:
        assert poll(lambda: access.run("node-a", tcp_probe(inv.hosts["node-b"].private_address, 9077)),
                    lambda r: r.stdout.strip() == "open").stdout.strip() == "open"
        ev = nemesis.partition(access, inv, "node-a", ["node-b", "node-c"])
        assert ev.took_effect, ev
        assert ev.details["rules"] == 4 and ev.details["missing"] == []
        assert _probe_b(access, inv, "node-a").startswith("closed")
        assert _probe_b(access, inv, "node-c") == "open"
        # Re-applying is harmless: still exactly one rule per direction and peer.
        again = nemesis.partition(access, inv, "node-a", ["node-b", "node-c"])
        assert again.took_effect and again.details["rules"] == 4
        listed = access.run("node-a", f"iptables -w 5 -S | grep -c '{nemesis.TAG}'")
        assert listed.stdout.strip() == "4", listed.describe()

        healed = nemesis.heal(access, inv, "node-a")
        assert healed.took_effect, healed
        assert healed.details["removed"] == 4
        assert healed.details["dropped_packets"] >= 1, healed.details  # the SYNs of the blocked probe
        assert healed.healed_at is not None and healed.healed_at >= ev.started_at
        assert _probe_b(access, inv, "node-a") == "open"

        twice = nemesis.heal(access, inv, "node-a")
        assert twice.took_effect and twice.details["removed"] == 0 and twice.details["dropped_packets"] == 0
        assert "dropped_packets=" in healed.summary() and "took effect" in healed.summary()
    finally:
        nemesis.heal(access, inv, "node-a")
        access.run("node-b", f"kill -KILL {listener}")


def test_partition_rejects_nonsense(inv: Inventory, access: HostAccess):
    with pytest.raises(nemesis.NemesisError, match="itself"):
        nemesis.partition(access, inv, "node-a", ["node-a"])
    with pytest.raises(nemesis.NemesisError, match="unknown host 'node-z'"):
        nemesis.partition(access, inv, "node-a", ["node-z"])
    with pytest.raises(nemesis.NemesisError, match="at least one peer"):
        nemesis.partition(access, inv, "node-a", [])


def test_packet_loss_drops_what_the_kernel_counts_on_the_vpc_link_and_heal_removes_it(
        inv: Inventory, access: HostAccess):
    """The evidence is the kernel's: the rule as iptables lists it (its probability parsed back), its DROP
    counter equal to the datagrams whose send the kernel refused, and nothing left after the heal."""
    b = inv.hosts["node-b"].private_address
    ev = nemesis.packet_loss(access, "node-a", b, 0.5)
    try:
        assert ev.took_effect, ev
        route = access.run("node-a", f"ip -o route get {b}").stdout
        assert f" dev {ev.details['dev']} " in route and ev.details["dev"] != "lo"
        assert ev.details["probability"] == pytest.approx(0.5, abs=1e-3)
        assert f"{nemesis.TAG} loss" in str(ev.details["listed"]) and "probability=0.5" in ev.summary()
        again = nemesis.packet_loss(access, "node-a", b, 0.5)
        assert again.took_effect and again.details["rules"] == 1
        assert access.run("node-a", f"iptables -w 5 -S | grep -c '{nemesis.TAG} loss'").stdout.strip() == "1"
        # Locally generated packets a rule drops fail their send (EPERM): count them on the sender.
        sent = access.run("node-a", f"n=0; for i in $(seq 400); do echo x 2>/dev/null > /dev/udp/{b}/9 "
                                    "|| n=$((n+1)); done; echo $n", timeout=60)
        refused = int(sent.stdout.split()[-1])
        assert 100 < refused < 300, sent.describe()  # Binomial(400, 0.5): outside this is p < 1e-20
        # The public link (this SSH session) is not the VPC link: it carries on untouched.
        assert access.run("node-a", "true").ok
    finally:
        healed = nemesis.heal(access, inv, "node-a", what="loss")
    assert healed.took_effect and healed.details["removed"] == 1, healed
    assert healed.details["dropped_packets"] == refused, (healed.details, refused)
    assert healed.details["remaining_rules"] == "0"
    after = access.run("node-a", f"n=0; for i in $(seq 50); do echo x 2>/dev/null > /dev/udp/{b}/9 || n=$((n+1)); "
                                 "done; echo $n", timeout=60)
    assert after.stdout.split()[-1] == "0", after.describe()


def test_packet_loss_rejects_nonsense(access: HostAccess):
    with pytest.raises(nemesis.NemesisError, match="probability"):
        nemesis.packet_loss(access, "node-a", "10.0.0.1", 1.0)
    with pytest.raises(nemesis.NemesisError, match="not an IPv4 address"):
        nemesis.packet_loss(access, "node-a", "node-b; reboot", 0.2)


def _post(inv: Inventory, body: str) -> str:
    """Shell command POSTing `body` from a lab host to node-b's listener, printing curl's exit code."""
    url = f"http://{inv.hosts['node-b'].private_address}:9077/"
    return f"curl -s -o /dev/null -m 5 -X POST --data {shlex.quote(body)} {url}; echo rc=$?"


def test_refuse_once_resets_the_first_marked_request_only_and_heal_counts_it(inv: Inventory, access: HostAccess):
    """One failed attempt, exactly: the first request carrying the marker is reset (curl 56, connection reset),
    unmarked requests before and after it pass, the next marked one passes, and the heal reads 1 refused."""
    listener = start_listener(access, "node-b")
    try:
        assert poll(lambda: access.run("node-a", tcp_probe(inv.hosts["node-b"].private_address, 9077)),
                    lambda r: r.stdout.strip() == "open").stdout.strip() == "open"
        ev = nemesis.refuse_once(access, inv, "node-a", "node-b", "retry-probe-0001")
        assert ev.took_effect and ev.details["rules"] == 1, ev
        assert access.run("node-a", _post(inv, "plain")).stdout.split()[-1] == "rc=0"
        first = access.run("node-a", _post(inv, '{"title": "retry-probe-0001"}')).stdout.split()[-1]
        assert first in ("rc=56", "rc=7"), first  # reset after connect, or refused at connect
        assert access.run("node-a", _post(inv, '{"title": "retry-probe-0001"}')).stdout.split()[-1] == "rc=0"
        assert access.run("node-c", _post(inv, '{"title": "retry-probe-0001"}')).stdout.split()[-1] == "rc=0"
    finally:
        healed = nemesis.heal(access, inv, "node-a", what="refuse")
        access.run("node-b", f"kill -KILL {listener}")
    assert healed.took_effect and healed.details["removed"] == 1, healed
    assert healed.details["dropped_packets"] == 1, healed.details


def test_refuse_once_rejects_nonsense(inv: Inventory, access: HostAccess):
    with pytest.raises(nemesis.NemesisError, match="marker"):
        nemesis.refuse_once(access, inv, "node-a", "node-b", 'x" -j ACCEPT')
    with pytest.raises(nemesis.NemesisError, match="itself"):
        nemesis.refuse_once(access, inv, "node-a", "node-a", "retry-probe-1")
    with pytest.raises(nemesis.NemesisError, match="unknown host"):
        nemesis.refuse_once(access, inv, "node-a", "node-z", "retry-probe-1")


def test_pause_resume_kill_read_back_from_proc(access: HostAccess, sleeper: int):
    paused = nemesis.pause(access, "node-b", sleeper)
    assert paused.took_effect and paused.details["state"] == "T", paused
    assert "sleep 600" in str(paused.details["cmdline"])
    state = access.run("node-b", f"cut -d' ' -f3 /proc/{sleeper}/stat").stdout.strip()
    assert state == "T"
    resumed = nemesis.resume(access, "node-b", sleeper)
    assert resumed.took_effect and resumed.details["state"] in ("S", "R"), resumed
    killed = nemesis.kill(access, "node-b", sleeper)
    assert killed.took_effect and killed.details["state"] in ("gone", "Z"), killed
    assert access.run("node-b", f"test -d /proc/{sleeper}").exit_code == 1
    missing = nemesis.pause(access, "node-b", sleeper)
    assert not missing.took_effect and "does not exist" in (missing.error or "")


def test_skewed_process_reports_the_offset_and_the_evidence_reads_it_back(access: HostAccess):
    env = nemesis.skew_env("-3600")
    assert env["LD_PRELOAD"].endswith("libfaketime.so.1") and env["FAKETIME"] == "-3600"
    pid = access.spawn("node-c", CLOCK_REPORTER, env=env, log="clock.log")
    try:
        res = poll(lambda: access.run("node-c", "tail -n 1 clock.log; date +%s.%N"),
                   lambda r: len(r.stdout.split()) == 2)
        reported, real = (float(x) for x in res.stdout.split())
        assert reported - real == pytest.approx(-3600, abs=5), res.stdout
        # The PID is the program itself, not a wrapper: its own cmdline and its own mapped libfaketime.
        cmd = access.run("node-c", f"tr '\\0' ' ' < /proc/{pid}/cmdline").stdout
        assert cmd.startswith("python3 -u -c")
        ev = nemesis.read_clock_offset(access, "node-c", pid)
        assert ev.took_effect, ev
        assert ev.details["offset_s"] == pytest.approx(-3600, abs=2)
        assert ev.details["faketime_mapped"] is True
    finally:
        nemesis.kill(access, "node-c", pid)
    cleaned = nemesis.clean_faketime_shm(access, "node-c")
    assert cleaned.took_effect
    assert access.run("node-c", f"ls /dev/shm | grep -c 'faketime_shm_{pid}$' || true").stdout.strip() == "0"


def test_unskewed_process_is_not_reported_as_skewed(access: HostAccess, sleeper: int):
    ev = nemesis.read_clock_offset(access, "node-b", sleeper)
    assert not ev.took_effect and ev.details["faketime_mapped"] is False


def test_skew_env_rejects_a_bad_offset():
    with pytest.raises(nemesis.NemesisError, match="clock offset"):
        nemesis.skew_env("yesterday")
    assert nemesis.offset_seconds("+2m") == 120 and nemesis.offset_seconds("-1.5h") == -5400


def test_reference_peer_serve_under_skew_pause_and_kill(inv: Inventory, access: HostAccess):
    """The gate's clock_skew_peer and drop_random_acks on the real target: serve's PID is the server."""
    url = f"http://{inv.hosts['node-c'].private_address}:{inv.federation_port}/api/v1/health"
    pid = access.spawn("node-c", "ai-memory serve --host 0.0.0.0 --port 9077", env=nemesis.skew_env("+300s"),
                       log="serve.log")
    try:
        health = poll(lambda: access.run("chaos", f"curl -s -m 2 {url}"), lambda r: '"ok"' in r.stdout,
                      timeout=30)
        assert json.loads(health.stdout)["status"] == "ok", access.run("node-c", "tail serve.log").stdout
        cmd = access.run("node-c", f"tr '\\0' ' ' < /proc/{pid}/cmdline").stdout
        assert "ai-memory serve" in cmd
        ev = nemesis.read_clock_offset(access, "node-c", pid)
        assert ev.took_effect and ev.details["offset_s"] == pytest.approx(300, abs=2), ev
        assert nemesis.pause(access, "node-c", pid).took_effect
        stalled = access.run("chaos", f"curl -s -m 1 -o /dev/null -w '%{{http_code}}' {url}")
        assert stalled.stdout.strip() == "000"  # the stopped server cannot answer
        assert nemesis.resume(access, "node-c", pid).took_effect
        again = poll(lambda: access.run("chaos", f"curl -s -m 2 {url}"), lambda r: '"ok"' in r.stdout)
        assert '"ok"' in again.stdout
        started = time.time()
        killed = nemesis.kill(access, "node-c", pid)
        assert killed.took_effect and killed.started_at >= started
    finally:
        access.run("node-c", f"kill -KILL {pid} 2>/dev/null; true")
