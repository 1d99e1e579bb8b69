"""Bad input to `invoke gate`/`phaseN` is refused before anything is provisioned, with the problem named."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["gate", "--phases", "1,9"], "phases must be a non-empty subset of 1,2,3,4"),
        (["gate", "--phases", "one"], "--phases takes a comma list"),
        (["gate", "--campaign-id", "Bad Id"], "--campaign-id 'Bad Id'"),
        (["phase4", "--cycles", "x"], "--cycles takes a whole number"),
        (["phase4", "--fault", "meteor"], "unknown fault class meteor"),
        (["gate", "--infra", "aws"], "--infra must be lab or digitalocean"),
        (["gate", "--target", "/nonexistent/ai-memory"], "--target /nonexistent/ai-memory: no such file"),
        (["gate", "--infra", "digitalocean", "--defects", "quorum_w1"], "only works on the lab"),
        (["gate", "--config", "/nonexistent.toml"], "config file /nonexistent.toml does not exist"),
    ],
)
def test_bad_flags_exit_2_naming_the_problem(args, message, tmp_path):
    res = subprocess.run([sys.executable, "-m", "invoke", *args, "--runs-dir", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert message in res.stderr + res.stdout
    assert list(tmp_path.iterdir()) == [], "nothing was started"
