"""Life cycle of `ai-memory serve` on a host, and the host agent that talks HTTP inside the VPC.

Everything goes through `HostAccess` (SSH), so it works the same on lab namespaces and droplets.
The PID recorded is the server's own (started with `nohup env … ai-memory serve`, both of which
exec), so faults sent to it hit the server, and it is stopped by PID, never by pattern.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pydantic import BaseModel, Field

from shipgate.hosts.inventory import Inventory
from shipgate.hosts.ssh import CommandResult, HostAccess

WORKDIR = "shipgate"  # relative to the remote user's home: where the gate keeps its files on a host
AGENT = f"{WORKDIR}/hostagent.py"
# "Is this PID a live process?" -- `kill -0` alone also says yes for a zombie that its (namespace) init
# has not reaped yet, which made a restart right after SIGKILL refuse to start or wait in vain.
ALIVE = "alive() { kill -0 \"$1\" 2>/dev/null && ! ps -o stat= -p \"$1\" 2>/dev/null | grep -q '^Z'; }; "
# "Is this serve gone, port and all?" -- a multi-threaded server's leader shows as a zombie while its other
# threads still hold the listening socket; a start in that window fails to bind (seen with real 0.6.3).
GONE = ALIVE + "gone() { ! alive \"$1\" && ! ss -Hltn \"sport = :$2\" 2>/dev/null | grep -q .; }; "
AGENT_SOURCE = Path(__file__).resolve().parents[1] / "client" / "hostagent.py"


class ServiceError(RuntimeError):
    """The gate could not establish a fact about a host (an `error`, not a product `fail`)."""

    def __init__(self, host: str, message: str) -> None:
        super().__init__(f"{host}: {message}")
        self.host = host


class ServeSpec(BaseModel):
    """How one `serve` is started; recorded in the phase settings."""

    host: str
    port: int = 9077
    bind: str = "0.0.0.0"
    db: str = Field(description="database path on the host, relative to its home or absolute")
    peers: list[str] = Field(default_factory=list, description="federation peer base URLs")
    quorum_writes: int = 0
    quorum_timeout_ms: int | None = None
    catchup_interval_secs: float | None = Field(
        None, description="passed as --catchup-interval-secs when set; None leaves the program's default")
    env: dict[str, str] = Field(default_factory=dict, description="extra environment (e.g. libfaketime)")
    name: str = "serve"
    flags: list[str] | None = Field(
        None, description="the long flags the target's `serve --help` lists (capability probe); None: not probed")

    def argv(self) -> list[str]:
        """The command line. A release without the catch-up flag (before 0.6.1) has no catch-up at all, so the
        flag is left out rather than refused: a check that needs repair then finds none, which is the truth."""
        args = ["ai-memory", "serve", "--host", self.bind, "--port", str(self.port)]
        if self.quorum_writes:
            args += ["--quorum-writes", str(self.quorum_writes), "--quorum-peers", ",".join(self.peers)]
            if self.quorum_timeout_ms is not None:
                args += ["--quorum-timeout-ms", str(self.quorum_timeout_ms)]
        if self.catchup_interval_secs is not None and self.accepts("catchup-interval-secs"):
            value = float(self.catchup_interval_secs)
            if not value.is_integer():
                raise ValueError(f"--catchup-interval-secs takes whole seconds (the product's flag is an integer), "
                                 f"not {self.catchup_interval_secs}")
            args += ["--catchup-interval-secs", str(int(value))]
        return args

    def accepts(self, flag: str) -> bool:
        return self.flags is None or flag in self.flags

    @property
    def pidfile(self) -> str:
        return f"{WORKDIR}/{self.name}-{self.port}.pid"

    @property
    def log(self) -> str:
        return f"{WORKDIR}/{self.name}-{self.port}.log"


def install_agent(access: HostAccess, hosts: Sequence[str]) -> None:
    """Upload the host agent; raises ServiceError naming the first host that failed.

    The path is made absolute from the login shell's $HOME: SFTP starts in the passwd home
    directory, which is not the host's home where the environment sets another one (the lab)."""
    homes: dict[str, str] = {}
    for host, res in access.run_many(hosts, f'mkdir -p {WORKDIR} && printf %s "$HOME"', timeout=15).items():
        if not res.ok or not res.stdout.startswith("/"):
            raise ServiceError(host, f"cannot create ~/{WORKDIR}: {res.error or res.stderr.strip() or res.stdout!r}")
        homes[host] = res.stdout
    for host in hosts:
        try:
            access.put(host, AGENT_SOURCE, f"{homes[host]}/{AGENT}", mode=0o755)
        except Exception as exc:
            raise ServiceError(host, f"cannot upload the host agent: {exc}") from exc


def agent(access: HostAccess, host: str, args: Sequence[str], *, timeout: float,
          stdin: str | None = None) -> CommandResult:
    """Run the host agent on `host` with the given arguments."""
    return access.run(host, f"python3 {AGENT} " + shlex.join(args), timeout=timeout, stdin=stdin)


