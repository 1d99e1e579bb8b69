"""A lab that is up with another target is an error naming both, never a silent substitution (issue 14, item 2).

`invoke lab.up` then `invoke gate --target X` tested the lab's reference peer and said PASS. The target is
compared by kind, by content (sha256: a rebuilt binary at the same path is another target) and by defects.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shipgate.providers import lab

pytestmark = [pytest.mark.lab]
ROOT = Path(__file__).resolve().parents[2]


def _name(tag: str) -> str:
    return tag + format(os.getpid() % 36**3, "x")[:4]


def _gate(name: str, runs: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "invoke", "gate", "--phases", "1", "--lab-name", name,
                           "--runs-dir", str(runs), *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def _script(path: Path, version: str) -> Path:
    path.write_text(f"#!/bin/sh\necho 'ai-memory {version}'\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def lab_name():
    names: list[str] = []

    def make(tag: str) -> str:
        names.append(_name(tag))
        lab.down(names[-1])
        return names[-1]

    yield make
    for name in names:
        report = lab.down(name)
        assert report.clean, report.leftovers


def test_a_lab_up_with_the_reference_peer_refuses_another_target(lab_name, tmp_path: Path) -> None:
    name = lab_name("tgr")
    lab.up(name)
    runs = tmp_path / "runs"
    res = _gate(name, runs, "--target", "/bin/true")
    assert res.returncode == 2, res.stderr
    first = res.stderr.strip().splitlines()[0]
    assert f"lab {name!r} is already up with the bundled reference peer (no defects), not binary /bin/true" in first
    assert f"invoke lab.down --name {name}" in first
    res = _gate(name, runs, "--defects", "quorum_w1")
    assert res.returncode == 2 and "with defects quorum_w1" in res.stderr
    assert not runs.exists() or list(runs.iterdir()) == [], "nothing ran, so no run folder"
    assert lab.load(name) is not None, "the lab that was up stays up"


def test_a_rebuilt_binary_at_the_same_path_is_another_target(lab_name, tmp_path: Path) -> None:
    name = lab_name("tgb")
    binary = _script(tmp_path / "ai-memory", "9.9.1")
    lab.up(name, target=binary)
    before = lab.installed_target_sha256(name)
    _script(binary, "9.9.2")  # `cargo build` again: same path, new content
    runs = tmp_path / "runs"
    res = _gate(name, runs, "--target", str(binary))
    assert res.returncode == 2, res.stderr
    assert f"already up with binary {binary} (sha256 {before[:16]})" in res.stderr
    assert not runs.exists() or list(runs.iterdir()) == []
    inv = lab.up(name, target=binary)  # lab.up itself rebuilds for the new content instead of keeping the old
    assert lab.installed_target_sha256(name) != before and inv.target.version == "ai-memory 9.9.2"


def test_a_lab_up_with_defects_refuses_a_campaign_without_them(lab_name, tmp_path: Path) -> None:
    name = lab_name("tgd")
    lab.up(name, defects=["quorum_w1"])
    res = _gate(name, tmp_path / "runs")
    assert res.returncode == 2
    assert "already up with the bundled reference peer with defects quorum_w1, not the bundled reference peer " \
           "(no defects)" in res.stderr
