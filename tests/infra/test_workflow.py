"""The campaign workflow: inputs, always-run teardown, secrets kept out of scripts, and its shell steps run for real."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from shipgate.nemesis import faults

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "campaign.yml"
SECRET_ENV = ("DIGITALOCEAN_TOKEN", "PULUMI_ACCESS_TOKEN", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_BACKEND_URL",
              "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN")


@pytest.fixture(scope="module")
def wf() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


@pytest.fixture(scope="module")
def steps(wf: dict) -> list[dict]:
    (job,) = wf["jobs"].values()
    return job["steps"]


def _step(steps: list[dict], needle: str) -> dict:
    found = [s for s in steps if needle in s.get("run", "") or needle in s.get("uses", "")]
    assert len(found) == 1, f"expected one step with {needle!r}, found {len(found)}"
    return found[0]


def test_dispatch_inputs(wf: dict):
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` as true
    inputs = on["workflow_dispatch"]["inputs"]
    assert set(inputs) == {"target_ref", "campaign_id", "region", "chaos_cycles", "fault_classes", "seed"}
    assert inputs["target_ref"]["required"] and inputs["campaign_id"]["required"]
    assert inputs["region"]["default"] == "nyc3" and inputs["chaos_cycles"]["default"] == "50"
    assert tuple(inputs["fault_classes"]["default"].split(",")) == faults.DEFAULT_FAULTS


def test_input_validation_knows_every_registered_fault_class(steps: list[dict]):
    """The validation step runs before the ship-gate is installed, so it reads the registry's source: every
    registered class is accepted, and the refusal names them all."""
    body = _step(steps, "python3 - <<'PY'")["run"]
    code = body.split("<<'PY'\n", 1)[1].rsplit("PY", 1)[0]
    env = {"CAMPAIGN_ID": "c1", "REGION": "fra1", "CHAOS_CYCLES": "5", "TARGET_REF": "v1", "PATH": os.environ["PATH"]}
    every = subprocess.run([sys.executable, "-c", code], env={**env, "FAULT_CLASSES": ",".join(faults.NAMES)},
                           cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)
    assert every.returncode == 0, every.stdout
    bad = subprocess.run([sys.executable, "-c", code], env={**env, "FAULT_CLASSES": "meteor"}, cwd=ROOT,
                         capture_output=True, text=True, timeout=30, check=False)
    assert bad.returncode == 1 and f"choose from {', '.join(sorted(faults.NAMES))}" in bad.stdout, bad.stdout


def test_builds_provisions_gates_uploads_commits_in_order(steps: list[dict]):
    checkout = next(s for s in steps if s.get("with", {}).get("path") == "ai-memory")
    assert checkout["with"]["ref"] == "${{ inputs.target_ref }}"
    order = [
        _step(steps, "cargo build --release --features sal,sal-postgres"),
        _step(steps, "invoke infra.up"),
        _step(steps, "invoke gate --infra digitalocean"),
        _step(steps, "actions/upload-artifact"),
        _step(steps, "invoke infra.down"),
        _step(steps, "invoke janitor --campaign"),
        _step(steps, "git push"),
        steps[-1],
    ]
    assert [steps.index(s) for s in order] == sorted(steps.index(s) for s in order)
    assert "--target ./ai-memory/target/release/ai-memory" in order[2]["run"]
    assert order[3]["with"]["path"] == "runs/${{ inputs.campaign_id }}"
    assert 'git add -- "runs/$CAMPAIGN_ID"' in order[6]["run"]


def test_teardown_always_runs_and_the_verdict_is_the_gates_exit_code(steps: list[dict]):
    for needle in ("invoke infra.down", "invoke janitor --campaign", "actions/upload-artifact", "git push"):
        assert "always()" in _step(steps, needle).get("if", ""), needle
    assert "--yes" in _step(steps, "invoke janitor --campaign")["run"]
    gate = _step(steps, "invoke gate --infra digitalocean")
    assert "set +e" in gate["run"] and 'echo "code=$code" >> "$GITHUB_OUTPUT"' in gate["run"]
    verdict = steps[-1]
    assert verdict["if"] == "always()"
    assert verdict["env"]["GATE_CODE"] == "${{ steps.gate.outputs.code }}"
    assert 'exit "$GATE_CODE"' in verdict["run"]


def test_secrets_stay_in_step_env_and_are_never_echoed(wf: dict, steps: list[dict]):
    (job,) = wf["jobs"].values()
    for scope in (wf.get("env", {}), job.get("env", {})):
        assert "secrets." not in str(scope), "secrets only in the env of the steps that need them"
    build = _step(steps, "cargo build")
    assert "secrets." not in str(build.get("env", {})), "the code under test builds without secrets"
    for s in steps[: steps.index(build) + 1]:
        if s.get("uses", "").startswith("actions/checkout"):
            assert s["with"]["persist-credentials"] is False, "no git token on disk while the candidate builds"
    for s in steps:
        run = s.get("run", "")
        assert "${{ secrets." not in run and "${{ inputs." not in run, s.get("name")
        assert not re.search(r"^\s*set\s+-[a-z]*x", run, re.M), "no shell tracing"
        for line in run.splitlines():
            if re.search(r"\b(echo|printf|cat|tee)\b", line):
                leaked = [v for v in SECRET_ENV if re.search(rf"\$\{{?{v}\b", line)]
                assert not leaked, f"{s.get('name')}: {line.strip()}"
        for key, value in s.get("env", {}).items():
            if "secrets." in str(value):
                assert value == f"${{{{ secrets.{key} }}}}", f"{key} maps its own secret only"
    assert all(re.search(r"@v\d+$|@stable$", s["uses"]) for s in steps if "uses" in s)


def test_input_validation_step_accepts_good_and_names_bad_inputs(steps: list[dict]):
    body = _step(steps, "python3 - <<'PY'")["run"]
    code = body.split("<<'PY'\n", 1)[1].rsplit("PY", 1)[0]
    good = {"CAMPAIGN_ID": "rc-0.7.0.r1", "REGION": "fra1", "CHAOS_CYCLES": "50", "TARGET_REF": "v0.7.0",
            "FAULT_CLASSES": "kill_primary_mid_write, clock_skew_peer"}
    ok = subprocess.run([sys.executable, "-c", code], env={**good, "PATH": os.environ["PATH"]}, cwd=ROOT,
                        capture_output=True, text=True, timeout=30, check=False)
    assert ok.returncode == 0, ok.stdout
    bad = {"CAMPAIGN_ID": "x; rm -rf /", "REGION": "moon", "CHAOS_CYCLES": "0", "TARGET_REF": "$(id)",
           "FAULT_CLASSES": "meteor", "SEED": "12; id"}
    res = subprocess.run([sys.executable, "-c", code], env={**bad, "PATH": os.environ["PATH"]}, cwd=ROOT,
                         capture_output=True, text=True, timeout=30, check=False)
    assert res.returncode == 1
    for name in ("campaign_id", "region", "chaos_cycles", "fault_classes", "target_ref", "seed"):
        assert f"::error::{name}" in res.stdout, name


@pytest.mark.parametrize(("gate_exit", "seed"), [(0, ""), (1, "424242"), (2, ""), (130, "")])
def test_gate_step_records_the_exit_code_and_the_verdict_step_returns_it(steps, tmp_path: Path, gate_exit: int,
                                                                          seed: str):
    """Exit 0/1 is the verdict; anything else (2, a signal's 130) is an error: the job exits 2."""
    fake = tmp_path / ".venv" / "bin" / "invoke"
    fake.parent.mkdir(parents=True)
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "$(dirname "$0")/args"\nexit {gate_exit}\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    out = tmp_path / "github_output"
    env = {"PATH": os.environ["PATH"], "GITHUB_OUTPUT": str(out), "CAMPAIGN_ID": "c1", "TARGET_REF": "v1",
           "CHAOS_CYCLES": "5", "FAULT_CLASSES": "partition_minority, drop_random_acks", "SEED": seed}
    run = subprocess.run(["bash", "-e", "-c", _step(steps, "invoke gate --infra")["run"]], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=30, check=False)
    assert run.returncode == 0, run.stderr
    assert out.read_text() == f"code={gate_exit}\n"
    args = (fake.parent / "args").read_text().split("\n")
    assert args[:2] == ["gate", "--infra"] and "--campaign-id" in args and "--cycles" in args
    assert [args[i + 1] for i, a in enumerate(args) if a == "--fault"] == ["partition_minority,drop_random_acks"]
    assert [args[i + 1] for i, a in enumerate(args) if a == "--seed"] == ([seed] if seed else [])
    assert "--ssh-key" in args, "the flag the gate's own message names"
    verdict = subprocess.run(["bash", "-e", "-c", steps[-1]["run"]], env={"PATH": os.environ["PATH"],
                             "GATE_CODE": str(gate_exit)}, capture_output=True, text=True, timeout=30, check=False)
    assert verdict.returncode == (gate_exit if gate_exit in (0, 1) else 2)
    if gate_exit not in (0, 1):
        assert "not a verdict" in verdict.stdout
    missing = subprocess.run(["bash", "-e", "-c", steps[-1]["run"]], env={"PATH": os.environ["PATH"], "GATE_CODE": ""},
                             capture_output=True, text=True, timeout=30, check=False)
    assert missing.returncode == 2 and "the gate did not run" in missing.stdout


def test_only_a_verdict_is_committed(steps: list[dict]):
    """runs/<id> is committed as the campaign's verdict only when the gate gave one (exit 0 or 1); an error run
    (exit 2: a usage mistake, a crash, no evidence) is uploaded for diagnosis, never stored as a verdict."""
    commit = _step(steps, "git push")
    condition = commit["if"].replace(" ", "")
    assert "steps.gate.outputs.code=='0'" in condition and "steps.gate.outputs.code=='1'" in condition
    assert "!=''" not in condition
    upload = _step(steps, "actions/upload-artifact")
    assert "steps.gate" not in upload.get("if", ""), "the evidence of an error run is still uploaded"


def test_missing_secrets_stop_the_run_early_without_printing_values(steps: list[dict]):
    check = _step(steps, "repository secret DIGITALOCEAN_TOKEN is not set")
    assert steps.index(check) < steps.index(_step(steps, "cargo build"))
    base = {"PATH": os.environ["PATH"]}

    def run(**env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-e", "-c", check["run"]], env={**base, **env}, capture_output=True,
                              text=True, timeout=30, check=False)

    res = run(DIGITALOCEAN_TOKEN="", PULUMI_ACCESS_TOKEN="", PULUMI_CONFIG_PASSPHRASE="")
    assert res.returncode == 1
    assert "DIGITALOCEAN_TOKEN is not set" in res.stdout and "PULUMI_CONFIG_PASSPHRASE" in res.stdout
    res = run(DIGITALOCEAN_TOKEN="dop_v1_sekrit", PULUMI_ACCESS_TOKEN="", PULUMI_CONFIG_PASSPHRASE="pp-sekrit")
    assert res.returncode == 0 and "sekrit" not in res.stdout + res.stderr
