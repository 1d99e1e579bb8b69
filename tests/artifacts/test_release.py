"""The release summary model agrees with upstream's releases/schema.json."""

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from artifacts.strategies import models
from shipgate.evidence.models import ReleaseSummary

RELEASES = Path(__file__).resolve().parents[1] / "fixtures" / "upstream" / "releases"
UPSTREAM = Draft202012Validator(json.loads((RELEASES / "schema.json").read_text()))


def test_v063_summary_loads_and_writes_back_unchanged():
    original = json.loads((RELEASES / "v0.6.3" / "summary.json").read_text())
    model = ReleaseSummary.load(RELEASES / "v0.6.3" / "summary.json")
    assert model.dump() == original
    assert list(UPSTREAM.iter_errors(model.dump())) == []
    assert (model.verdict, model.pass_count, [p.name for p in model.phases]) == (
        "pass", 4, ["functional", "federation", "migration", "chaos"])


@settings(deadline=None, max_examples=80)
@given(model=models(ReleaseSummary))
def test_every_release_summary_we_can_write_is_valid_upstream(model):
    assert [e.message for e in UPSTREAM.iter_errors(model.dump())] == []


@pytest.mark.parametrize(("over", "message"), [
    ({"version": "0.6.3"}, "String should match pattern"),
    ({"phases": []}, "List should have at least 1 item"),
    ({"verdict": "error"}, "Input should be 'pass' or 'fail'"),
    ({"nhi_verdict": "pass"}, "Input should be None"),
])
def test_what_upstream_refuses_the_model_refuses(over, message):
    data = json.loads((RELEASES / "v0.6.3" / "summary.json").read_text()) | over
    assert list(UPSTREAM.iter_errors(data))
    with pytest.raises(ValidationError, match=message):
        ReleaseSummary.model_validate(data)


def test_release_summary_from_a_campaign_is_valid_upstream(gate_run):
    from datetime import UTC, datetime

    from shipgate.evidence.models import CampaignSummary
    summary = CampaignSummary.load(gate_run / "campaign-summary.json").model_copy(update={
        "completed_at": datetime(2026, 4, 27, 16, 46, tzinfo=UTC), "duration_s": 840.4,
        "durations_s": {"phase1": 3.2, "phase2": 116.0}})
    release = ReleaseSummary.from_campaign(summary, "v0.7.0", "run-1")
    assert list(UPSTREAM.iter_errors(release.dump())) == []
    assert (release.verdict, release.pass_count, release.fail_count, release.wall_human, release.date) == (
        "pass", 4, 0, "14m", "2026-04-27")
    assert [(p.name, p.wall_human) for p in release.phases] == [
        ("functional", "3s"), ("federation", "1m56s"), ("migration", None), ("chaos", None)]
    assert release.headline == "v0.7.0 — 4/4 phases green — 14m wall — 2026-04-27"


def test_release_summary_of_an_erroring_campaign_says_fail(gate_run):
    from shipgate.evidence.models import CampaignSummary
    summary = CampaignSummary.load(gate_run / "campaign-summary.json")
    results = [r.model_copy(update={"status": "error"}) if r.phase == 3 else r for r in summary.phase_results]
    summary = summary.model_copy(update={"verdict": "error", "exit_code": 2, "overall_pass": False,
                                         "reasons": ["x"], "phase_results": results})
    release = ReleaseSummary.from_campaign(summary, "v0.7.0", "run-1", date="2026-05-01")
    assert (release.verdict, release.pass_count, release.fail_count) == ("fail", 3, 1)
    assert list(UPSTREAM.iter_errors(release.dump())) == []
