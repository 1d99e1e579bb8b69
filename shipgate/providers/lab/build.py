"""`up`: build the lab — five hosts from network namespaces, two bridges, firewalls, sshd, Postgres.

Each host is `ip netns exec <ns> unshare --uts --mount --pid --ipc --fork --kill-child --mount-proc
--propagation private sh init.sh`: its own hostname, PID space (its sshd is PID 1, so killing it ends
everything in the host), SysV IPC, and private tmpfs on /run and /dev/shm (libfaketime and Postgres
leave files there when killed; they vanish with the host). The launcher is detached (`setsid -f`), so the
lab outlives the process that built it; its PID is written to a pidfile before it execs.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from pathlib import Path

from shipgate.hosts.inventory import (
    CAMPAIGN_ID_RE,
    HOST_NAMES,
    Host,
    Inventory,
    PostgresEndpoint,
    SshSettings,
    Target,
    file_sha256,
)
from shipgate.providers.lab import layout as L
from shipgate.providers.lab.models import LabState
from shipgate.providers.lab.system import (
    SBIN_PATH,
    LabError,
    alive,
    existing_netns,
    locked,
    preflight,
    run,
    wait_for,
)
from shipgate.providers.lab.teardown import teardown_locked

PG_DATABASE = "ai_memory"
PG_USER = "ai_memory"
REFPEER_SCRIPT = """#!{python}
# ai-memory on a lab host: the bundled reference peer (written by shipgate.providers.lab; exec'd directly, so the PID
# of `ai-memory serve` is the server itself).
import os
import sys

if "faketime" in os.environ.get("LD_PRELOAD", ""):
    # Under libfaketime 0.9.10 with FAKETIME_DONT_FAKE_MONOTONIC=1 every clock works except Python's
    # time.sleep, whose clock_nanosleep(TIMER_ABSTIME) the library rewrites into EINVAL. A timed wait on an
    # Event sleeps on the (real) monotonic clock instead; the skewed wall clock is untouched.
    import threading
    import time

    def _sleep(seconds, _wait=threading.Event().wait):
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        _wait(seconds)

    time.sleep = _sleep

from refpeer.cli import main

sys.exit(main())
"""


def _now_id(name: str) -> str:
    return f"{name}-{datetime.now(UTC).strftime('%Y%m%dt%H%M%S')}"


# -- state --------------------------------------------------------------------------------------------
def read_state(layout: L.LabLayout) -> LabState | None:
    try:
        return LabState.model_validate_json(layout.state_file.read_text())
    except (OSError, ValueError):
        return None


def write_state(layout: L.LabLayout, state: LabState) -> None:
    tmp = layout.state_file.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(state.model_dump_json(indent=2))
    os.replace(tmp, layout.state_file)


def inventory_from_state(state: LabState) -> Inventory:
    return Inventory.model_validate(state.inventory)


def state_is_running(layout: L.LabLayout, state: LabState) -> bool:
    """Every host process and Postgres still alive and every namespace present."""
    present = existing_netns()
    return (all(ns in present for ns in layout.namespaces())
            and all(alive(state.host_pids.get(r, -1)) for r in L.ROLES)
            and state.postgres_pid is not None and alive(state.postgres_pid))


# -- subnet slot --------------------------------------------------------------------------------------
def _root_networks() -> list[ipaddress.IPv4Network]:
    out = run(["ip", "-j", "-4", "route", "show", "table", "all"], timeout=10).stdout
    nets = []
    for route in json.loads(out or "[]"):
        dst = route.get("dst", "")
        if dst in ("default", "") or ":" in dst:
            continue
        try:
            nets.append(ipaddress.ip_network(dst if "/" in dst else f"{dst}/32", strict=False))
        except ValueError:
            continue
    return nets


def allocate_slot(name: str) -> int:
    """The name's preferred slot unless another lab or a route of this machine already uses its ranges."""
    taken: set[int] = set()
    base = L.base_dir()
    if base.is_dir():
        for entry in base.iterdir():
            if entry.name != name and (entry / "state.json").is_file():
                other = read_state(L.LabLayout(entry.name)) if L.LAB_NAME_RE.match(entry.name) else None
                if other is not None:
                    taken.add(other.slot)
    routes = _root_networks()
    first = L.preferred_slot(name)
    for i in range(L.SLOTS):
        slot = (first + i) % L.SLOTS
        if slot in taken:
            continue
        wanted = [ipaddress.ip_network(L.public_cidr(slot)), ipaddress.ip_network(L.vpc_cidr(slot))]
        if any(w.overlaps(r) for w in wanted for r in routes):
            continue
        return slot
    raise LabError("no free subnet slot for the lab (every 10.251.N.0/24 is in use); run `invoke lab.down` "
                   "for labs you no longer need")


