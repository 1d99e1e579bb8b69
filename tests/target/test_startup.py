"""What each release needs before its serve starts: a table by version, and the key kept out of the record."""

from __future__ import annotations

from pydantic import SecretStr

from shipgate.target import startup
from shipgate.target.service import ServeSpec


def test_releases_before_070_are_asked_nothing_new():
    for version in ("0.6.0", "0.6.3", "0.6.4", None, "refpeer"):
        assert startup.for_version(version) == startup.Startup()


def test_each_release_line_adds_its_documented_needs():
    v070 = startup.for_version("0.7.0")
    assert v070.api_key and dict(v070.env) == {"AI_MEMORY_FED_SYNC_TRUST_PEER": "1"}
    v081 = startup.for_version("0.8.1")
    assert dict(v081.env) == {"AI_MEMORY_FED_SYNC_TRUST_PEER": "1", "AI_MEMORY_FED_REQUIRE_PEER_ENROLLMENT": "0"}
    v0100 = startup.for_version("0.10.0")
    assert v0100.api_key and v0100.env["AI_MEMORY_REQUIRE_AGENT_ATTESTATION"] == "0" and len(v0100.reasons) == 3


def test_one_key_per_campaign():
    a, b = startup.campaign_key("/runs/a"), startup.campaign_key("/runs/b")
    assert a.get_secret_value() == startup.campaign_key("/runs/a").get_secret_value()
    assert a.get_secret_value() != b.get_secret_value() and len(a.get_secret_value()) >= 32


def test_the_key_never_reaches_the_command_line_or_the_recorded_spec():
    key = "k-" + "x" * 40
    spec = ServeSpec(host="node-a", db="d.db", api_key=SecretStr(key))
    assert key not in " ".join(spec.argv())
    assert "api_key" not in spec.model_dump() and key not in spec.model_dump_json() and key not in repr(spec)
