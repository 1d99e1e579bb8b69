"""The release summary model agrees with upstream's releases/schema.json."""

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from artifacts.strategies import models
from shipgate.models import ReleaseSummary

RELEASES = Path("/work/shared/fixtures/upstream-releases")
if not RELEASES.is_dir():
    RELEASES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "upstream-releases"
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
