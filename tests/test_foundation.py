"""The skeleton a new user meets: tasks are listed, unbuilt tasks refuse loudly, the inventory validates."""

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from shipgate.hosts.inventory import Host, Inventory, PostgresEndpoint, SshSettings, Target

ROOT = Path(__file__).resolve().parents[1]
INVOKE = [sys.executable, "-m", "invoke"]


def test_invoke_lists_every_planned_task():
    out = subprocess.run([*INVOKE, "--list"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    for name in ("gate", "phase1", "phase2", "phase3", "phase4", "lab.up", "lab.down", "lab.status",
                 "infra.up", "infra.down", "janitor", "report", "validate", "import-upstream",
                 "schemas", "selftest", "bench"):
        assert f"  {name} " in out.stdout or f"  {name}\n" in out.stdout, name


def _inventory(**over) -> dict:
    hosts = {
        n: Host(name=n, hostname=f"lab-{n}", public_address=f"192.0.2.{i}", private_address=f"10.250.0.{i}")
        for i, n in enumerate(("node-a", "node-b", "node-c", "chaos"), start=10)
    }
    data = dict(
        campaign_id="c-1",
        provider="lab",
        hosts=hosts,
        ssh=SshSettings(key_path=Path("/k"), known_hosts=Path("/kh")),
        postgres=PostgresEndpoint(host="10.250.0.20", database="db", user="u", password="s3cr/et@"),
        target=Target(kind="refpeer", path=Path("/bin/x")),
        vpc_cidr="10.250.0.0/20",
    )
    data.update(over)
    return data


def test_inventory_redacts_the_postgres_password():
    inv = Inventory(**_inventory())
    red = inv.redacted()
    assert "s3cr" not in str(red)
    assert red["postgres"]["dsn"] == "postgres://u:***@10.250.0.20:5432/db"
    assert inv.postgres.dsn().get_secret_value() == "postgres://u:s3cr%2Fet%40@10.250.0.20:5432/db"
    assert inv.peer_url("node-b") == "http://10.250.0.11:9077"


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"campaign_id": "Bad Id"}, "campaign id"),
        ({"hosts": {}}, "inventory lacks hosts: node-a, node-b, node-c, chaos"),
    ],
)
def test_inventory_rejects_bad_input_by_name(over, message):
    with pytest.raises(ValidationError, match=message):
        Inventory(**_inventory(**over))
