"""scripts/setup stops bad input before it installs anything: one line naming the fix, exit 2."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                                reason="needs root (a private mount namespace to fake /etc/os-release)")
# absolute paths: one test runs the script with a PATH that holds nothing but `id` and `dirname`
UNSHARE, SETPRIV, MOUNT = (shutil.which(t) or t for t in ("unshare", "setpriv", "mount"))
DEBIAN_12 = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
STUB = '#!/bin/sh\necho "stub {name} was called" >&2\nexit 99\n'


@pytest.fixture
def sandbox() -> Iterator[Path]:
    """A world-readable copy of the script (a user other than root can run it wherever the clone lives),
    and a stub apt-get: should a check ever let bad input through, the stub is called, not apt, and the test
    sees it. The script's own temp files land in it too (TMPDIR)."""
    box = Path(tempfile.mkdtemp(prefix="shipgate-setup-"))
    box.chmod(0o755)
    (box / "scripts").mkdir(mode=0o755)
    shutil.copy(ROOT / "scripts" / "setup", box / "scripts" / "setup")
    (box / "stubs").mkdir(mode=0o755)
    (box / "stubs" / "apt-get").write_text(STUB.format(name="apt-get"))
    (box / "stubs" / "apt-get").chmod(0o755)
    yield box
    shutil.rmtree(box)


def run_setup(box: Path, *, os_release: str = DEBIAN_12, path: str | None = None, python: str | None = None,
              as_user: int | None = None) -> subprocess.CompletedProcess[str]:
    (box / "os-release").write_text(os_release)
    env = {"PATH": path or f"{box / 'stubs'}:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/tmp", "TMPDIR": str(box)}
    if python is not None:
        env["PYTHON"] = python
    user = [SETPRIV, f"--reuid={as_user}", f"--regid={as_user}", "--clear-groups", "--"] if as_user else []
    script = f'{MOUNT} --bind "$1" /etc/os-release && shift && exec "$@"'
    return subprocess.run([UNSHARE, "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh",
                           str(box / "os-release"), *user, "/bin/bash", str(box / "scripts" / "setup")],
                          env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def refused(proc: subprocess.CompletedProcess[str]) -> str:
    """The one line of a refusal (exit 2, nothing on stdout, no stub reached)."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("scripts/setup: "), proc.stderr
    return lines[0]


def test_not_root(sandbox: Path) -> None:
    line = refused(run_setup(sandbox, as_user=65534))
    assert "must run as root" in line and "sudo" in line


def test_no_apt(sandbox: Path) -> None:
    bare = sandbox / "bare"
    bare.mkdir()
    for tool in ("id", "dirname"):
        (bare / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    line = refused(run_setup(sandbox, path=str(bare)))
    assert "no apt-get" in line and "Debian 12+ and Ubuntu 24.04+" in line


@pytest.mark.parametrize(("os_release", "named"), [
    ('ID=fedora\nVERSION_ID="40"\n', "fedora 40"),
    ('ID=debian\nVERSION_ID="11"\n', "Debian 11"),
    ("ID=debian\n", "Debian (no VERSION_ID)"),
    ('ID=ubuntu\nVERSION_ID="22.04"\n', "Ubuntu 22.04"),
])
def test_unsupported_distribution(sandbox: Path, os_release: str, named: str) -> None:
    line = refused(run_setup(sandbox, os_release=os_release))
    assert f"unsupported distribution: {named}" in line and "use " in line


def test_python_older_than_3_11(sandbox: Path) -> None:
    old = sandbox / "python3.9"
    old.write_text('#!/bin/sh\n[ "$1" = --version ] && echo "Python 3.9.2" && exit 0\nexit 1\n')
    old.chmod(0o755)
    line = refused(run_setup(sandbox, python=str(old)))
    assert "Python >= 3.11 is required" in line and "Python 3.9.2" in line and "set PYTHON=" in line


def test_python_that_does_not_exist(sandbox: Path) -> None:
    line = refused(run_setup(sandbox, python="/nonexistent/python3"))
    assert "PYTHON=/nonexistent/python3: no such command" in line


@pytest.mark.parametrize("os_release", [DEBIAN_12, 'ID=debian\nVERSION_ID="13"\n', 'ID=ubuntu\nVERSION_ID="24.04"\n'])
def test_supported_systems_pass_every_check_and_reach_the_first_install_step(sandbox: Path, os_release: str) -> None:
    """Past the checks the script installs what is missing (the apt-get stub) and then creates .venv (here
    with a stub Python that passes every check): reaching either stub proves no check refused."""
    python = sandbox / "stubs" / "python3.12"
    python.write_text('#!/bin/sh\ncase "$1" in\n  --version) echo "Python 3.12.3" ;;\n'
                      '  -m) echo "stub python -m $2 was called" >&2; exit 99 ;;\nesac\nexit 0\n')
    python.chmod(0o755)
    proc = run_setup(sandbox, os_release=os_release, python=str(python))
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "stub apt-get was called" in proc.stderr or "stub python -m venv was called" in proc.stderr, proc.stderr
    assert "unsupported" not in proc.stderr and "required" not in proc.stderr
