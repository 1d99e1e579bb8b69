"""Strict host-key checking end to end: the host key the program puts in a droplet's user data, served by a
real sshd on loopback, is accepted by paramiko with `RejectPolicy` using only the known_hosts the stack
exports; a host with any other key is refused.

cloud-init's `ssh_keys` module writes `ed25519_private` to /etc/ssh/ssh_host_ed25519_key; here the test
does that step itself and starts sshd in a private mount namespace (its own /run) on 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pulumi
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from do_mocks import BASE_CONFIG, DoMocks

from infra.config import parse_stack_config
from infra.resources import build, stack_outputs
from shipgate.providers.digitalocean.stack import known_hosts_text

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not Path(SSHD).exists() or shutil.which("unshare") is None,
    reason="needs root, sshd and unshare (a private /run for sshd)",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _program_artifacts(mocks: DoMocks) -> tuple[str, str]:
    """(node-a's user data, the exported known_hosts) from the program under mocks."""
    got: dict[str, str] = {}

    @pulumi.runtime.test
    def run():
        c = build(parse_stack_config(BASE_CONFIG))
        outputs = stack_outputs(c)
        return pulumi.Output.all(c.droplets["node-a"].user_data, pulumi.Output.from_input(outputs)).apply(
            lambda v: got.update(user_data=v[0], known_hosts=known_hosts_text(v[1]),
                                 public=v[1]["hosts"]["node-a"]["public_address"])
        )

    run()
    kh_line = next(ln for ln in got["known_hosts"].splitlines() if ln.startswith(got["public"] + ","))
    return got["user_data"], kh_line


class Sshd:
    def __init__(self, workdir: Path, host_key_pem: str, client_pub: str) -> None:
        self.port = _free_port()
        key = workdir / "ssh_host_ed25519_key"
        key.write_text(host_key_pem)
        key.chmod(0o600)
        (workdir / "authorized_keys").write_text(client_pub + "\n")
        cfg = workdir / "sshd_config"
        cfg.write_text(
            f"ListenAddress 127.0.0.1:{self.port}\nHostKey {key}\nPidFile {workdir / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {workdir / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        )
        script = f"mount -t tmpfs none /run && mkdir -p /run/sshd && exec {SSHD} -D -e -f {cfg}"
        self.log = open(workdir / "sshd.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited {self.proc.returncode}: {(workdir / 'sshd.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("sshd did not start listening within 15 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture
def client_key(tmp_path: Path) -> tuple[paramiko.Ed25519Key, str]:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                            serialization.NoEncryption()).decode()
    path = tmp_path / "id_ed25519"
    path.write_text(pem)
    pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return paramiko.Ed25519Key.from_private_key_file(str(path)), pub


@pytest.fixture
def sshd_factory(tmp_path: Path) -> Iterator:
    started: list[Sshd] = []

    def start(name: str, host_key_pem: str, client_pub: str) -> Sshd:
        d = tmp_path / name
        d.mkdir()
        s = Sshd(d, host_key_pem, client_pub)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def _connect(port: int, known_hosts: Path, pkey: paramiko.PKey) -> str:
    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect("127.0.0.1", port=port, username="root", pkey=pkey, timeout=10, banner_timeout=10,
                       auth_timeout=10, allow_agent=False, look_for_keys=False)
        _, stdout, _ = client.exec_command("echo strict-ok", timeout=10)
        return stdout.read().decode().strip()
    finally:
        client.close()


def test_the_generated_host_key_passes_strict_checking_and_another_key_is_refused(
    mocks: DoMocks, tmp_path: Path, client_key, sshd_factory
):
    user_data, kh_line = _program_artifacts(mocks)
    doc = yaml.safe_load(user_data)
    pkey, client_pub = client_key
    droplet = sshd_factory("droplet", doc["ssh_keys"]["ed25519_private"], client_pub)
    impostor_key = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()).decode()
    impostor = sshd_factory("impostor", impostor_key, client_pub)

    keytype, b64 = kh_line.split()[1:3]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{droplet.port} {keytype} {b64}\n[127.0.0.1]:{impostor.port} {keytype} {b64}\n")
    assert _connect(droplet.port, known, pkey) == "strict-ok"
    with pytest.raises(paramiko.BadHostKeyException):
        _connect(impostor.port, known, pkey)
    unknown = tmp_path / "empty_known_hosts"
    unknown.write_text("")
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        _connect(droplet.port, unknown, pkey)
