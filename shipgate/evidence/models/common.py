"""Building blocks every artifact shares: checks, statuses, timings, quantiles, redaction.

A check is the unit of evidence: `{id, expected, observed, status}`. Phase status is derived from
checks only, so no report can be green without at least one passing check behind it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_serializer

CheckStatus = Literal["pass", "fail", "error", "skipped"]
PhaseStatus = CheckStatus
CampaignStatus = Literal["pass", "fail", "error"]
Source = Literal["gate", "upstream"]
ExitCode = Literal[0, 1, 2]

EXIT_CODES: dict[str, int] = {"pass": 0, "fail": 1, "error": 2}
REDACTED = "***"


class ArtifactModel(BaseModel):
    """Base of every artifact: strict keys, upstream aliases on the wire, no NaN/inf (JSON has none).

    Serialisation drops `None` fields, so what was not recorded stays absent on disk; every field that
    may be `None` therefore defaults to `None` (a test enforces this).
    """

    model_config = ConfigDict(
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        allow_inf_nan=False,
    )

    def dump(self) -> dict[str, Any]:
        """The JSON-ready dict written to disk (upstream field names, `None` fields left out)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def to_json(self) -> str:
        """Deterministic JSON text with a trailing newline."""
        return json.dumps(self.dump(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> Self:
        return cls.model_validate_json(text)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        return cls.model_validate_json(Path(path).read_bytes())


class OpenModel(ArtifactModel):
    """Output of the program under test: newer versions add keys, and a new key must not turn the gate red."""

    model_config = ConfigDict(extra="allow")


class Check(ArtifactModel):
    """One established (or not) fact. `expected`/`observed` are JSON values and always written, even null."""

    id: str = Field(min_length=1, description="stable dotted id, e.g. 'node-a.recall_count'")
    expected: JsonValue = Field(description="what the gate required (a value or a description like '>= 190')")
    observed: JsonValue = Field(description="what the gate saw; null when it could not see anything")
    status: CheckStatus
    detail: str | None = Field(None, description="why, in a sentence (required in spirit for fail/error)")

    @model_serializer(mode="wrap")
    def _keep_nulls(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        ordered = {"id": data.pop("id"), "expected": data.pop("expected", None),
                   "observed": data.pop("observed", None)}
        return ordered | data

    @classmethod
    def of(cls, id: str, expected: JsonValue, observed: JsonValue, ok: bool, detail: str | None = None) -> Check:
        """pass when `ok`, fail otherwise: the product either met the expectation or broke it."""
        return cls(id=id, expected=expected, observed=observed, status="pass" if ok else "fail", detail=detail)

    @classmethod
    def error(cls, id: str, expected: JsonValue, detail: str, observed: JsonValue = None) -> Check:
        """The gate could not establish the fact (unreachable host, fault not applied, bad output)."""
        return cls(id=id, expected=expected, observed=observed, status="error", detail=detail)

    @classmethod
    def skipped(cls, id: str, detail: str) -> Check:
        return cls(id=id, expected=None, observed=None, status="skipped", detail=detail)

    def reason(self) -> str:
        """One line for `reasons`: id, status, and what was expected vs seen."""
        text = f"{self.id}: {self.status} (expected {_short(self.expected)}, observed {_short(self.observed)})"
        return f"{text}: {self.detail}" if self.detail else text


def _short(value: JsonValue, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def phase_over_artifacts(statuses: Sequence[str]) -> CampaignStatus:
    """A phase over its artifacts' statuses (phase 1 has one per node): any fail > any error/skipped > pass;
    no artifact is an error."""
    if not statuses:
        return "error"
    if "fail" in statuses:
        return "fail"
    if set(statuses) - {"pass"}:
        return "error"
    return "pass"


def phase_status(checks: Sequence[Check]) -> PhaseStatus:
    """Any fail -> fail; else any error -> error; all skipped -> skipped; else pass. No checks -> error.

    A fail is positive evidence of a product defect, so it outranks an error elsewhere; an empty list is
    an error because a phase with no evidence must never read as green.
    """
    if not checks:
        return "error"
    statuses = {c.status for c in checks}
    if "fail" in statuses:
        return "fail"
    if "error" in statuses:
        return "error"
    if statuses == {"skipped"}:
        return "skipped"
    return "pass"


def check_reasons(checks: Iterable[Check]) -> list[str]:
    """`reasons` of a report: one line per check that is neither pass nor skipped."""
    return [c.reason() for c in checks if c.status in ("fail", "error")]


class Timing(ArtifactModel):
    """When something ran; `duration_s` is measured on a monotonic clock, not finished - started."""

    started_at: datetime
    finished_at: datetime | None = None
    duration_s: float | None = Field(None, ge=0)


class TargetRef(ArtifactModel):
    """What was under test: its kind, what the hosts said it is, and where it came from."""

    kind: Literal["refpeer", "binary", "release"] | None = Field(
        None, description="refpeer (the bundled reference peer), binary (a file given by path) or release "
                          "(a named real release)")
    version: str | None = Field(None, description="`ai-memory --version` as printed")
    git_ref: str | None = None
    commit: str | None = None
    path: str | None = Field(None, description="operator-side path of the installed file")
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$", description="sha256 of the installed file")
    defects: list[str] = Field(default_factory=list, description="seeded reference-peer defects switched on")
    release: str | None = Field(None, description="the release asked for by name, e.g. ai-memory@0.6.3")

    @classmethod
    def of(cls, target: Any) -> TargetRef:
        """From an inventory `Target` (duck-typed: this module knows nothing of the inventory)."""
        kind = target.kind if target.kind in ("refpeer", "binary", "release") else None
        return cls(kind=kind, version=target.version, git_ref=target.git_ref, commit=target.commit,
                   path=str(target.path) if target.kind != "refpeer" else None, sha256=target.sha256,
                   defects=list(target.defects), release=target.release)


class Quantiles(ArtifactModel):
    """Distribution summary of a sample (latencies in ms, times to converge in s)."""

    count: int = Field(ge=0)
    min: float | None = None
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    max: float | None = None
    mean: float | None = None

    @classmethod
    def of(cls, values: Iterable[float]) -> Quantiles:
        """Nearest-rank quantiles; an empty sample has count 0 and no figures (not zeros)."""
        data = sorted(float(v) for v in values)
        if not data:
            return cls(count=0)

        def rank(q: float) -> float:
            return data[max(0, math.ceil(q * len(data)) - 1)]

        return cls(count=len(data), min=data[0], p50=rank(0.50), p90=rank(0.90), p99=rank(0.99),
                   max=data[-1], mean=sum(data) / len(data))


_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def redact_url(url: str) -> str:
    """Replace the password of a URL with `***`; anything that is not a URL with userinfo is returned as is."""
    if not _URL_RE.match(url):
        return url
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if password is None or password == REDACTED:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{REDACTED}@{hostport}"))
