"""Stack outputs -> Inventory, naming, and the pulumi CLI wrappers (against a fake `pulumi` on PATH)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from shipgate.hosts.inventory import CAMPAIGN_ID_RE, Target
from shipgate.providers.digitalocean import stack as do

ROOT = Path(__file__).resolve().parents[2]
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGf0sA2qFwjq4b9A0s7oC9k3mQq7nqv3uHk8fHc2yZbM"


def _outputs(**over) -> dict:
    hosts = {
        name: {
            "name": name, "hostname": f"shipgate-c1-{name}", "public_address": f"203.0.113.{i}",
            "private_address": f"10.250.0.{i}", "droplet_id": 470000000 + i, "size": "s-2vcpu-4gb",
            "ssh_user": "root",
        }
        for i, name in enumerate(("node-a", "node-b", "node-c", "chaos"), start=10)
    }
    data = {
        "campaign_id": "c1", "provider": "digitalocean", "region": "nyc3", "vpc_id": "v-1",
        "vpc_cidr": "10.250.0.0/20", "tags": ["ai-memory", "ship-gate", "campaign-c1"], "hosts": hosts,
        "known_hosts": "".join(f"{h['public_address']},{h['private_address']} {KEY}\n" for h in hosts.values()),
        "postgres": {"host": "private-db.example", "port": 25060, "database": "shipgate", "user": "doadmin",
                     "sslmode": "require", "pgvector": True, "cluster_id": "db-1"},
        "postgres_password": "pw/with@odd:chars", "target_ref": "v0.7.0", "dead_man_hours": 8,
    }
    data.update(over)
    return data


def test_naming_follows_digitalocean_alphabets_and_limits():
    assert do.campaign_tag("rc-0.7.0_r1") == "campaign-rc-0-7-0_r1"
    assert do.campaign_tags("c1") == ["ai-memory", "ship-gate", "campaign-c1"]
    assert do.resource_name("rc-0.7.0_r1") == "shipgate-rc-0-7-0-r1"
    assert do.droplet_name("c1", "node-a") == "shipgate-c1-node-a"
    long_a, long_b = "a" * 60 + "-x1", "a" * 60 + "-x2"
    for cid in (long_a, long_b):
        assert CAMPAIGN_ID_RE.match(cid)
        assert len(do.resource_name(cid)) <= 63
        for role in ("node-a", "chaos"):
            name = do.droplet_name(cid, role)
            assert len(name) <= 63 and name.endswith(f"-{role}")
    assert do.resource_name(long_a) != do.resource_name(long_b), "cut names stay distinct per campaign"
    with pytest.raises(ValueError, match="campaign id 'Bad'"):
        do.campaign_tag("Bad")
    with pytest.raises(ValueError, match="unknown host role 'db'"):
        do.droplet_name("c1", "db")


def test_inventory_from_outputs(tmp_path: Path):
    inv = do.inventory_from_stack_outputs(
        _outputs(), ssh_key=tmp_path / "id", known_hosts=tmp_path / "kh", target=Target(kind="binary", path=Path("/x"))
    )
    assert inv.provider == "digitalocean" and inv.target.git_ref == "v0.7.0"
    assert inv.peer_url("node-c") == "http://10.250.0.12:9077"
    assert inv.postgres.dsn().get_secret_value() == (
        "postgres://doadmin:pw%2Fwith%40odd%3Achars@private-db.example:25060/shipgate?sslmode=require")
    assert inv.ssh.known_hosts == tmp_path / "kh"


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"postgres_password": "[secret]"}, "redacted.*--show-secrets"),
        ({"hosts": {}}, "hosts' lacks: node-a, node-b, node-c, chaos"),
        ({"vpc_cidr": None}, "vpc_cidr"),
        ({"postgres": {"host": "h"}}, "postgres.port"),
        ({"campaign_id": "UPPER"}, "campaign id 'UPPER'"),
        ({"known_hosts": f"203.0.113.10 {KEY}\n"}, "no host key for: chaos, node-b, node-c"),
    ],
)
def test_incomplete_outputs_are_named(tmp_path: Path, over: dict, message: str):
    with pytest.raises(do.StackOutputsError, match=message):
        outputs = _outputs(**over)
        do.inventory_from_stack_outputs(outputs, ssh_key=tmp_path / "k", known_hosts=tmp_path / "kh",
                                        target=Target(kind="refpeer", path=Path("/x")))
        do.write_known_hosts(outputs, tmp_path / "kh")


FAKE_PULUMI = """#!{python}
# A stand-in for the pulumi CLI: records its argv, answers from files next to it.
import json, os, sys, time
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "calls.jsonl"), "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
mode = open(os.path.join(here, "mode")).read().strip() if os.path.exists(os.path.join(here, "mode")) else "ok"
if mode == "fail":
    sys.stderr.write("error: no stack named 'campaign-c1' found\\n")
    sys.exit(255)
