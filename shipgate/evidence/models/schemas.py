"""JSON Schemas generated from the models: the files under schemas/ are exactly this output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shipgate.evidence.atomic import write_text
from shipgate.evidence.models.registry import ARTIFACTS, ArtifactKind

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_DIR = Path(__file__).resolve().parents[3] / "schemas"


def schema_for(kind: ArtifactKind) -> dict[str, Any]:
    """The schema of one artifact kind (validation mode, upstream aliases, draft 2020-12)."""
    schema = kind.model.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": SCHEMA_DIALECT, "$id": kind.schema_file, **schema}


def schema_text(kind: ArtifactKind) -> str:
    """Deterministic text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(schema_for(kind), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schemas(out_dir: Path = SCHEMA_DIR) -> list[Path]:
    """Write every schema to `out_dir` atomically; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return [write_text(out_dir / k.schema_file, schema_text(k)) for k in ARTIFACTS]


def load_schema(kind: ArtifactKind, schema_dir: Path = SCHEMA_DIR) -> dict[str, Any]:
    return json.loads((schema_dir / kind.schema_file).read_text())
