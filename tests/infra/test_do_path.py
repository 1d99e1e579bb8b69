"""The DigitalOcean path as the README gives it: `pulumi up`, `invoke gate`, `pulumi destroy`, the janitor
(issue 14, item 5). The `pulumi` CLI and the DigitalOcean API are the fakes under tests/infra; nothing here
leaves the machine.

How `invoke gate` knows to use the stack: with `--infra auto` (the default) it asks pulumi for the outputs of
the stack named by `--stack`, else `campaign-<id>` for `--campaign-id`, else the selected stack; a stack
with outputs is where it runs, and the plan line says which stack and why. The campaign id is the stack's
own (`campaign_id` output), so the run folder, the inventory and the janitor's tag agree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import fake_pulumi
import pytest

from shipgate.run.settings import load_settings
from shipgate.tasks.wiring import CampaignError, CampaignOptions, prepare

ROOT = Path(__file__).resolve().parents[2]
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGf0sA2qFwjq4b9A0s7oC9k3mQq7nqv3uHk8fHc2yZbM"


def outputs(campaign: str = "rc-1.2", addresses: dict[str, tuple[str, str]] | None = None,
            known_hosts: str | None = None, postgres: dict | None = None) -> dict:
    """Stack outputs as infra/ exports them (the shape `shipgate.providers.digitalocean.stack.StackOutputs` parses)."""
    addresses = addresses or {n: (f"127.0.0.{10 + i}", f"10.250.0.{10 + i}")
                              for i, n in enumerate(("node-a", "node-b", "node-c", "chaos"))}
    hosts = {n: {"name": n, "hostname": f"shipgate-{n}", "public_address": pub, "private_address": priv,
                 "droplet_id": 470000000 + i, "size": "s-2vcpu-4gb", "ssh_user": "root"}
             for i, (n, (pub, priv)) in enumerate(addresses.items())}
    return {
        "campaign_id": campaign, "provider": "digitalocean", "region": "nyc3", "vpc_id": "v-1",
        "vpc_cidr": "10.250.0.0/20", "tags": ["ai-memory", "ship-gate", f"campaign-{campaign.replace('.', '-')}"],
        "hosts": hosts,
        "known_hosts": known_hosts or "".join(f"{h['public_address']} {KEY}\n" for h in hosts.values()),
        "postgres": postgres or {"host": "private-db.example", "port": 25060, "database": "shipgate",
                                 "user": "doadmin", "sslmode": "require", "pgvector": True, "cluster_id": "db-1"},
        "postgres_password": "pw-secret", "target_ref": "v0.7.0", "dead_man_hours": 8,
    }


@pytest.fixture
def pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    fake_pulumi.install(bindir)
    monkeypatch.setenv("PATH", fake_pulumi.path_with(bindir))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return bindir


def _up(bindir: Path, stack: str, out: dict) -> None:
    """What the operator does first: select (create) the stack and `pulumi up`."""
    fake_pulumi.plan(bindir, stack, out)
    for args in (["stack", "select", "--create", stack], ["up", "--yes"]):
        subprocess.run([str(bindir / "pulumi"), *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def operator(tmp_path: Path) -> dict[str, Path]:
    target = tmp_path / "ai-memory"
    target.write_text("#!/bin/sh\necho 'ai-memory 0.7.0'\n")
    target.chmod(0o755)
    key = tmp_path / "id_ed25519"
    key.write_text("a private key\n")
    return {"target": target, "key": key, "runs": tmp_path / "runs"}


def _opts(operator: dict[str, Path], **kw) -> CampaignOptions:
    base = {"settings": load_settings(), "provider": "auto", "target": operator["target"],
            "ssh_key": operator["key"], "runs_dir": operator["runs"]}
    return CampaignOptions(**{**base, **kw})


def test_gate_after_pulumi_up_uses_the_selected_stack_and_its_campaign_id(pulumi: Path, operator: dict) -> None:
    _up(pulumi, "campaign-rc-1-2", outputs("rc-1.2"))
    plan = prepare(_opts(operator))
    assert plan.provider == "digitalocean" and plan.stack == "campaign-rc-1-2"
    assert plan.campaign_id == "rc-1.2" == plan.stack_campaign == plan.inventory.campaign_id, \
        "the run folder and the janitor's tag name the stack's campaign, never a new gate-<time> id"
    assert "Pulumi stack campaign-rc-1-2" in plan.where and "the selected Pulumi stack has outputs" in plan.where
    assert plan.target.kind == "binary" and plan.target.sha256
    assert plan.target.git_ref == plan.inventory.target.git_ref == "v0.7.0", "the stack's target_ref is recorded"


def test_the_stack_is_named_or_found_from_the_campaign(pulumi: Path, operator: dict) -> None:
    _up(pulumi, "campaign-rc-1-2", outputs("rc-1.2"))
    _up(pulumi, "dev", outputs("dev-7"))  # now the selected one
    assert prepare(_opts(operator)).campaign_id == "dev-7"
    by_id = prepare(_opts(operator, campaign_id="rc-1.2"))
    assert (by_id.stack, by_id.campaign_id) == ("campaign-rc-1-2", "rc-1.2")
    assert "--campaign-id has outputs" in by_id.where
    by_name = prepare(_opts(operator, stack="campaign-rc-1-2"))
    assert by_name.campaign_id == "rc-1.2" and "--stack has outputs" in by_name.where
    with pytest.raises(CampaignError, match="--campaign-id rc-9 does not match Pulumi stack dev, whose campaign is "
                                            "dev-7"):
        prepare(_opts(operator, stack="dev", campaign_id="rc-9"))
    with pytest.raises(CampaignError, match="no stack named 'campaign-nope'"):
        prepare(_opts(operator, provider="digitalocean", campaign_id="nope"))


def test_without_a_stack_that_is_up_the_gate_uses_the_lab_and_says_why(pulumi: Path, operator: dict) -> None:
    plan = prepare(_opts(operator, target=None, ssh_key=None))
    assert plan.provider == "lab" and "no Pulumi stack selected" in plan.where
    _up(pulumi, "campaign-rc-1-2", outputs("rc-1.2"))
    subprocess.run([str(pulumi / "pulumi"), "destroy", "--yes"], check=True, capture_output=True, timeout=30)
    plan = prepare(_opts(operator, target=None, ssh_key=None))
    assert plan.provider == "lab" and "has no outputs (not up)" in plan.where
    assert prepare(_opts(operator, target=None, ssh_key=None, provider="lab")).provider == "lab"


def test_a_second_run_on_one_stack_gets_its_own_folder(pulumi: Path, operator: dict) -> None:
    """`invoke gate`, then `invoke phase4 --fault ...` on the same stack: runs/rc-1.2, then runs/rc-1.2.2."""
    _up(pulumi, "campaign-rc-1-2", outputs("rc-1.2"))
    (operator["runs"] / "rc-1.2").mkdir(parents=True)
    plan = prepare(_opts(operator))
    assert plan.campaign_id == "rc-1.2.2" and plan.stack_campaign == "rc-1.2"
    assert "runs/rc-1.2 exists, so this run is runs/rc-1.2.2" in plan.where


def _gate(*args: str, env: dict) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "invoke", "gate", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_messages_name_flags_that_exist(pulumi: Path, operator: dict, tmp_path: Path) -> None:
    _up(pulumi, "campaign-rc-1-2", outputs("rc-1.2"))
    env = {**os.environ}
    res = _gate("--runs-dir", str(operator["runs"]), env=env)
    assert res.returncode == 2
    assert res.stderr.startswith("on DigitalOcean the gate needs --target") and "the selected Pulumi stack" in \
        res.stderr
    res = _gate("--target", str(operator["target"]), "--ssh-key", str(tmp_path / "nope"), "--runs-dir",
                str(operator["runs"]), env=env)
    assert res.returncode == 2 and "give --ssh-key or set SHIPGATE_SSH_KEY" in res.stderr
    assert not operator["runs"].exists(), "a startup error leaves no run folder"
    for flag in ("--target", "--ssh-key", "--stack", "--campaign-id", "--infra", "--destroy"):
        assert flag in _gate("--help", env=env).stdout.replace("--help", ""), flag


def test_infra_up_says_how_to_run_the_gate_next(pulumi: Path, tmp_path: Path) -> None:
    pub = tmp_path / "op.pub"
    pub.write_text(KEY + " op\n")
    fake_pulumi.plan(pulumi, "campaign-rc-1-2", outputs("rc-1.2"))
    res = subprocess.run([sys.executable, "-m", "invoke", "infra.up", "--campaign", "rc-1.2", "--operator-cidr",
                          "198.51.100.7/32", "--ssh-public-key", str(pub)], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env={**os.environ})
    assert res.returncode == 0, res.stderr
    assert "next: invoke gate --target <ai-memory binary> --stack campaign-rc-1-2" in res.stdout
    assert json.loads((pulumi / "stacks" / "campaign-rc-1-2.json").read_text())["campaign_id"] == "rc-1.2"


def test_cloud_options_are_never_silently_dropped_on_the_lab(pulumi: Path, operator: dict) -> None:
    """--ssh-key, --destroy or --stack with no stack up: an error naming why the lab was chosen, not a lab run."""
    with pytest.raises(CampaignError, match=r"--ssh-key, --destroy: DigitalOcean option\(s\), but the campaign "
                                            r"would run on the lab \(auto: no Pulumi stack selected"):
        prepare(_opts(operator, destroy=True))
    with pytest.raises(CampaignError, match="no stack named 'campaign-gone'"):
        prepare(_opts(operator, stack="campaign-gone"))