# -- pieces -------------------------------------------------------------------------------------------
def _keygen(path: Path, comment: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_all(procs: list[subprocess.Popen[bytes]], what: str, timeout: float = 20) -> None:
    for proc in procs:
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise LabError(f"{what} timed out") from None
        if proc.returncode != 0:
            raise LabError(f"{what} failed: {err.decode(errors='replace').strip()}")


def _network(layout: L.LabLayout) -> None:
    """Bridges, veths and addresses; the VPC bridge gets no address in the root namespace."""
    lines = [f"link add {layout.bridge_public} type bridge",
             f"link add {layout.bridge_private} type bridge"]
    for h in layout.hosts():
        lines.append(f"netns add {h.netns}")
        lines.append(f"link add {h.veth_public} type veth peer name {L.PUBLIC_IF} netns {h.netns}")
        lines.append(f"link add {h.veth_private} type veth peer name {L.VPC_IF} netns {h.netns}")
    run(["ip", "-b", "-"], input="\n".join(lines) + "\n", timeout=30)
    # No IPv6 on the lab's links: nothing may reach a host around its IPv4 firewall (link-local v6).
    if Path("/proc/sys/net/ipv6").is_dir():
        for link in layout.links():
            Path(f"/proc/sys/net/ipv6/conf/{link}/disable_ipv6").write_text("1")
    lines = [f"addr add {layout.operator_address}/{layout.public_prefix} dev {layout.bridge_public}"]
    for h in layout.hosts():
        lines += [f"link set {h.veth_public} master {layout.bridge_public} up",
                  f"link set {h.veth_private} master {layout.bridge_private} up"]
    lines += [f"link set {layout.bridge_public} up", f"link set {layout.bridge_private} up"]
    run(["ip", "-b", "-"], input="\n".join(lines) + "\n", timeout=30)


def _needs_forward_accept() -> bool:
    """Bridged frames pass the root namespace's FORWARD chain when br_netfilter is on; a host that filters
    forwarding (Docker sets the policy to DROP, e.g. on CI runners) would silently cut the lab's networks.
    SHIPGATE_LAB_FORWARD_RULES=1 forces the rules (to exercise this path on a permissive machine)."""
    if os.environ.get("SHIPGATE_LAB_FORWARD_RULES") == "1":
        return True
    try:
        if Path("/proc/sys/net/bridge/bridge-nf-call-iptables").read_text().strip() != "1":
            return False
    except OSError:
        return False
    rules = run(["iptables", "-w", "5", "-S", "FORWARD"], timeout=15).stdout.split("\n")
    return [r for r in rules if r.strip()] != ["-P FORWARD ACCEPT"]


def _forward_accept(layout: L.LabLayout) -> None:
    """Let each bridge forward between its own ports only (tagged, so teardown removes the rules)."""
    for bridge in (layout.bridge_public, layout.bridge_private):
        run(["iptables", "-w", "5", "-I", "FORWARD", "1", "-i", bridge, "-o", bridge, "-m", "comment",
             "--comment", f"{L.FIREWALL_TAG}:{layout.name} bridged traffic", "-j", "ACCEPT"], timeout=15)


def _firewall(layout: L.LabLayout, role: str) -> str:
    """iptables-restore input mirroring the DigitalOcean firewall: inbound denied except SSH from the
    operator and 9077 (5432 on pg) from the VPC. No FORWARD, no NAT: a host routes nothing."""
    tag = f"{L.FIREWALL_TAG}:{layout.name}"
    rules = [
        "*filter",
        ":INPUT DROP [0:0]",
        ":FORWARD DROP [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        "-A INPUT -i lo -j ACCEPT",
        "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
        "-A INPUT -p icmp -j ACCEPT",
        f'-A INPUT -i {L.PUBLIC_IF} -s {layout.operator_address}/32 -p tcp --dport 22 '
        f'-m comment --comment "{tag} ssh from the operator" -j ACCEPT',
        f'-A INPUT -i {L.VPC_IF} -s {layout.vpc_cidr} -p tcp --dport 9077 '
        f'-m comment --comment "{tag} federation from the VPC" -j ACCEPT',
    ]
    if role == "pg":
        rules.append(f'-A INPUT -i {L.VPC_IF} -s {layout.vpc_cidr} -p tcp --dport {L.PG_PORT} '
                     f'-m comment --comment "{tag} postgres from the VPC" -j ACCEPT')
    return "\n".join([*rules, "COMMIT", ""])


def _host_network(layout: L.LabLayout, role: str) -> None:
    h = layout.host(role)
    vpc_prefix = ipaddress.ip_network(layout.vpc_cidr).prefixlen
    script = "\n".join([
        "set -e",
        "if [ -d /proc/sys/net/ipv6 ]; then",
        "  echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6",
        "  echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6",
        "fi",
        "echo 0 > /proc/sys/net/ipv4/ip_forward",
        "ip -b - <<'EOF'",
        "link set lo up",
        f"addr add {h.public_address}/{layout.public_prefix} dev {L.PUBLIC_IF}",
        f"addr add {h.private_address}/{vpc_prefix} dev {L.VPC_IF}",
        f"link set {L.PUBLIC_IF} up",
        f"link set {L.VPC_IF} up",
        "EOF",
        "iptables-restore -w 5 <<'EOF'",
        _firewall(layout, role).rstrip("\n"),
        "EOF",
    ])
    run(["ip", "netns", "exec", h.netns, "sh", "-c", script], timeout=30)


def _sshd_config(layout: L.LabLayout, role: str, env: dict[str, str]) -> str:
    h = layout.host(role)
    for key, value in env.items():
        if re.search(r"[\s\"'\\]", value):
            raise LabError(f"host environment {key}={value!r} contains whitespace or quotes; "
                           "sshd SetEnv cannot carry it (choose another SHIPGATE_LAB_DIR)")
    set_env = " ".join(f"{k}={v}" for k, v in env.items())
    return "\n".join([
        "# written by shipgate.providers.lab for one lab host",
        "Port 22",
        f"ListenAddress {h.public_address}",
        f"HostKey {h.host_key}",
        f"PidFile {h.sshd_dir / 'sshd.pid'}",
        f"AuthorizedKeysFile {layout.authorized_keys}",
        "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",
        "UseDNS no",
        "PrintMotd no",
        "PrintLastLog no",
        "PermitUserEnvironment no",
        "MaxSessions 64",
        "MaxStartups 64:30:128",
        "LogLevel ERROR",
        "Subsystem sftp internal-sftp",
        f"SetEnv {set_env}",
        "",
    ])


def _init_script(layout: L.LabLayout, role: str, sshd: str) -> str:
    h = layout.host(role)
    return "\n".join([
        "set -e",
        f"hostname {h.hostname}",
        "mount -t tmpfs -o mode=0755,size=64m lab-run /run",
        "mkdir -m 0755 /run/sshd",
        "mount -t tmpfs -o mode=1777,size=1g lab-shm /dev/shm",
        f"if [ -e /root/.bashrc ]; then mount --bind {layout.empty_file} /root/.bashrc; fi",
        f"exec {sshd} -D -f {h.sshd_config} -E {h.sshd_dir / 'sshd.log'}",
        "",
    ])


def _launch_host(layout: L.LabLayout, role: str) -> None:
    h = layout.host(role)
    argv = ["setsid", "-f", "sh", "-c", 'echo $$ > "$0"; exec "$@"', str(h.pidfile),
            "ip", "netns", "exec", h.netns,
            "unshare", "--uts", "--mount", "--pid", "--ipc", "--fork", "--kill-child", "--mount-proc",
            "--propagation", "private", "sh", str(h.sshd_dir / "init.sh")]
    with open(h.boot_log, "ab") as log:
        subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, timeout=10, check=True)


