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
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field, SecretStr

from shipgate.client import calls, output
from shipgate.hosts import shell
from shipgate.hosts.inventory import Inventory
from shipgate.hosts.result import CommandResult
from shipgate.hosts.shell import WORKDIR

if TYPE_CHECKING:  # the transport is only a type here: reading answers must not load paramiko
    from shipgate.hosts.ssh import HostAccess


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
    api_key: SecretStr | None = Field(
        None, exclude=True, description="the campaign's key, written to the serve's config file (0.7.0+); never recorded")

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

    @property
    def home(self) -> str:
        """The serve's own HOME when it needs a config file (relative to the host's home): the product reads
        `$HOME/.config/ai-memory/config.toml` and nothing else, and every CLI call rewrites the host's own."""
        return f"{WORKDIR}/{self.name}-{self.port}.home"


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
            access.put(host, calls.SOURCE, f"{homes[host]}/{calls.PATH}", mode=0o755)
        except Exception as exc:
            raise ServiceError(host, f"cannot upload the host agent: {exc}") from exc


def agent(access: HostAccess, host: str, args: Sequence[str], *, timeout: float,
          stdin: str | None = None) -> CommandResult:
    """Run the host agent on `host` with the given arguments (built by `shipgate.client.calls`)."""
    return access.run(host, calls.command(args), timeout=timeout, stdin=stdin)


def agent_json(access: HostAccess, host: str, args: Sequence[str], *, timeout: float) -> dict:
    """Run the agent and parse its one JSON object; ServiceError when that is impossible."""
    doc, why = output.agent_object(agent(access, host, args, timeout=timeout), f"host agent {args[0]}")
    if doc is None:
        raise ServiceError(host, str(why))
    return doc


def start_serve(access: HostAccess, spec: ServeSpec, *, timeout: float = 20) -> int:
    """Start serve in the background and return its PID (refuses if one from the gate still runs)."""
    env = {"AI_MEMORY_DB": spec.db, **spec.env}
    env_words = " ".join(shlex.quote(f"{k}={v}") for k, v in env.items())
    pidfile, log = shell.word(spec.pidfile), shell.word(spec.log)
    config, stdin = "", None
    if spec.api_key is not None:
        # the key reaches the file through stdin, never a command line; the serve reads it only with
        # AI_MEMORY_NO_CONFIG unset and HOME at the folder holding .config/ai-memory/config.toml
        cfg = f"{spec.home}/.config/ai-memory"
        config = f"mkdir -p {shell.word(cfg)} && (umask 077 && cat > {shell.word(cfg + '/config.toml')}) && "
        stdin = f"api_key = {json.dumps(spec.api_key.get_secret_value())}\n"
        env_words = f'-u AI_MEMORY_NO_CONFIG HOME="$HOME"/{shell.word(spec.home)} {env_words}'
    cmd = (
        f"mkdir -p {WORKDIR} && {config}"
        f"{shell.PROCESS}if [ -f {pidfile} ] && {shell.alive(shell.contents(spec.pidfile))}; then "
        f"echo \"serve already running as pid $(cat {pidfile})\" >&2; exit 3; fi; "
        f"nohup env {env_words} {shlex.join(spec.argv())} >> {log} 2>&1 < /dev/null & "
        f"echo $! > {pidfile}; echo $!"
    )
    res = access.run(spec.host, cmd, timeout=timeout, stdin=stdin)
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
    pf, p = shell.word(pidfile), shell.var("p")
    gone = shell.gone(p, port)
    cmd = (
        f"{shell.PROCESS}[ -f {pf} ] || exit 10; p=$(cat {pf}); "
        f"if ! {shell.alive(p)}; then rm -f {pf}; exit 10; fi; "
        f"kill -{shell.word(signal)} {p}; kill -CONT {p} 2>/dev/null; "
        f"if {shell.poll(gone, deadline_s=max(1, int(timeout) - 2), interval_s=0.05)}; then rm -f {pf}; exit 0; fi; "
        f"kill -KILL {p} 2>/dev/null; "
        f"if {shell.poll(gone, deadline_s=2, interval_s=0.05)}; then rm -f {pf}; exit 0; fi; exit 11"
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
    res = access.run(host, f"{shell.PROCESS}p=$(cat {shell.word(pidfile)} 2>/dev/null) && "
                           f"{shell.alive(shell.var('p'))} && echo $p", timeout=10)
    if res.ok and res.stdout.strip().isdigit():
        return int(res.stdout.strip())
    return None


def serve_log_tail(access: HostAccess, host: str, *, port: int = 9077, name: str = "serve", lines: int = 20) -> str:
    res = access.run(host, f"tail -n {int(lines)} {shell.word(f'{WORKDIR}/{name}-{port}.log')} 2>/dev/null",
                     timeout=10)
    return res.stdout if res.ok else ""


def wait_healthy(access: HostAccess, inventory: Inventory, hosts: Sequence[str], *, deadline_s: float = 30,
                 port: int | None = None, via: str = "chaos") -> dict[str, str | None]:
    """Poll each host's health from `via` (inside the VPC). Returns host -> None (healthy) or the reason."""
    port = port or inventory.federation_port

    def cmd(host: str) -> str:
        return calls.command(calls.health(f"http://{inventory.hosts[host].private_address}:{port}",
                                            deadline_s=deadline_s))

    with ThreadPoolExecutor(max(1, len(hosts))) as pool:
        futs = {h: pool.submit(access.run, via, cmd(h), timeout=deadline_s + 15) for h in hosts}
        results = {h: f.result() for h, f in futs.items()}
    out: dict[str, str | None] = {}
    for host, res in results.items():
        doc, why = output.agent_object(res, f"health poll from {via}")
        out[host] = why if doc is None else None if doc.get("ok") else str(doc.get("error"))
    return out