if mode == "hang":
    time.sleep(60)
if mode == "garbage":
    print("Current stack outputs (3):")
    sys.exit(0)
if sys.argv[1:4] == ["--non-interactive", "stack", "output"]:
    sys.stdout.write(open(os.path.join(here, "outputs.json")).read())
"""


@pytest.fixture
def fake_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fake `pulumi` first on PATH; returns its folder (calls.jsonl, mode, outputs.json)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "pulumi"
    exe.write_text(FAKE_PULUMI.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    (bindir / "outputs.json").write_text(json.dumps(_outputs()))
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return bindir


def _calls(bindir: Path) -> list[list[str]]:
    path = bindir / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_load_inventory_reads_outputs_with_secrets_and_writes_known_hosts(fake_pulumi: Path, tmp_path: Path):
    kh = tmp_path / "run" / "known_hosts"
    inv = do.load_inventory(ssh_key=tmp_path / "id", known_hosts=kh, target=Target(kind="refpeer", path=Path("/x")),
                            stack="campaign-c1", cwd=tmp_path)
    assert _calls(fake_pulumi) == [
        ["--non-interactive", "stack", "output", "--json", "--show-secrets", "--stack", "campaign-c1"]]
    assert inv.postgres.password.get_secret_value() == "pw/with@odd:chars"
    assert kh.read_text().count("ssh-ed25519") == 4
    assert stat.S_IMODE(kh.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("mode", "message"),
    [("fail", r"exited 255: error: no stack named 'campaign-c1'"), ("garbage", "did not print JSON"),
     ("hang", "did not finish within 0.5 s")],
)
def test_pulumi_failures_are_clear(fake_pulumi: Path, tmp_path: Path, mode: str, message: str):
    (fake_pulumi / "mode").write_text(mode)
    with pytest.raises(do.PulumiFailed, match=message):
        do.read_stack_outputs(cwd=tmp_path, timeout_s=0.5)


def test_missing_pulumi_cli_says_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(do.PulumiNotFound, match=r"pulumi CLI .* is not on PATH.*install"):
        do.read_stack_outputs(cwd=tmp_path)


def _invoke(*args: str, path: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path}
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_infra_up_and_down_drive_the_pulumi_cli(fake_pulumi: Path, tmp_path: Path):
    pub = tmp_path / "id_ed25519.pub"
    pub.write_text(KEY + " op@example\n")
    res = _invoke("infra.up", "--campaign", "rc-1.2", "--region", "fra1", "--operator-cidr", "198.51.100.7/32",
                  "--ssh-public-key", str(pub), "--target-ref", "v0.7.0", path=os.environ["PATH"])
    assert res.returncode == 0, res.stderr
    calls = _calls(fake_pulumi)
    assert calls[0] == ["--non-interactive", "stack", "select", "--create", "campaign-rc-1-2"]
    sets = {c[5]: c[7] for c in calls if c[1:3] == ["config", "set"]}
    assert sets == {"shipgate:campaignId": "rc-1.2", "shipgate:region": "fra1",
                    "shipgate:operatorCidrs": "198.51.100.7/32", "shipgate:sshPublicKey": KEY + " op@example",
                    "shipgate:targetRef": "v0.7.0"}
    assert all(c[3:5] == ["--stack", "campaign-rc-1-2"] for c in calls if c[1:3] == ["config", "set"])
    assert calls[-1] == ["--non-interactive", "up", "--yes", "--skip-preview", "--stack", "campaign-rc-1-2"]
    res = _invoke("infra.down", "--campaign", "rc-1.2", path=os.environ["PATH"])
    assert res.returncode == 0, res.stderr
    assert _calls(fake_pulumi)[-1] == ["--non-interactive", "destroy", "--yes", "--skip-preview", "--stack",
                                       "campaign-rc-1-2"]
    (fake_pulumi / "mode").write_text("fail")
    res = _invoke("infra.down", "--campaign", "rc-1.2", path=os.environ["PATH"])
    assert res.returncode == 2 and "invoke janitor --campaign rc-1.2 --yes" in res.stderr


def test_infra_up_without_pulumi_fails_clearly(tmp_path: Path):
    res = _invoke("infra.up", "--campaign", "c1", path=str(tmp_path))
    assert res.returncode == 2
    assert "pulumi CLI ('pulumi') is not on PATH" in res.stderr
