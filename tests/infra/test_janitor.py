"""The janitor against a fake DigitalOcean API on loopback: real HTTP server, real client, real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_do_api import FakeDoServer, FakeState
from pydantic import SecretStr

from shipgate.providers.digitalocean.janitor import DoApiError, DoClient, delete_leftovers, find_leftovers

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "dop_v1_" + "f00dfeed" * 8
CAMPAIGN = "rc-1.2"  # tag campaign-rc-1-2, name shipgate-rc-1-2
OTHER = "rc-1.20"  # a neighbour whose names share a prefix: must stay untouched
VPC, OTHER_VPC = "vpc-0001", "vpc-0002"


def _world() -> FakeState:
    tag, other_tag = "campaign-rc-1-2", "campaign-rc-1-20"
    shared = ["ai-memory", "ship-gate"]
    st = FakeState(token=TOKEN)
    for i, role in enumerate(("node-a", "node-b", "node-c", "chaos")):
        st.droplets.append({"id": 100 + i, "name": f"shipgate-rc-1-2-{role}", "tags": [*shared, tag], "vpc_uuid": VPC})
        st.droplets.append(
            {"id": 200 + i, "name": f"shipgate-rc-1-20-{role}", "tags": [*shared, other_tag], "vpc_uuid": OTHER_VPC})
    st.droplets.append({"id": 300, "name": "someone-elses", "tags": ["ship-gate"], "vpc_uuid": "vpc-9"})
    st.databases += [
        {"id": "db-1", "name": "shipgate-rc-1-2", "tags": [*shared, tag], "private_network_uuid": VPC},
        {"id": "db-2", "name": "shipgate-rc-1-20", "tags": [*shared, other_tag], "private_network_uuid": OTHER_VPC},
    ]
    st.firewalls += [
        {"id": "fw-1", "name": "shipgate-rc-1-2", "tags": []},
        {"id": "fw-2", "name": "shipgate-rc-1-20", "tags": []},
        {"id": "fw-3", "name": "hand-made", "tags": [tag]},
        {"id": "fw-4", "name": "unrelated", "tags": ["web"]},
    ]
    st.ssh_keys += [{"id": 11, "name": "shipgate-rc-1-2"}, {"id": 12, "name": "shipgate-rc-1-20"},
                    {"id": 13, "name": "laptop"}]
    st.vpcs += [
        {"id": "vpc-default", "name": "default-nyc3", "default": True},
        {"id": VPC, "name": "shipgate-rc-1-2", "default": False},
        {"id": OTHER_VPC, "name": "shipgate-rc-1-20", "default": False},
    ]
    st.tags |= {tag, other_tag, "ai-memory", "ship-gate"}
    return st


@pytest.fixture
def api() -> Iterator[FakeDoServer]:
    server = FakeDoServer(_world())
    yield server
    server.close()


def _cli(api_url: str, *args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGITALOCEAN")}
    if token is not None:
        env["DIGITALOCEAN_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "invoke", "janitor", "--api-url", api_url, *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def test_lists_only_the_campaigns_resources_and_deletes_nothing_without_yes(api: FakeDoServer):
    res = _cli(api.url, "--campaign", CAMPAIGN)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "10 resource(s) found" in out
    for line in ("droplet", "shipgate-rc-1-2-node-a", "shipgate-rc-1-2-chaos", "db-1", "fw-1", "fw-3", "vpc-0001"):
        assert line in out, line
    for absent in ("rc-1-20", "someone-elses", "unrelated", "laptop", "default-nyc3"):
        assert absent not in out.replace("campaign-rc-1-2 ", ""), absent
    assert "run again with --yes" in out
    assert api.requests("DELETE") == []
    # the droplet list took several pages (page size 2 in the fake): pagination was followed
    assert sum(1 for m, p in api.requests("GET") if p == "/v2/droplets") >= 2
    assert TOKEN not in out + res.stderr


def test_yes_deletes_everything_vpc_last_once_empty_and_leaves_neighbours(api: FakeDoServer):
    api.state.faults[("GET", "/v2/droplets")] = [429, 503]
    api.state.faults[("DELETE", "/v2/databases/db-1")] = [500]
    res = _cli(api.url, "--campaign", CAMPAIGN, "--yes", "--poll", "0.05", "--vpc-wait", "60")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "10 of 10 removed, 0 failed" in res.stdout
    deletes = [p for _, p in api.requests("DELETE")]
    vpc_del = deletes.index("/v2/vpcs/vpc-0001")
    for p in ("/v2/droplets/100", "/v2/droplets/103", "/v2/databases/db-1", "/v2/firewalls/fw-1",
              "/v2/firewalls/fw-3", "/v2/account/keys/11"):
        assert deletes.index(p) < vpc_del, p
    assert deletes[-1] == "/v2/tags/campaign-rc-1-2"
    assert "waiting for" in res.stdout, "the VPC still had members right after the deletes, and the janitor waited"
    st = api.state
    assert sorted(d["id"] for d in st.droplets) == [200, 201, 202, 203, 300]
    assert [d["id"] for d in st.databases] == ["db-2"]
    assert sorted(f["id"] for f in st.firewalls) == ["fw-2", "fw-4"]
    assert sorted(k["id"] for k in st.ssh_keys) == [12, 13]
    assert sorted(v["id"] for v in st.vpcs) == sorted(["vpc-default", OTHER_VPC])
    assert "campaign-rc-1-2" not in st.tags and "campaign-rc-1-20" in st.tags
    assert TOKEN not in res.stdout + res.stderr
    # a second run finds nothing
    again = _cli(api.url, "--campaign", CAMPAIGN, "--yes")
    assert again.returncode == 0 and "0 resource(s) found" in again.stdout


def test_a_vpc_that_never_empties_is_reported_and_the_exit_code_is_2(api: FakeDoServer):
    api.state.droplets.append({"id": 999, "name": "stray-untagged", "tags": [], "vpc_uuid": VPC})
    res = _cli(api.url, "--campaign", CAMPAIGN, "--yes", "--poll", "0.05", "--vpc-wait", "0.5")
    assert res.returncode == 2
    assert "FAILED to delete vpc shipgate-rc-1-2" in res.stdout and "stray-untagged" in res.stdout
    assert ("DELETE", "/v2/vpcs/vpc-0001") not in api.requests("DELETE")
    assert any(d["id"] == 999 for d in api.state.droplets), "a droplet without the campaign tag is never deleted"


def test_retries_are_bounded_and_honour_retry_after(api: FakeDoServer):
    api.state.faults[("GET", "/v2/droplets")] = [429] * 10
    api.state.retry_after = "7"
    waits: list[float] = []
    with DoClient(SecretStr(TOKEN), base_url=api.url, max_retries=3, sleep=waits.append) as client:
        with pytest.raises(DoApiError, match=r"GET /v2/droplets: still failing after 4 attempts \(HTTP 429\)"):
            find_leftovers(client, CAMPAIGN)
        assert waits == [7.0, 7.0, 7.0]
        assert "f00d" not in repr(client)
    assert len([p for _, p in api.requests("GET") if p == "/v2/droplets"]) == 4


def test_server_errors_back_off_exponentially_then_succeed(api: FakeDoServer):
    api.state.faults[("GET", "/v2/firewalls")] = [502, 503, 504]
    api.state.retry_after = None
    waits: list[float] = []
    with DoClient(SecretStr(TOKEN), base_url=api.url, backoff_s=0.5, sleep=waits.append) as client:
        found = find_leftovers(client, CAMPAIGN)
    assert waits == [0.5, 1.0, 2.0]
    assert [x.kind for x in found] == ["droplet"] * 4 + ["database", "firewall", "firewall", "ssh_key", "vpc", "tag"]


def test_failed_droplet_deletion_keeps_the_vpc_and_says_why(api: FakeDoServer):
    api.state.faults[("DELETE", "/v2/droplets/101")] = [403]
    log: list[str] = []
    with DoClient(SecretStr(TOKEN), base_url=api.url, max_retries=0) as client:
        found = find_leftovers(client, CAMPAIGN)
        outcome = delete_leftovers(client, CAMPAIGN, found, vpc_wait_s=5, poll_s=0.01, log=log.append)
    failed = {x.kind: why for x, why in outcome.failed}
    assert set(failed) == {"droplet", "vpc"}
    assert "HTTP 403" in failed["droplet"]
    assert "droplet shipgate-rc-1-2-node-b" in failed["vpc"]
    assert any(v["id"] == VPC for v in api.state.vpcs)


def test_missing_token_bad_token_and_bad_campaign_are_clear_errors(api: FakeDoServer):
    res = _cli(api.url, "--campaign", CAMPAIGN, token=None)
    assert res.returncode == 2 and "no DigitalOcean API token: set DIGITALOCEAN_TOKEN" in res.stderr
    wrong = "dop_v1_wrongwrongwrong"
    res = _cli(api.url, "--campaign", CAMPAIGN, token=wrong)
    assert res.returncode == 2 and "HTTP 401" in res.stderr
    assert wrong not in res.stdout + res.stderr
    res = _cli(api.url, "--campaign", "Not A Campaign")
    assert res.returncode == 2 and "campaign id 'Not A Campaign'" in res.stderr
    help_text = subprocess.run([sys.executable, "-m", "invoke", "--help", "janitor"], cwd=ROOT,
                               capture_output=True, text=True, timeout=60, check=True).stdout
    assert "--yes" in help_text and "DIGITALOCEAN_TOKEN" in help_text


def test_pagination_links_to_another_host_never_get_the_token(api: FakeDoServer):
    api.state.next_base = "http://127.0.0.2:9"  # another host (still loopback): must never be contacted
    with DoClient(SecretStr(TOKEN), base_url=api.url, max_retries=0, timeout_s=5) as client:
        droplets = client.list_all("/v2/droplets", "droplets")
    assert len(droplets) == 9, "every page was read, from the configured API only"
    pages = [q.get("page", ["1"])[0] for m, p, q in api.state.log if p == "/v2/droplets"]
    assert pages == ["1", "2", "3", "4", "5"]
