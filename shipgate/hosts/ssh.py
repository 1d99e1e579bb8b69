"""Host access over SSH through Fabric, the same for the lab and for DigitalOcean droplets.

Why not plain `Connection.run`: a gate must get *a result* for every command, never an exception that
aborts a phase (the upstream gate lost whole phases to an SSH exit 255 under `set -e`). So `run` returns a
`CommandResult` whose `error` says when the command could not run or timed out. Fabric owns each
connection (key, no ssh_config surprises, host keys checked against the inventory's known_hosts with
`RejectPolicy`, never auto-accepted); commands run on session channels of its transport, which lets many
threads share one connection per host. The socket gets TCP_NODELAY, which paramiko never sets
(measured: 100 commands 4.9 s without, 1.5 s with). A timed-out command is killed on the host by
coreutils `timeout` (it signals the command's whole process group), not merely abandoned.
"""

from __future__ import annotations

import contextlib
import select
import shlex
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import paramiko
from fabric import Config, Connection

from shipgate.hosts.inventory import Inventory
from shipgate.hosts.result import CommandResult, HostError

# Extra seconds the client waits beyond a command's timeout for the host-side kill to be reported.
_KILL_GRACE_S = 2.0
_CLIENT_GRACE_S = 5.0
# Output kept per stream: a command that floods stdout must not exhaust the gate's memory.
MAX_OUTPUT_BYTES = 64 * 1024 * 1024
_ENV_NAME_OK = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


def _env_prefix(env: Mapping[str, str] | None) -> str:
    if not env:
        return ""
    for key in env:
        if not key or key[0].isdigit() or not set(key) <= _ENV_NAME_OK:
            raise ValueError(f"invalid environment variable name {key!r}")
    return "export " + " ".join(f"{k}={shlex.quote(str(v))}" for k, v in env.items()) + "; "


def _classify(exc: BaseException) -> str:
    if isinstance(exc, paramiko.BadHostKeyException):
        return f"hostkey: {exc}"
    if isinstance(exc, paramiko.AuthenticationException):
        return f"auth: {exc}"
    if isinstance(exc, paramiko.SSHException) and "known_hosts" in str(exc):
        return f"hostkey: {exc}"
    if isinstance(exc, (OSError, TimeoutError, EOFError)):
        return f"connect: {exc or type(exc).__name__}"
    return f"connect: {type(exc).__name__}: {exc}"


