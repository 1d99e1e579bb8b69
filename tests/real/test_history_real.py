"""`invoke history` end to end against the cached ai-memory 0.6.3, at a tiny shape, on a real lab.

The release list is checked against the fixture copy of the crates.io index (served on loopback). What the
comparison must say of 0.6.3, from docs/release-history.toml and the campaign pinned in test_gate_real: phase 1
red for the recall hang and phase 3 red for the Postgres list cap (both filed findings), phases 2 and 4 green,
every recorded 0.6.3 defect either out of the lab's reach or without a gate check yet: as the record expects.
A new red (say, a new workload finding the title-update defect) must be filed in the record, not absorbed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shipgate.evidence.models.release_history import ReleaseHistoryReport
from shipgate.evidence.validate import check_run
from shipgate.target import releases
from tests.target.test_releases import index_server  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.real]
ROOT = Path(__file__).resolve().parents[2]


def test_history_of_the_pinned_release_matches_the_record(index_server, tmp_path):  # noqa: F811
    if releases.installed(releases.PINNED) is None:
        pytest.fail(f"ai-memory {releases.PINNED} is not in the release cache: "
                    f"`./scripts/install-release {releases.PINNED}` builds it")
    res = subprocess.run(
        [sys.executable, "-m", "invoke", "history", "--releases", releases.PINNED, "--cycles", "1", "--writes", "10",
         "--lab-name", "histr", "--runs-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=1500, env={**os.environ})
    print(res.stderr[-4000:], file=sys.stderr)
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    report = ReleaseHistoryReport.load(folder / "history.json")
    assert res.returncode == report.exit_code == 0, res.stdout[-3000:]
    assert check_run(folder) == []
    (row,) = report.rows
    assert (row.version, row.status, row.outcome, row.surprises) == (releases.PINNED, "judged", "as_expected", [])
    assert (folder / row.run_dir / "index.html").is_file() and row.install and row.install.sha256
    cells = {c.phase: c for c in row.cells}
    assert {p: c.status for p, c in cells.items()} == {1: "fail", 2: "fail", 3: "fail", 4: "pass"}
    assert {c.id for c in cells[1].decisive} == {"recall.answers"}
    assert cells[1].explained_by == ["finding recall-hangs-offline"]
    # phase 2: the wider workload's two measured 0.6.3 losses, and nothing else
    assert {c.id.split(".")[0] for c in cells[2].decisive} <= {"update_title", "bulk_catchup"}
    assert "finding title-update-not-replicated" in cells[2].explained_by
    assert "migrate.reverse.read" in {c.id for c in cells[3].decisive}
    assert {d.outcome for d in row.defects} <= {"uncovered", "out_of_scope", "not_observable", "caught"}
    matrix = (folder / "history.md").read_text()
    assert f"| {releases.PINNED} | fail: recall.answers — red, as recorded | fail: update_title." in matrix
    assert "migrate.reverse.read" in matrix.split("## ")[0]
    html = (folder / "index.html").read_text()
    assert "recall.answers" in html and f'href="{row.run_dir}/index.html' in html
    assert report.settings["phase4"]["cycles"] == 1 and "1 cycles x 10 writes" in report.shape_description


def test_ctrl_c_while_waiting_for_the_lab_lock_stops_cleanly(index_server, tmp_path):  # noqa: F811
    """No lab is built: the lock is held here, so the history waits for it and is interrupted there, even when
    it inherited SIGINT ignored."""
    import fcntl
    import signal
    import threading
    import time

    if releases.installed(releases.PINNED) is None:
        pytest.fail(f"ai-memory {releases.PINNED} is not in the release cache")
    lock = tmp_path / "lab.lock"
    runs = tmp_path / "runs"
    lines: list[str] = []
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        proc = subprocess.Popen(
            [sys.executable, "-m", "invoke", "history", "--releases", f"{releases.PINNED},0.6.1", "--cached-only",
             "--lock", str(lock), "--lab-name", "histi", "--runs-dir", str(runs)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            # started as a script's background job is: SIGINT inherited ignored (the fresh root's run was)
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + 60
            while not any("waiting for the lab lock" in line for line in lines) and time.monotonic() < deadline:
                time.sleep(0.1)  # polled: the line is printed once the history waits for the lock
            assert any("waiting for the lab lock" in line for line in lines), "".join(lines)[-2000:]
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
            reader.join(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
    err = "".join(lines)
    assert proc.returncode == 2, err[-2000:]
    assert "interrupted" in err
    (folder,) = list(runs.iterdir())
    report = ReleaseHistoryReport.load(folder / "history.json")
    assert report.interrupted and report.exit_code == 2
    assert [(r.version, r.status) for r in report.rows] == [(releases.PINNED, "not_run"), ("0.6.1", "not_run")]
    assert check_run(folder) == []
