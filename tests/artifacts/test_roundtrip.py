"""For every artifact type: model -> JSON -> schema-valid -> model is the identity."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from artifacts.strategies import models
from shipgate.evidence.models import ARTIFACTS
from shipgate.evidence.models.schemas import load_schema


@pytest.mark.parametrize("kind", ARTIFACTS, ids=lambda k: k.name)
@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_model_json_schema_model_identity(kind, data):
    model = data.draw(models(kind.model))
    text = model.to_json()
    doc = json.loads(text)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in
              Draft202012Validator(load_schema(kind)).iter_errors(doc)]
    assert errors == []
    back = kind.model.model_validate(doc)
    assert back == model
    assert back.to_json() == text
