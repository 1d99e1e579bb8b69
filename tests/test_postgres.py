"""The bundled PostgreSQL + pgvector server: real initdb, real postmaster, real scram logins."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipgate.providers.lab.postgres import PostgresError, PostgresServer, bin_dir

pytestmark = pytest.mark.postgres

_PROBE = (
    "import psycopg, sys\n"
    "with psycopg.connect(sys.argv[1], connect_timeout=5) as c:\n"
    "    c.execute('CREATE TABLE IF NOT EXISTS t (id serial, v vector(3))')\n"
    "    c.execute(\"INSERT INTO t (v) VALUES ('[1,2,3]')\")\n"
    "    print(c.execute(\"SELECT extversion FROM pg_extension WHERE extname = 'vector'\").fetchone()[0])\n"
    "    print(c.execute(\"SELECT v <=> '[1,2,3]' FROM t LIMIT 1\").fetchone()[0])\n"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def group_members(pgid: int) -> list[int]:
    """PIDs (not zombies) whose process group is `pgid`: the postmaster and all its backends."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            out.append(int(entry.name))
    return out


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sgpg-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def server(data_dir: Path) -> Iterator[PostgresServer]:
    srv = PostgresServer(data_dir, port=free_port())
    srv.start()
    yield srv
    srv.stop()


def run_probe(dsn: str, prefix: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*(prefix or []), sys.executable, "-c", _PROBE, dsn],
                          capture_output=True, text=True, timeout=60, check=False)


def test_start_create_connect_stop(data_dir: Path) -> None:
    srv = PostgresServer(data_dir, port=free_port())
    try:
        srv.start()
        pid = srv.pid
        assert pid is not None and alive(pid)
        srv.create_database("gate", "gate_user", "s3cret pass'word")
        srv.create_database("gate", "gate_user", "s3cret pass'word")  # idempotent
        probe = run_probe(srv.dsn("gate", "gate_user", "s3cret pass'word"))
        assert probe.returncode == 0, probe.stderr
        version, distance = probe.stdout.split()
        assert version.startswith("0.8")
        assert float(distance) == pytest.approx(0.0)
        bad = run_probe(srv.dsn("gate", "gate_user", "wrong"))
        assert bad.returncode != 0
        assert "password authentication failed" in bad.stderr
    finally:
        srv.stop()
    assert srv.pid is None
    assert not alive(pid)
    assert group_members(pid) == []
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()
    srv.stop()  # idempotent
    shutil.rmtree(data_dir)
    assert not data_dir.exists()


def test_restart_keeps_data(data_dir: Path) -> None:
    port = free_port()
    srv = PostgresServer(data_dir, port=port)
    try:
        srv.start()
        srv.create_database("keep", "keeper", "pw1")
        assert run_probe(srv.dsn("keep", "keeper", "pw1")).returncode == 0
        srv.stop()
        srv.start()  # second start reuses the cluster: no initdb
        probe = subprocess.run(
            [sys.executable, "-c",
             "import psycopg,sys\nwith psycopg.connect(sys.argv[1]) as c: print(c.execute('SELECT count(*) FROM t').fetchone()[0])",
             srv.dsn("keep", "keeper", "pw1")], capture_output=True, text=True, timeout=30, check=False)
        assert probe.stdout.strip() == "1", probe.stderr
    finally:
        srv.stop()


def test_long_data_dir_uses_short_socket_dir(data_dir: Path) -> None:
    deep = data_dir / ("x" * 60) / ("y" * 40)
    deep.mkdir(parents=True)
    for d in (data_dir, deep.parent):
        d.chmod(0o711)  # the server's user must traverse the parents
    srv = PostgresServer(deep, port=free_port())
    try:
        srv.start()
        sock_dir = srv.socket_dir
        assert not str(sock_dir).startswith(str(deep))
        srv.create_database("d", "u", "p", extensions=())
    finally:
        srv.stop()
    assert not sock_dir.exists()


def test_closed_parent_dir_is_a_clear_error() -> None:
    closed = Path(tempfile.mkdtemp(prefix="sgpg-closed-"))  # mode 0700, owned by root
    try:
        srv = PostgresServer(closed / "data", port=free_port())
        with pytest.raises(PostgresError, match="not traversable"):
            srv.start()
        assert srv.pid is None
    finally:
        shutil.rmtree(closed)


