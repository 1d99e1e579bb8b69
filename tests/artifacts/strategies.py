"""Hypothesis strategies for every artifact model, derived from the models' own type hints and constraints.

Cross-field rules the models enforce (status follows checks, exit code follows verdict) are applied after
drawing, so every generated instance is one the gate could legitimately write.
"""

from __future__ import annotations

import string
import types
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from hypothesis import strategies as st
from pydantic import BaseModel, JsonValue

from shipgate.evidence.models import (
    EXIT_CODES,
    CampaignSummary,
    ContentComparison,
    PhaseReportBase,
    VerdictScope,
    phase_status,
)

ASCII = st.characters(codec="ascii", exclude_categories=("Cc",))
TEXT = st.text(max_size=12)
FINITE = st.floats(allow_nan=False, allow_infinity=False)
JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | FINITE | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
TIMEZONES = st.sampled_from([None, UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=7))])


def _constraints(metadata: list[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for m in metadata:
        for key in ("ge", "gt", "le", "lt", "min_length", "max_length", "pattern"):
            value = getattr(m, key, None)
            if value is not None:
                found[key] = value
    return found


def for_type(tp: Any, metadata: list[Any] | None = None) -> st.SearchStrategy[Any]:
    """A strategy for a type hint as pydantic understands it (with Field constraints in `metadata`)."""
    c = _constraints(metadata or [])
    origin = get_origin(tp)
    if tp is JsonValue:
        return JSON_VALUES
    if origin is Annotated:
        inner, *extra = get_args(tp)
        return for_type(inner, [*(metadata or []), *extra])
    if tp is type(None) or tp is None:
        return st.none()
    if origin is Literal:
        return st.sampled_from(get_args(tp))
    if origin in (Union, types.UnionType):
        return st.one_of(*(for_type(a, metadata) for a in get_args(tp)))
    if origin is list:
        (item,) = get_args(tp)
        return st.lists(for_type(item), min_size=c.get("min_length", 0), max_size=max(3, c.get("min_length", 0)))
    if origin is dict:
        key, value = get_args(tp)
        return st.dictionaries(for_type(key), for_type(value), max_size=3)
    if tp is bool:
        return st.booleans()
    if tp is int:
        lo = c.get("ge", c.get("gt", -(2**53) - 1) + 1)
        hi = c.get("le", c.get("lt", 2**53 + 1) - 1)
        return st.integers(lo, hi)
    if tp is float:
        return st.floats(min_value=c.get("ge"), max_value=c.get("le"), allow_nan=False, allow_infinity=False)
    if tp is str:
        if "pattern" in c:
            return st.from_regex(c["pattern"], fullmatch=True, alphabet=ASCII)
        return st.text(min_size=c.get("min_length", 0), max_size=max(12, c.get("min_length", 0)))
    if tp is datetime:
        return st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 31), timezones=TIMEZONES)
    if tp is Path:
        return st.text(string.ascii_letters + string.digits + "/._-", min_size=1, max_size=20).map(Path)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return models(tp)
    raise NotImplementedError(f"no strategy for {tp!r}")


def _fix(cls: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    """Apply the cross-field rules the models enforce."""
    if issubclass(cls, PhaseReportBase):
        data["status"] = phase_status(data["checks"])
        if data["source"] == "gate":
            data["pass_"] = data["status"] == "pass"
        if data["status"] == "pass" and data["source"] == "gate":
            data["reasons"] = []
    if issubclass(cls, CampaignSummary):
        data["exit_code"] = EXIT_CODES[data["verdict"]]
        if data["verdict"] == "pass":
            data["reasons"] = []
            data["cause"] = None
        elif data["cause"] is not None:
            data["reasons"] = [data["cause"], *data["reasons"]]
        if data["source"] == "gate":
            data["overall_pass"] = data["verdict"] == "pass"
    if issubclass(cls, VerdictScope):
        real = data["target_kind"] in ("binary", "release")
        data["kind"] = ("self_test" if data["target_kind"] == "refpeer_defects" else "rehearsal" if not real
                        else "partial" if data["gaps"] else "release")
        data["release_decision"] = data["kind"] == "release"
    if issubclass(cls, ContentComparison) and data["mismatched_fields"] is not None:
        data["mismatched_fields"] = max(data["mismatched_fields"], len(data["mismatched"]))
    return data


def models(cls: type[BaseModel]) -> st.SearchStrategy[Any]:
    """Instances of `cls`: every field drawn from its annotation, then validated by the model itself."""
    fields = {name: for_type(f.annotation, f.metadata) for name, f in cls.model_fields.items()}
    return st.fixed_dictionaries(fields).map(lambda d: cls.model_validate(_fix(cls, dict(d))))