def agent_json(access: HostAccess, host: str, args: Sequence[str], *, timeout: float) -> dict:
    """Run the agent and parse its one JSON document; ServiceError when that is impossible."""
    res = agent(access, host, args, timeout=timeout)
    if res.error:
        raise ServiceError(host, f"host agent {args[0]}: {res.error}")
    try:
        doc = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise ServiceError(host, f"host agent {args[0]} printed no JSON (exit {res.exit_code}): "
                                 f"{res.stderr.strip()[-300:]}") from None
    if not isinstance(doc, dict):
        raise ServiceError(host, f"host agent {args[0]} printed {type(doc).__name__}, not an object")
    return doc


def start_serve(access: HostAccess, spec: ServeSpec, *, timeout: float = 20) -> int:
    """Start serve in the background and return its PID (refuses if one from the gate still runs)."""
    env = {"AI_MEMORY_DB": spec.db, **spec.env}
    env_words = " ".join(shlex.quote(f"{k}={v}") for k, v in env.items())
    pidfile, log = spec.pidfile, spec.log
    cmd = (
        f"mkdir -p {WORKDIR} && "
        f"{ALIVE}if [ -f {pidfile} ] && alive \"$(cat {pidfile})\"; then "
        f"echo \"serve already running as pid $(cat {pidfile})\" >&2; exit 3; fi; "
        f"nohup env {env_words} {shlex.join(spec.argv())} >> {log} 2>&1 < /dev/null & "
        f"echo $! > {pidfile}; echo $!"
    )
    res = access.run(spec.host, cmd, timeout=timeout)
    if not res.ok:
        raise ServiceError(spec.host, f"cannot start serve: {res.error or res.stderr.strip()}")
    try:
        return int(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise ServiceError(spec.host, f"serve start printed no pid: {res.stdout!r}") from None


def stop_serve(access: HostAccess, host: str, *, port: int = 9077, name: str = "serve",
               signal: str = "TERM", timeout: float = 15) -> bool:
    """Stop the gate's serve on a host by its recorded PID and wait until it is gone.

    Returns False when none was running. A stopped (SIGSTOP) process is continued first so that
    SIGTERM is delivered."""
    pidfile = f"{WORKDIR}/{name}-{port}.pid"
    wait = max(1, int(timeout) - 2) * 20
    cmd = (
        f"{GONE}[ -f {pidfile} ] || exit 10; p=$(cat {pidfile}); "
        f"if ! alive \"$p\"; then rm -f {pidfile}; exit 10; fi; "
        f"kill -{signal} \"$p\"; kill -CONT \"$p\" 2>/dev/null; "
        f"for i in $(seq {wait}); do gone \"$p\" {port} && {{ rm -f {pidfile}; exit 0; }}; sleep 0.05; done; "
        f"kill -KILL \"$p\" 2>/dev/null; for i in $(seq 40); do gone \"$p\" {port} && {{ rm -f {pidfile}; exit 0; }}; "
        f"sleep 0.05; done; exit 11"
    )
    res = access.run(host, cmd, timeout=timeout)
    if res.error:
        raise ServiceError(host, f"cannot stop serve: {res.error}")
    if res.exit_code == 10:
        return False
    if res.exit_code != 0:
        raise ServiceError(host, f"serve (pidfile {pidfile}) did not stop: exit {res.exit_code} {res.stderr.strip()}")
    return True


def serve_pid(access: HostAccess, host: str, *, port: int = 9077, name: str = "serve") -> int | None:
    """PID of the gate's running serve on a host, or None."""
    pidfile = f"{WORKDIR}/{name}-{port}.pid"
    res = access.run(host, f"{ALIVE}p=$(cat {pidfile} 2>/dev/null) && alive \"$p\" && echo $p", timeout=10)
    if res.ok and res.stdout.strip().isdigit():
        return int(res.stdout.strip())
    return None


def serve_log_tail(access: HostAccess, host: str, *, port: int = 9077, name: str = "serve", lines: int = 20) -> str:
    res = access.run(host, f"tail -n {lines} {WORKDIR}/{name}-{port}.log 2>/dev/null", timeout=10)
    return res.stdout if res.ok else ""


def wait_healthy(access: HostAccess, inventory: Inventory, hosts: Sequence[str], *, deadline_s: float = 30,
                 port: int | None = None, via: str = "chaos") -> dict[str, str | None]:
    """Poll each host's health from `via` (inside the VPC). Returns host -> None (healthy) or the reason."""
    port = port or inventory.federation_port

    def cmd(host: str) -> str:
        url = f"http://{inventory.hosts[host].private_address}:{port}"
        return f"python3 {AGENT} health --url {shlex.quote(url)} --deadline {deadline_s}"

    with ThreadPoolExecutor(max(1, len(hosts))) as pool:
        futs = {h: pool.submit(access.run, via, cmd(h), timeout=deadline_s + 15) for h in hosts}
        results = {h: f.result() for h, f in futs.items()}
    out: dict[str, str | None] = {}
    for host, res in results.items():
        if res.error:
            out[host] = f"health poll from {via} failed: {res.error}"
            continue
        try:
            doc = json.loads(res.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            out[host] = f"health poll printed no JSON: {res.stderr.strip()[-200:]}"
            continue
        out[host] = None if doc.get("ok") else str(doc.get("error"))
    return out