def test_server_runs_from_a_cached_copy_every_user_can_reach(data_dir: Path, monkeypatch) -> None:
    """The wheel sits in .venv, perhaps under a home closed to others (/root, 0700): the server runs from a
    root-owned, world-readable copy keyed by the build, made once (whatever root's umask) and then reused."""
    parent = Path(tempfile.mkdtemp(prefix="sgpg-cache-"))
    parent.chmod(0o755)
    monkeypatch.setenv("SHIPGATE_CACHE_DIR", str(parent / "cache"))
    old_umask = os.umask(0o077)
    try:
        bins = bin_dir()
    finally:
        os.umask(old_umask)
    try:
        assert bins.is_relative_to(parent / "cache" / "postgres")
        for path in [*(p for p in (bins / "postgres").parents if p.is_relative_to(parent)), bins / "postgres"]:
            st = path.stat()
            assert st.st_uid == 0 and st.st_mode & 0o005 == 0o005, (path, oct(st.st_mode))
        marker = next((parent / "cache" / "postgres").iterdir()) / ".shipgate-complete"
        before = marker.stat().st_ino
        assert bin_dir() == bins and marker.stat().st_ino == before  # reused, not copied again
        srv = PostgresServer(data_dir, port=free_port())
        try:
            srv.start()
            assert srv.pid is not None and Path(os.readlink(f"/proc/{srv.pid}/exe")) == bins / "postgres"
            srv.create_database("c", "cu", "cp")  # pgvector: the copy holds lib/ and share/ too
            assert run_probe(srv.dsn("c", "cu", "cp")).returncode == 0
        finally:
            srv.stop()
    finally:
        shutil.rmtree(parent)


def test_bad_arguments() -> None:
    with pytest.raises(PostgresError, match="invalid CIDR"):
        PostgresServer(Path("/tmp/x"), allow_cidrs=["10.0.0.0/33"])
    with pytest.raises(PostgresError, match="invalid port"):
        PostgresServer(Path("/tmp/x"), port=0)


def test_create_database_needs_running_server(data_dir: Path) -> None:
    with pytest.raises(PostgresError, match="not running"):
        PostgresServer(data_dir, port=free_port()).create_database("a", "b", "c")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2")
def test_runs_inside_a_network_namespace(data_dir: Path) -> None:
    """The lab's way: the server lives in its own netns, is administered over the unix socket and is
    reachable over TCP only from inside that namespace."""
    ns = f"sgpgt{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True, timeout=10)
    srv = None
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True, timeout=10)
        srv = PostgresServer(data_dir, port=free_port(), run_prefix=["ip", "netns", "exec", ns])
        srv.start()
        srv.create_database("nsdb", "nsuser", "nspw")
        dsn = srv.dsn("nsdb", "nsuser", "nspw")
        inside = run_probe(dsn, prefix=["ip", "netns", "exec", ns])
        assert inside.returncode == 0, inside.stderr
        outside = run_probe(dsn)  # the root namespace's loopback has no listener on that port
        assert outside.returncode != 0
        pid = srv.pid
        srv.stop()
        assert pid is not None and not alive(pid) and group_members(pid) == []
    finally:
        if srv is not None:
            srv.stop()
        subprocess.run(["ip", "netns", "del", ns], check=False, timeout=10)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare")
def test_forking_prefix_still_gets_a_clean_fast_shutdown(data_dir: Path) -> None:
    """The lab's prefix (`nsenter --pid ...`) forks: `pid` must be the postmaster, and stop() must reach it."""
    srv = PostgresServer(data_dir, port=free_port(), run_prefix=["unshare", "--pid", "--fork", "--"])
    try:
        srv.start()
        pid = srv.pid
        assert pid is not None
        assert Path(os.readlink(f"/proc/{pid}/exe")).name == "postgres"
        assert srv._proc is not None and srv._proc.pid != pid  # the prefix forked
        srv.create_database("f", "fu", "fp")
        assert run_probe(srv.dsn("f", "fu", "fp")).returncode == 0
        pgid = srv._proc.pid
    finally:
        srv.stop()
    assert not alive(pid) and group_members(pgid) == []
    assert "database system is shut down" in (data_dir / "postgres.log").read_text()
