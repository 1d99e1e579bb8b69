"""The DigitalOcean path end to end, from `pulumi up` to the janitor (issue 14, item 5).

The droplets are lab hosts: real sshd, real SSH with the host keys the stack exports, real phase 1. What a
droplet has and a lab host lacks is made inside each host's own mount namespace only (a tmpfs on
/usr/local/bin for the uploaded target, one on /var/lib holding cloud-init's ready marker); it goes with the
lab. The `pulumi` CLI and the DigitalOcean API are the fakes under tests/infra.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import fake_pulumi
import pytest
from fake_do_api import FakeDoServer, FakeState
from test_do_path import outputs

from shipgate.evidence.models import CampaignSummary, InventoryRecord
from shipgate.evidence.validate import check_run
from shipgate.hosts.ssh import HostAccess
from shipgate.providers import lab
from shipgate.providers.lab import layout as L
from shipgate.providers.lab.build import read_state

pytestmark = [pytest.mark.lab, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
TOKEN = "dop_v1_" + "e2e0" * 16
DROPLET_SETUP = ("mount -t tmpfs -o size=64m,mode=755 shipgate-e2e /usr/local/bin && "
                 "mount -t tmpfs -o size=1m,mode=755 shipgate-e2e /var/lib && "
                 "mkdir -p /var/lib/shipgate && touch /var/lib/shipgate/ready")


def _name() -> str:
    return "dop" + format(os.getpid() % 36**4, "x")[:5]


def _as_droplets(name: str) -> None:
    """Give each lab host what a campaign droplet has after cloud-init; drop the lab's own target copy."""
    state = read_state(L.LabLayout(name))
    assert state is not None
    for role in ("node-a", "node-b", "node-c", "chaos"):
        subprocess.run(["nsenter", f"--target={state.host_pids[role]}", "--mount", "--root", "--wd", "--", "sh", "-c",
                        DROPLET_SETUP],
                       check=True, capture_output=True, timeout=30)
        (L.LabLayout(name).host(role).bin_dir / "ai-memory").unlink()


def _world(campaign_tag: str) -> FakeState:
    st = FakeState(token=TOKEN)
    shared = ["ai-memory", "ship-gate"]
    for i, role in enumerate(("node-a", "node-b", "node-c", "chaos")):
        st.droplets.append({"id": 100 + i, "name": f"shipgate-do-e2e-{role}", "tags": [*shared, campaign_tag],
                            "vpc_uuid": "vpc-e2e"})
    st.databases.append({"id": "db-e2e", "name": "shipgate-do-e2e", "tags": [*shared, campaign_tag],
                         "private_network_uuid": "vpc-e2e"})
    st.vpcs.append({"id": "vpc-e2e", "name": "shipgate-do-e2e", "default": False})
    st.tags |= {campaign_tag, *shared}
    return st


def test_pulumi_up_gate_destroy_janitor(tmp_path: Path) -> None:
    name = _name()
    lab.down(name)
    try:
        inv = lab.up(name)
        candidate = tmp_path / "ai-memory-candidate"
        candidate.write_bytes((L.LabLayout(name).target_dir / "ai-memory").read_bytes())
        candidate.chmod(0o755)
        _as_droplets(name)

        bindir = tmp_path / "bin"
        fake_pulumi.install(bindir)
        pg = inv.postgres
        out = outputs("do-e2e", addresses={n: (h.public_address, h.private_address) for n, h in inv.hosts.items()},
                      known_hosts=inv.ssh.known_hosts.read_text(),
                      postgres={"host": pg.host, "port": pg.port, "database": pg.database, "user": pg.user,
                                "sslmode": "disable", "pgvector": True, "cluster_id": "db-e2e"})
        out["postgres_password"] = pg.password.get_secret_value()
        fake_pulumi.plan(bindir, "campaign-do-e2e", out)
        env = {**os.environ, "PATH": fake_pulumi.path_with(bindir), "HOME": str(tmp_path / "home")}
        pulumi = str(bindir / "pulumi")
        for args in (["stack", "select", "--create", "campaign-do-e2e"], ["up", "--yes"]):  # the README: pulumi up
            subprocess.run([pulumi, *args], check=True, capture_output=True, timeout=30, env=env)

        runs = tmp_path / "runs"
        common = ["--target", str(candidate), "--ssh-key", str(inv.ssh.key_path), "--runs-dir", str(runs)]
        res = subprocess.run([sys.executable, "-m", "invoke", "gate", "--phases", "1", *common], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-4000:]
        lines = [line.split("] ", 1)[-1] for line in res.stderr.splitlines()]
        assert lines[0].startswith("campaign do-e2e: phases 1; chaos: not requested; target ")
        assert "on digitalocean, Pulumi stack campaign-do-e2e (campaign do-e2e; auto: the selected Pulumi stack " \
               "has outputs; --infra lab to use the lab)" in lines[0]
        assert lines[1].startswith("scope: a partial gate on ") and "not a release verdict (phases 2, 3, 4 not run)" \
            in lines[1]
        assert any(f"installing {candidate} as /usr/local/bin/ai-memory" in line for line in lines)
        assert any("Pulumi stack campaign-do-e2e stays up" in line and "invoke janitor --campaign do-e2e" in line
                   for line in lines)

        run = runs / "do-e2e"
        summary = CampaignSummary.load(run / "campaign-summary.json")
        record = InventoryRecord.load(run / "inventory.json")
        assert (summary.verdict, summary.provider, summary.stack) == ("pass", "digitalocean", "campaign-do-e2e")
        assert record.campaign_id == "do-e2e" and record.provider == "digitalocean"
        assert summary.scope is not None and summary.scope.kind == "partial"
        assert summary.target and summary.target.git_ref == "v0.7.0" and summary.target.sha256
        assert check_run(run) == []
        with HostAccess(inv) as access:
            where = access.run("node-b", "command -v ai-memory", timeout=30)
        assert where.stdout.strip() == "/usr/local/bin/ai-memory", "the uploaded target is what ran"

        # `invoke phase1 ... --destroy`: a second run on the same stack, then `pulumi destroy` of that stack
        res = subprocess.run([sys.executable, "-m", "invoke", "phase1", *common, "--destroy"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-4000:]
        assert (runs / "do-e2e.2" / "campaign-summary.json").is_file()
        assert ["--non-interactive", "destroy", "--yes", "--skip-preview", "--stack", "campaign-do-e2e"] in \
            fake_pulumi.calls(bindir)
        assert json.loads((bindir / "stacks" / "campaign-do-e2e.json").read_text()) == {}

        # the janitor looks under the campaign id the run recorded, and finds the campaign's tagged leftovers
        api = FakeDoServer(_world("campaign-do-e2e"))
        try:
            jenv = {**env, "DIGITALOCEAN_TOKEN": TOKEN}
            res = subprocess.run([sys.executable, "-m", "invoke", "janitor", "--campaign", record.campaign_id,
                                  "--yes", "--api-url", api.url, "--vpc-wait", "30", "--poll", "0.05"], cwd=ROOT,
                                 env=jenv, capture_output=True, text=True, timeout=120)
            assert res.returncode == 0, res.stdout + res.stderr
            assert "7 resource(s) found" in res.stdout  # 4 droplets, the database, the VPC, the tag
            assert not api.state.droplets and not api.state.databases and not api.state.vpcs
        finally:
            api.close()
    finally:
        report = lab.down(name)
        assert report.clean, report.leftovers