def _host_pid(layout: L.LabLayout, role: str, timeout: float = 10) -> int:
    h = layout.host(role)

    def read() -> int | None:
        try:
            text = h.pidfile.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    pid = wait_for(read, timeout)
    if pid is None:
        raise LabError(f"host {role}: launcher wrote no pidfile within {timeout:.0f}s; {_boot_tail(h)}")
    return pid


def _boot_tail(h: L.HostLayout) -> str:
    parts = []
    for f in (h.boot_log, h.sshd_dir / "sshd.log"):
        try:
            text = f.read_text(errors="replace").strip()
        except OSError:
            continue
        if text:
            parts.append(f"{f.name}: {text[-800:]}")
    return "; ".join(parts) or "no log output"


def _init_pid(unshare_pid: int) -> int | None:
    """Root-namespace PID of the host's PID 1 (the child unshare forked), once it runs sshd."""
    try:
        children = Path(f"/proc/{unshare_pid}/task/{unshare_pid}/children").read_text().split()
    except OSError:
        return None
    for child in children:
        try:
            exe = os.readlink(f"/proc/{child}/exe")
        except OSError:
            continue
        if exe.endswith("/sshd"):
            return int(child)
    return None


def _wait_sshd(layout: L.LabLayout, pids: dict[str, int], timeout: float = 10) -> None:
    pending = {r: layout.host(r) for r in L.ROLES}
    deadline = time.monotonic() + timeout
    while pending:
        for role, h in list(pending.items()):
            try:
                with socket.create_connection((h.public_address, 22), timeout=0.2):
                    del pending[role]
                    continue
            except OSError:
                pass
            if not alive(pids[role]):
                raise LabError(f"host {role} exited during startup; {_boot_tail(h)}")
        if pending and time.monotonic() > deadline:
            names = ", ".join(pending)
            details = "; ".join(_boot_tail(h) for h in pending.values())
            raise LabError(f"sshd did not come up within {timeout:.0f}s on {names}: {details}")
        if pending:
            time.sleep(0.01)


