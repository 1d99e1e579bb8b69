"""Secrets never leak: the DigitalOcean token, SSH private keys and the Postgres password appear nowhere in
runs/ (every file: artifacts, histories, junit.xml, index.html, runs/index.html), the progress log or the CI
step summary.

The campaign is made as leaky as it can be: canary tokens and a private key sit in the gate's environment
(as CI puts them there), and the target is hostile in `leak` mode, so the programs that receive the
Postgres DSN (`migrate`) echo it back in their JSON report, their errors and on stderr. The real secrets of
the lab (its Postgres password and its operator's private key) are read from the lab after the run (it is
kept up for that with --keep, then removed with `invoke lab.down`).
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest

from shipgate.providers.lab.layout import LabLayout
from tests.proof import hostile_target
from tests.proof.conftest import lab_down, lab_leftovers, netns_inodes

pytestmark = [pytest.mark.lab, pytest.mark.slow]
CONFIG = """
[phase3]
rows = 50
links = 20
"""


def _key_body_lines(pem: str) -> list[str]:
    """The base64 lines of a private key: any one of them in the output is a leak."""
    return [line.strip() for line in pem.splitlines()
            if line.strip() and not line.startswith("-----") and len(line.strip()) >= 16]


def _canary_key(tmp_path: Path) -> str:
    path = tmp_path / "canary_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "canary", "-f", str(path)], check=True,
                   timeout=30, stdin=subprocess.DEVNULL)
    return path.read_text()


def _places(runs: Path, extra: dict[str, str]) -> dict[str, str]:
    """Every file under runs/ (decoded leniently, so binary files are searched too) plus the given texts."""
    out = {str(p.relative_to(runs)): p.read_bytes().decode("utf-8", "replace")
           for p in sorted(runs.rglob("*")) if p.is_file()}
    out.update(extra)
    return out


def test_no_secret_reaches_runs_logs_junit_or_html(clean_lab_name: Callable[[str], str], start_gate,
                                                   tmp_path: Path) -> None:
    name = clean_lab_name("xsec")
    mode_file = tmp_path / "mode"
    hostile_target.set_mode(mode_file, "leak")
    launcher = hostile_target.write_launcher(tmp_path / "ai-memory-leaky", mode_file)
    config = tmp_path / "gate.toml"
    config.write_text(CONFIG)
    runs = tmp_path / "runs"
    step_summary = tmp_path / "step-summary.md"
    canary_key = _canary_key(tmp_path)
    env_canaries = {
        "DIGITALOCEAN_TOKEN": f"dop_v1_{secrets.token_hex(32)}",
        "DIGITALOCEAN_ACCESS_TOKEN": f"dop_v1_{secrets.token_hex(32)}",
        "PULUMI_ACCESS_TOKEN": f"pul-{secrets.token_hex(20)}",
        "PULUMI_CONFIG_PASSPHRASE": f"canary-{secrets.token_hex(12)}",
        "AWS_SECRET_ACCESS_KEY": f"canary{secrets.token_hex(16)}",
        "SHIPGATE_SSH_PRIVATE_KEY": canary_key,
    }
    gate = start_gate("--phases", "1,3", "--lab-name", name, "--runs-dir", str(runs), "--config", str(config),
                      "--target", str(launcher), "--campaign-id", "secrets", "--keep",
                      env={**env_canaries, "GITHUB_STEP_SUMMARY": str(step_summary)})
    code = gate.finish(timeout=240)
    assert code in (1, 2), gate.output[-3000:]

    layout = LabLayout(name)
    state = json.loads(layout.state_file.read_text())
    password = state["inventory"]["postgres"]["password"]
    operator_key = layout.operator_key.read_text()
    inodes = netns_inodes(name)
    lab_down(name)
    assert lab_leftovers(name, inodes) == []

    canaries = {f"env {k}": v for k, v in env_canaries.items() if k != "SHIPGATE_SSH_PRIVATE_KEY"}
    canaries["postgres password"] = password
    canaries["postgres password (URL-quoted)"] = quote(password, safe="")
    for i, line in enumerate(_key_body_lines(canary_key)):
        canaries[f"canary private key line {i}"] = line
    for i, line in enumerate(_key_body_lines(operator_key)):
        canaries[f"lab operator private key line {i}"] = line
    assert len(password) >= 16 and len(canaries) > 10

    places = _places(runs, {"progress log": gate.output, "step summary": step_summary.read_text()})
    assert {"secrets/campaign-summary.json", "secrets/phase3.json", "secrets/junit.xml", "secrets/index.html",
            "index.html"} <= set(places), sorted(places)
    leaks = [f"{what} in {where}" for where, text in places.items() for what, value in canaries.items()
             if value in text]
    assert not leaks, leaks

    # The test only proves something if the target really was handed the DSN and echoed it to the gate.
    phase3 = json.loads(places["secrets/phase3.json"])
    migrate = next(c for c in phase3["checks"] if c["id"].startswith("migrate."))
    assert migrate["status"] in ("error", "fail") and "***" in json.dumps(phase3), migrate
