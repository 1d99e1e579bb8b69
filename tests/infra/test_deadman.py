"""The dead-man switch's shell, run for real: arming fixes the deadline once (a reboot does not move it), the
timer's script leaves a droplet alone before the deadline and powers it off after.

Each run happens in a private mount namespace whose /var/lib is a fresh tmpfs, with `systemctl` and `logger`
replaced by recorders on PATH, so nothing on this machine is touched.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from infra.cloud_init import DEADLINE_FILE, DEADMAN_SCRIPT, render_user_data

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                                reason="needs root and unshare (a private /var/lib)")


@pytest.fixture
def doc() -> dict:
    text = render_user_data(hostname="h", dead_man_minutes=90, host_key_private="k", host_key_public="p")
    return yaml.safe_load(text)


def _sandbox(tmp_path: Path, doc: dict, steps: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    calls = tmp_path / "calls"
    for tool in ("systemctl", "logger"):
        exe = bindir / tool
        exe.write_text(f'#!/bin/sh\necho "{tool} $*" >> {calls}\n')
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    script = tmp_path / "deadman.sh"
    script.write_text(next(f["content"] for f in doc["write_files"] if f["path"] == DEADMAN_SCRIPT))
    script.chmod(0o755)
    arm = doc["bootcmd"][0]
    assert arm[:2] == ["sh", "-c"]
    body = "mount -t tmpfs none /var/lib && " + steps.replace("ARM", f"sh -c '{arm[2]}'").replace("CHECK", str(script))
    res = subprocess.run(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", body],
                         env={"PATH": f"{bindir}:/usr/bin:/bin:/usr/sbin:/sbin"}, capture_output=True, text=True,
                         timeout=30, check=False)
    return res, calls


def test_arming_fixes_the_deadline_once(tmp_path: Path, doc: dict):
    res, _ = _sandbox(tmp_path, doc, f"before=$(date +%s); ARM; first=$(cat {DEADLINE_FILE}); "
                                     f"echo 1234567 > {DEADLINE_FILE}; ARM; echo $before $first $(cat {DEADLINE_FILE})")
    assert res.returncode == 0, res.stderr
    before, first, rearmed = map(int, res.stdout.split())
    assert 90 * 60 <= first - before <= 90 * 60 + 60
    assert rearmed == 1234567, "arming at a later boot keeps the deadline already fixed"


def test_the_timer_powers_off_only_after_the_deadline(tmp_path: Path, doc: dict):
    res, calls = _sandbox(tmp_path, doc, "ARM; CHECK; echo checked-early")
    assert res.returncode == 0 and "checked-early" in res.stdout, res.stderr
    assert not calls.exists(), "nothing happens before the deadline"
    res, calls = _sandbox(tmp_path, doc, f"ARM; echo $(( $(date +%s) - 1 )) > {DEADLINE_FILE}; CHECK")
    assert res.returncode == 0, res.stderr
    recorded = calls.read_text().splitlines()
    assert recorded[-1] == "systemctl poweroff"
    assert recorded[0].startswith("logger -t shipgate-deadman dead-man deadline")
