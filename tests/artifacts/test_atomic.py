"""Atomic writes: readers see the old file or the new one, never a torn one; failures leave no debris."""

import json
import threading

import pytest

from shipgate.evidence.atomic import write_bytes, write_json, write_jsonl, write_text
from shipgate.evidence.models import Check, OperationEvent


def test_write_json_of_a_model_and_of_plain_data(tmp_path):
    path = write_json(tmp_path / "a" / "check.json", Check.of("x", 1, 1, True))
    assert json.loads(path.read_text()) == {"id": "x", "expected": 1, "observed": 1, "status": "pass"}
    assert path.read_text().endswith("}\n")
    write_json(tmp_path / "plain.json", {"k": [1, 2]})
    assert json.loads((tmp_path / "plain.json").read_text()) == {"k": [1, 2]}
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "check.json", "plain.json"]


def test_write_jsonl_one_object_per_line(tmp_path):
    events = [OperationEvent(process="p", op="write", type=t, time=float(i)) for i, t in enumerate(("invoke", "ok"))]
    path = write_jsonl(tmp_path / "h.jsonl", events)
    lines = path.read_text().splitlines()
    assert [OperationEvent.model_validate_json(line) for line in lines] == events


def test_nan_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError):
        write_json(tmp_path / "x.json", {"bound": float("nan")})
    assert list(tmp_path.iterdir()) == []


def test_failed_replace_leaves_the_old_state_and_no_temp_file(tmp_path):
    target = tmp_path / "phase2.json"
    target.mkdir()
    with pytest.raises(IsADirectoryError):
        write_text(target, "{}")
    assert [p.name for p in tmp_path.iterdir()] == ["phase2.json"] and target.is_dir()


def test_concurrent_reader_never_sees_a_torn_file(tmp_path):
    path = tmp_path / "summary.json"
    docs = [json.dumps({"n": i, "pad": "x" * 200_000}).encode() for i in range(2)]
    write_bytes(path, docs[0])
    done = threading.Event()
    seen: list[int] = []
    errors: list[str] = []

    def reader() -> None:
        while not done.is_set():
            raw = path.read_bytes()
            try:
                seen.append(json.loads(raw)["n"])
            except ValueError as exc:
                errors.append(f"{len(raw)} bytes: {exc}")

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(200):
            write_bytes(path, docs[i % 2])
    finally:
        done.set()
        thread.join(timeout=60)
    assert errors == []
    assert seen and set(seen) <= {0, 1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_file_mode_is_readable(tmp_path):
    assert (write_text(tmp_path / "x", "y").stat().st_mode & 0o777) == 0o644
