"""schemas/ is exactly what the models generate: regenerate in a temp dir and compare."""

import json
import subprocess
import sys
from pathlib import Path

from jsonschema import Draft202012Validator

from shipgate.evidence.models import ARTIFACTS
from shipgate.evidence.models.schemas import SCHEMA_DIR, schema_text, write_schemas

ROOT = Path(__file__).resolve().parents[2]


def test_checked_in_schemas_match_the_models(tmp_path):
    written = write_schemas(tmp_path)
    assert sorted(p.name for p in written) == sorted(p.name for p in SCHEMA_DIR.glob("*.schema.json"))
    drift = [p.name for p in written if p.read_text() != (SCHEMA_DIR / p.name).read_text()]
    assert drift == [], f"schemas/ drifted from the models; run `invoke schemas`: {drift}"


def test_schema_text_is_deterministic_and_valid_draft_2020_12():
    for kind in ARTIFACTS:
        text = schema_text(kind)
        assert text == schema_text(kind) and text.endswith("}\n")
        schema = json.loads(text)
        Draft202012Validator.check_schema(schema)
        assert list(schema) == sorted(schema)


def test_invoke_schemas_writes_to_a_given_folder(tmp_path):
    out = subprocess.run([sys.executable, "-m", "invoke", "schemas", "--out", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(k.schema_file for k in ARTIFACTS)
    assert str(tmp_path / "phase2.schema.json") in out.stdout