def _install_target(layout: L.LabLayout, target: Path | None) -> Target:
    layout.target_dir.mkdir(parents=True, exist_ok=True)
    if target is None:
        source = layout.target_dir / "ai-memory"
        source.write_text(REFPEER_SCRIPT.format(python=sys.executable))
        source.chmod(0o755)
        kind = "refpeer"
    else:
        source = target
        kind = "binary"
    for role in HOST_NAMES:
        dest = layout.host(role).bin_dir / "ai-memory"
        shutil.copy2(source, dest)
        dest.chmod(0o755)
    return Target(kind=kind, path=source)


def _start_postgres(layout: L.LabLayout, unshare_pid: int, password: str) -> int | None:
    """Start Postgres inside the pg host (runs while the other hosts' sshd boot). Returns the PID of the
    `nsenter` that waits for the postmaster (it lives exactly as long as the postmaster does)."""
    # why: the bundled Postgres (and psycopg with it) loads only when a lab is built, not on `invoke --list`
    from shipgate.providers.lab.postgres import PostgresServer

    init = wait_for(lambda: _init_pid(unshare_pid), 10)
    if init is None:
        raise LabError(f"pg host did not start; {_boot_tail(layout.host('pg'))}")
    server = PostgresServer(
        layout.pg_data, listen=layout.host("pg").private_address, port=L.PG_PORT,
        # All of the host's namespaces, PID included: the loader resolves $ORIGIN (the wheel's RPATH)
        # through /proc/self, which only works inside the PID namespace /proc belongs to. And the host's root
        # directory: entering a mount namespace resets the root to the namespace's own, which is not the
        # lab's when the lab runs in a chroot (a container, a fresh-machine root).
        run_prefix=["nsenter", f"--target={init}", "--net", "--mount", "--uts", "--ipc", "--pid", "--root",
                    "--wd", "--"],
        allow_cidrs=[layout.vpc_cidr],
    )
    server.start(timeout=30)
    server.create_database(PG_DATABASE, PG_USER, password, extensions=("vector",))
    return server.pid