class HostAccess:
    """SSH access to the inventory's hosts; a context manager; one cached connection per host."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        # Exported before every command on every host (a per-call `env` wins): the target's documented
        # process environment, which its CLI, MCP and serve all need (`shipgate.target.startup`).
        self.session_env: dict[str, str] = {}
        self._conns: dict[str, Connection] = {}
        self._homes: dict[str, str] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def __enter__(self) -> HostAccess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connections --------------------------------------------------------------------------------
    def _lock(self, host: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(host, threading.Lock())

    def _transport(self, host: str) -> paramiko.Transport:
        """The host's live transport, connecting (or reconnecting after a failure) when needed."""
        if host not in self.inventory.hosts:
            raise HostError(host, f"unknown host (inventory has {', '.join(self.inventory.hosts)})")
        with self._lock(host):
            conn = self._conns.get(host)
            if conn is not None and conn.is_connected:
                return conn.transport
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
                self._conns.pop(host, None)
            conn = self._open(host)
            self._conns[host] = conn
            return conn.transport

    def _open(self, host: str) -> Connection:
        entry = self.inventory.hosts[host]
        ssh = self.inventory.ssh
        timeout = ssh.connect_timeout_s
        sock = socket.create_connection((entry.public_address, entry.ssh_port), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Connection(
                host=entry.public_address,
                user=entry.ssh_user,
                port=entry.ssh_port,
                # A Config per connection: Fabric mutates it while connecting, and a shared one raced
                # between run_many threads ("No attribute or config key found for 'gateway'").
                config=Config(ssh_config=paramiko.SSHConfig()),
                connect_kwargs={
                    "sock": sock,
                    "timeout": timeout,
                    "banner_timeout": timeout,
                    "auth_timeout": timeout,
                    "key_filename": [str(ssh.key_path)],
                    "look_for_keys": False,
                    "allow_agent": False,
                },
            )
            conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
            conn.client.load_host_keys(str(ssh.known_hosts))
            conn.open()
        except BaseException:
            sock.close()
            raise
        return conn

    def close(self) -> None:
        with self._locks_guard:
            conns, self._conns = dict(self._conns), {}
        for conn in conns.values():
            with contextlib.suppress(Exception):
                conn.close()

    # -- commands -----------------------------------------------------------------------------------
    def run(self, host: str, command: str, *, timeout: float | None = None,
            env: dict[str, str] | None = None, stdin: str | None = None) -> CommandResult:
        """Run `command` under the host's shell; never raises for remote failures (see CommandResult)."""
        limit = self.inventory.ssh.command_timeout_s if timeout is None else float(timeout)
        if limit <= 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        # Start in the host's HOME (on the lab, sshd would start in root's real home, shared by all hosts).
        script = 'cd "$HOME" 2>/dev/null; ' + _env_prefix({**self.session_env, **(env or {})}) + command
        wrapped = f"timeout -k {_KILL_GRACE_S:g} {limit:g} bash -c {shlex.quote(script)}"
        started = time.monotonic()

        def result(code: int | None, out: bytes = b"", err: bytes = b"", error: str | None = None) -> CommandResult:
            return CommandResult(host=host, command=command, exit_code=code,
                                 stdout=out.decode(errors="replace"), stderr=err.decode(errors="replace"),
                                 duration_s=round(time.monotonic() - started, 6), error=error)

        try:
            transport = self._transport(host)
            chan = transport.open_session(timeout=self.inventory.ssh.connect_timeout_s)
        except HostError as exc:
            return result(None, error=f"connect: {exc}")
        except Exception as exc:
            return result(None, error=_classify(exc))
        try:
            return self._exchange(chan, wrapped, stdin, limit, started, result)
        except Exception as exc:
            self._drop(host)
            return result(None, error=f"ssh: {type(exc).__name__}: {exc}")
        finally:
            chan.close()

    @staticmethod
    def _exchange(chan: paramiko.Channel, wrapped: str, stdin: str | None, limit: float, started: float,
                  result: Callable[..., CommandResult]) -> CommandResult:
        chan.exec_command(wrapped)
        if stdin:
            chan.sendall(stdin.encode())
        chan.shutdown_write()
        out, err = bytearray(), bytearray()
        deadline = started + limit + _KILL_GRACE_S + _CLIENT_GRACE_S
        while True:
            while chan.recv_ready() and len(out) <= MAX_OUTPUT_BYTES:
                out += chan.recv(65536)
            while chan.recv_stderr_ready() and len(err) <= MAX_OUTPUT_BYTES:
                err += chan.recv_stderr(65536)
            if len(out) > MAX_OUTPUT_BYTES or len(err) > MAX_OUTPUT_BYTES:
                stream = "stdout" if len(out) > MAX_OUTPUT_BYTES else "stderr"
                return result(None, bytes(out[:MAX_OUTPUT_BYTES]), bytes(err[:MAX_OUTPUT_BYTES]),
                              f"more than {MAX_OUTPUT_BYTES >> 20} MiB on {stream}; the command was cut off")
            if chan.exit_status_ready() and chan.eof_received:
                break
            if chan.closed:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return result(None, bytes(out), bytes(err), f"timeout after {limit:g}s (no answer from host)")
            select.select([chan], [], [], min(remaining, 1.0))
        while chan.recv_ready():
            out += chan.recv(65536)
        while chan.recv_stderr_ready():
            err += chan.recv_stderr(65536)
        code = chan.recv_exit_status() if chan.exit_status_ready() else None
        if code is None or code < 0:
            if time.monotonic() - started >= limit:
                # `timeout -k` SIGKILLs its whole process group, itself included: no exit status comes back.
                return result(None, bytes(out), bytes(err),
                              f"timeout after {limit:g}s (the command ignored SIGTERM and was killed)")
            return result(None, bytes(out), bytes(err), "ssh: channel closed without an exit status")
        elapsed = time.monotonic() - started
        if code in (124, 137) and elapsed >= limit:
            return result(code, bytes(out), bytes(err), f"timeout after {limit:g}s")
        return result(code, bytes(out), bytes(err))

    def _drop(self, host: str) -> None:
        """Forget a connection that failed mid-command so the next call reconnects."""
        with self._lock(host):
            conn = self._conns.pop(host, None)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def run_many(self, hosts: Sequence[str], command: str | Callable[[str], str], *,
                 timeout: float | None = None) -> dict[str, CommandResult]:
        """Run on every host at once (threads); one result per host, an unreachable host never aborts others.
        `command` may be a function of the host name for per-host commands."""
        names = list(dict.fromkeys(hosts))
        if not names:
            return {}

        def one(name: str) -> CommandResult:
            cmd = command(name) if callable(command) else command
            return self.run(name, cmd, timeout=timeout)

        with ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="ssh") as pool:
            futures = {name: pool.submit(one, name) for name in names}
            return {name: fut.result() for name, fut in futures.items()}

    def spawn(self, host: str, command: str, *, env: dict[str, str] | None = None,
              log: str = "/dev/null", timeout: float | None = None) -> int:
        """Start a long-running command detached from the SSH session and return its PID on the host.

        The command is exec'd (no wrapper shell stays in between), so the PID is the program itself:
        signals, /proc/<pid> and libfaketime evidence all refer to it. Raises HostError when it cannot start.
        """
        line = (f"{_env_prefix(env)}setsid bash -c {shlex.quote('exec ' + command)} "
                f">>{shlex.quote(log)} 2>&1 </dev/null & echo $!")
        res = self.run(host, line, timeout=timeout or 30)
        pid = res.stdout.strip().splitlines()[-1] if res.ok and res.stdout.strip() else ""
        if not pid.isdigit():
            raise HostError(host, f"could not start `{command}`: {res.describe()}")
        return int(pid)

    # -- files --------------------------------------------------------------------------------------
    def _remote_path(self, host: str, path: str) -> str:
        """Relative paths are taken from the host's $HOME, as for commands (SFTP alone would use the home
        directory from /etc/passwd, which on the lab is root's real home, shared by all hosts)."""
        if path.startswith("/"):
            return path
        if host not in self._homes:
            res = self.run(host, 'printf %s "$HOME"', timeout=30)
            if not res.ok or not res.stdout.startswith("/"):
                raise HostError(host, f"cannot resolve $HOME for {path!r}: {res.describe()}")
            self._homes[host] = res.stdout
        return f"{self._homes[host].rstrip('/')}/{path}"

    def put(self, host: str, local: Path, remote: str, *, mode: int | None = None) -> None:
        """Upload one file (raises HostError naming the host when it cannot)."""
        local = Path(local)
        if not local.is_file():
            raise HostError(host, f"cannot upload {local}: not a file")
        remote = self._remote_path(host, remote)
        try:
            transport = self._transport(host)
            with paramiko.SFTPClient.from_transport(transport) as sftp:
                sftp.put(str(local), remote)
                if mode is not None:
                    sftp.chmod(remote, mode)
        except HostError:
            raise
        except Exception as exc:
            raise HostError(host, f"upload {local} -> {remote} failed: {_classify(exc)}") from exc

    def get(self, host: str, remote: str, local: Path) -> None:
        """Download one file (raises HostError naming the host when it cannot)."""
        remote = self._remote_path(host, remote)
        try:
            transport = self._transport(host)
            with paramiko.SFTPClient.from_transport(transport) as sftp:
                sftp.get(remote, str(local))
        except HostError:
            raise
        except Exception as exc:
            raise HostError(host, f"download {remote} -> {local} failed: {_classify(exc)}") from exc
