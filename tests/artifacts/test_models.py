"""The models' own rules: check precedence, null-keeping checks, consistency of status/pass/reasons, redaction."""

import json
import types
import typing
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from shipgate.evidence.models import (
    ARTIFACTS,
    CampaignSummary,
    Check,
    InventoryRecord,
    MigrateReport,
    Phase2Report,
    Phase4Report,
    Quantiles,
    phase_status,
    redact_url,
)
from shipgate.hosts.inventory import Host, Inventory, PostgresEndpoint, SshSettings, Target

P, F, E, S = (Check(id=s, expected=1, observed=1, status=s) for s in ("pass", "fail", "error", "skipped"))


@pytest.mark.parametrize(
    ("checks", "status"),
    [([], "error"), ([P], "pass"), ([P, S], "pass"), ([S, S], "skipped"), ([P, E], "error"),
     ([E, F], "fail"), ([P, F, E, S], "fail")],
)
def test_phase_status_precedence(checks, status):
    assert phase_status(checks) == status


def test_check_always_writes_expected_and_observed_even_null():
    data = Check.error("node-a.stats", ">= 1", "host unreachable").dump()
    assert list(data) == ["id", "expected", "observed", "status", "detail"]
    assert data["observed"] is None
    assert Check.model_validate(data) == Check.error("node-a.stats", ">= 1", "host unreachable")


def test_from_checks_derives_status_pass_and_reasons():
    ok = Phase2Report.from_checks([Check.of("phase2.ok", "> 0", 200, True)], ok=200)
    assert (ok.status, ok.pass_, ok.reasons) == ("pass", True, [])
    assert ok.dump()["pass"] is True and "pass_" not in ok.dump()
    bad = Phase2Report.from_checks([Check.of("phase2.counts.b", ">= 190", 166, False, "fan-out aborted")])
    assert (bad.status, bad.pass_) == ("fail", False)
    assert bad.reasons == ["phase2.counts.b: fail (expected \">= 190\", observed 166): fan-out aborted"]


def test_a_report_without_checks_is_an_error_never_a_pass():
    r = Phase4Report.from_checks([], error="ssh to chaos failed")
    assert (r.status, r.pass_, r.reasons) == ("error", False, ["ssh to chaos failed"])


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"status": "pass"}, "status 'pass' contradicts its checks, which give 'fail'"),
        ({"pass": True}, "pass=True contradicts status 'fail'"),
    ],
)
def test_gate_reports_cannot_contradict_their_checks(over, message):
    data = Phase2Report.from_checks([F]).dump() | over
    with pytest.raises(ValidationError, match=message):
        Phase2Report.model_validate(data)


def test_passing_gate_report_must_have_empty_reasons():
    data = Phase2Report.from_checks([P]).dump() | {"reasons": [""]}
    with pytest.raises(ValidationError, match=r"reasons == \[\]"):
        Phase2Report.model_validate(data)


def test_imported_report_keeps_upstream_pass_beside_our_status():
    r = Phase2Report.model_validate({"phase": 2, "pass": True, "reasons": [], "status": "error", "checks": [E],
                                     "source": "upstream"})
    assert r.pass_ is True and r.status == "error"


def test_summary_exit_code_and_overall_pass_follow_the_verdict():
    base = dict(campaign_id="c", reasons=["x"], phases_requested=[1], phases_run=[])
    with pytest.raises(ValidationError, match="exit_code 0 contradicts verdict 'error'"):
        CampaignSummary(verdict="error", exit_code=0, overall_pass=False, **base)
    with pytest.raises(ValidationError, match="overall_pass=True contradicts verdict 'fail'"):
        CampaignSummary(verdict="fail", exit_code=1, overall_pass=True, **base)
    s = CampaignSummary(verdict="fail", exit_code=1, overall_pass=False, **base)
    assert s.dump()["exit_code"] == 1


def test_models_reject_nan_which_json_cannot_carry():
    with pytest.raises(ValidationError, match="finite"):
        Quantiles(count=1, p50=float("nan"))


def test_quantiles_nearest_rank_and_empty_sample():
    q = Quantiles.of(range(1, 101))
    assert (q.count, q.min, q.p50, q.p90, q.p99, q.max, q.mean) == (100, 1, 50, 90, 99, 100, 50.5)
    assert Quantiles.of([]).dump() == {"count": 0}


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("postgres://ai_memory:ai_memory_test@127.0.0.1:5433/db", "postgres://ai_memory:***@127.0.0.1:5433/db"),
        ("postgresql://u:p%40ss@h/db?sslmode=require", "postgresql://u:***@h/db?sslmode=require"),
        ("sqlite:///tmp/phase3-source.db", "sqlite:///tmp/phase3-source.db"),
        ("postgres://u@h/db", "postgres://u@h/db"),
        ("not a url", "not a url"),
    ],
)
def test_url_passwords_are_redacted(url, redacted):
    assert redact_url(url) == redacted


def test_migrate_report_never_holds_a_password():
    r = MigrateReport(from_url="sqlite:///x.db", to_url="postgres://a:secret@h:5432/d", memories_read=1,
                      memories_written=1, batches=1, errors=[], dry_run=False)
    assert "secret" not in r.to_json()


def test_inventory_record_is_the_redacted_inventory():
    hosts = {n: Host(name=n, hostname=n, public_address="192.0.2.1", private_address="10.0.0.1")
             for n in ("node-a", "node-b", "node-c", "chaos")}
    inv = Inventory(campaign_id="c-1", provider="lab", created_at=datetime(2026, 1, 1, tzinfo=UTC), hosts=hosts,
                    ssh=SshSettings(key_path=Path("/k"), known_hosts=Path("/kh")),
                    postgres=PostgresEndpoint(host="10.0.0.9", database="d", user="u", password="pw-secret"),
                    target=Target(kind="refpeer", path=Path("/bin/x")), vpc_cidr="10.0.0.0/24")
    rec = InventoryRecord.from_inventory(inv)
    assert "pw-secret" not in rec.to_json()
    assert json.loads(rec.to_json())["postgres"]["dsn"] == "postgres://u:***@10.0.0.9:5432/d"
    with pytest.raises(ValidationError, match="'\\*\\*\\*'"):
        InventoryRecord.model_validate(json.loads(rec.to_json()) | {
            "postgres": json.loads(rec.to_json())["postgres"] | {"password": "pw-secret"}})


def _models(cls: type[BaseModel], seen: set[type]) -> None:
    if cls in seen:
        return
    seen.add(cls)
    for f in cls.model_fields.values():
        stack = [f.annotation]
        while stack:
            tp = stack.pop()
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                _models(tp, seen)
            stack.extend(typing.get_args(tp))


def test_every_nullable_field_defaults_to_none():
    """Serialisation drops None, so a nullable field without a None default could not be read back."""
    seen: set[type] = set()
    for kind in ARTIFACTS:
        _models(kind.model, seen)
    offenders = []
    for cls in seen:
        for name, f in cls.model_fields.items():
            nullable = f.annotation is None or type(None) in typing.get_args(f.annotation) or (
                isinstance(f.annotation, types.UnionType) and type(None) in f.annotation.__args__)
            if (nullable or "JsonValue" in str(f.annotation)) and f.is_required() and cls is not Check:
                offenders.append(f"{cls.__name__}.{name}")
    assert offenders == []