def _read_version(inventory: Inventory) -> tuple[str | None, str | None]:
    # why: paramiko loads only when SSH is used (fast `invoke --list`)
    from shipgate.hosts.ssh import HostAccess

    with HostAccess(inventory) as access:
        res = access.run("node-a", "ai-memory --version", timeout=60)
    if res.ok and res.stdout.strip():
        return res.stdout.strip().splitlines()[0].strip(), None
    return None, f"target version could not be read: {res.describe()}"


# -- up -----------------------------------------------------------------------------------------------
def up(name: str = "sg", *, target: Path | None = None, defects: list[str] | tuple[str, ...] = (),
       campaign_id: str | None = None) -> Inventory:
    """Build the lab (or return the running one when it already matches) and return its Inventory."""
    L.check_name(name)
    preflight()
    if campaign_id is not None and not CAMPAIGN_ID_RE.match(campaign_id):
        raise LabError(f"campaign id {campaign_id!r} must be 1-63 chars of lowercase letters, digits, '.', '_' "
                       "or '-', starting with a letter or digit")
    defects = check_defects(defects, target)
    if target is not None:
        target = Path(target).expanduser().resolve()
        if not target.is_file() or not os.access(target, os.X_OK):
            raise LabError(f"--target {target}: not an executable file")
    base = L.base_dir()
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)
    with locked(base):
        existing_layout = L.LabLayout(name)
        state = read_state(existing_layout)
        if state is not None:
            layout = L.LabLayout(name, state.slot)
            inv = inventory_from_state(state)
            same_kind = (inv.target.kind == "refpeer") == (target is None)
            same_target = (same_kind and inv.target.defects == defects
                           and installed_target_sha256(name) == (None if target is None else file_sha256(target)))
            if same_target and state_is_running(layout, state):
                if campaign_id and campaign_id != inv.campaign_id:
                    inv = inv.model_copy(update={"campaign_id": campaign_id})
                    state.inventory = _inventory_json(inv)
                    write_state(layout, state)
                return inv
        teardown_locked(existing_layout)
        try:
            return _build(name, target=target, defects=defects, campaign_id=campaign_id or _now_id(name))
        except BaseException:
            teardown_locked(existing_layout)
            raise


def installed_target_sha256(name: str) -> str | None:
    """sha256 of the target file the running lab `name` installed on its hosts (None: the reference peer's
    launcher, or nothing installed). A path names a file, not its content: a rebuilt binary is another target."""
    layout = L.LabLayout(name)
    state = read_state(layout)
    if state is None or inventory_from_state(state).target.kind == "refpeer":
        return None
    copy = layout.host("node-a").bin_dir / "ai-memory"
    return file_sha256(copy) if copy.is_file() else None


def check_defects(defects: list[str] | tuple[str, ...], target: Path | None) -> list[str]:
    """Seeded defects exist only in the reference peer; a typo must fail here, not silently run clean."""
    names = [d.strip() for d in defects if d.strip()]
    if not names:
        return []
    if target is not None:
        raise LabError("--defects seeds the bundled reference peer; it cannot apply to a --target binary")
    for d in names:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", d):
            raise LabError(f"defect name {d!r} may hold only letters, digits and _.-")
    try:  # why: the reference peer is optional here; without it its own startup refuses unknown names
        from refpeer.defects import parse
    except ImportError:  # the reference peer itself will refuse unknown names at startup
        return names
    try:
        parse(",".join(names))
    except Exception as exc:
        raise LabError(str(exc)) from None
    return names


def _inventory_json(inv: Inventory) -> dict:
    data = inv.model_dump(mode="json")
    data["postgres"]["password"] = inv.postgres.password.get_secret_value()
    return data


def _build(name: str, *, target: Path | None, defects: list[str], campaign_id: str) -> Inventory:
    sshd = preflight(["sshd"])["sshd"]
    layout = L.LabLayout(name, allocate_slot(name))
    layout.dir.mkdir(mode=0o755)
    layout.dir.chmod(0o755)
    layout.ssh_dir.mkdir(mode=0o700)
    layout.empty_file.write_text("")
    for h in layout.hosts():
        h.bin_dir.mkdir(parents=True)
        h.sshd_dir.mkdir(parents=True)
    for d in (layout.dir / "hosts", layout.dir / "sshd", *(h.dir for h in layout.hosts())):
        d.chmod(0o755)
    keygens = [_keygen(layout.operator_key, f"operator@{name}")]
    keygens += [_keygen(h.host_key, h.hostname) for h in layout.hosts()]

    _network(layout)
    if _needs_forward_accept():
        _forward_accept(layout)
    with ThreadPoolExecutor(max_workers=len(L.ROLES), thread_name_prefix="lab-net") as pool:
        nets = [pool.submit(_host_network, layout, r) for r in L.ROLES]
        _wait_all(keygens, "ssh-keygen")
        for fut in nets:
            fut.result()

    layout.authorized_keys.write_text(layout.operator_key.with_suffix(".pub").read_text())
    known = []
    for h in layout.hosts():
        key = h.host_key.with_suffix(".pub").read_text().split()
        known.append(f"{h.public_address} {key[0]} {key[1]}")
    layout.known_hosts.write_text("\n".join(known) + "\n")
    for role in L.ROLES:
        h = layout.host(role)
        env = {
            "HOME": str(h.dir),
            "PATH": f"{h.bin_dir}:{SBIN_PATH}",
            "AI_MEMORY_DB": str(h.db_path),
            "AI_MEMORY_NO_CONFIG": "1",
        }
        if defects:
            env["AI_MEMORY_REF_DEFECTS"] = ",".join(defects)
        h.sshd_config.write_text(_sshd_config(layout, role, env))
        (h.sshd_dir / "init.sh").write_text(_init_script(layout, role, sshd))
    for role in L.ROLES:
        _launch_host(layout, role)
    pids = {r: _host_pid(layout, r) for r in L.ROLES}
    password = secrets.token_urlsafe(18)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lab-postgres") as pool:
        pg = pool.submit(_start_postgres, layout, pids["pg"], password)
        tgt = _install_target(layout, target)
        _wait_sshd(layout, pids)
        hosts = {
            role: Host(name=role, hostname=layout.host(role).hostname,
                       public_address=layout.host(role).public_address,
                       private_address=layout.host(role).private_address)
            for role in HOST_NAMES
        }
        inv = Inventory(
            campaign_id=campaign_id,
            provider="lab",
            hosts=hosts,
            ssh=SshSettings(key_path=layout.operator_key, known_hosts=layout.known_hosts,
                            connect_timeout_s=5.0, command_timeout_s=120.0),
            postgres=PostgresEndpoint(host=layout.host("pg").private_address, port=L.PG_PORT,
                                      database=PG_DATABASE, user=PG_USER, password=password, pgvector=True),
            target=tgt.model_copy(update={"defects": defects}),
            vpc_cidr=layout.vpc_cidr,
        )
        # Read over SSH while Postgres is still starting (the longest step of the build).
        version, warning = _read_version(inv)
        try:
            pg_pid = pg.result(timeout=60)
        except FutureTimeout:
            raise LabError("Postgres did not start within 60 s on the pg host") from None
        except LabError:
            raise
        except Exception as exc:
            raise LabError(f"Postgres on the pg host: {exc}") from exc
    inv = inv.model_copy(update={"target": inv.target.model_copy(update={"version": version})})
    state = LabState(name=name, slot=layout.slot, host_pids=pids, postgres_pid=pg_pid,
                     inventory=_inventory_json(inv), warnings=[warning] if warning else [])
    write_state(layout, state)
    if warning:
        logging.getLogger(__name__).warning("lab %s: %s", name, warning)
    return inv

