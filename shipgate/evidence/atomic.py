"""Atomic file writes: a reader (or a crash) never sees half an artifact.

The data goes to a temporary file in the same directory, is flushed and fsynced, then renamed over the
target with `os.replace` (atomic on POSIX); the directory is fsynced so the rename itself survives a crash.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel


def write_bytes(path: str | Path, data: bytes, mode: int = 0o644) -> Path:
    """Write `data` to `path` atomically and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, data: Any) -> Path:
    """Write a model (via its `to_json`/`dump`) or plain JSON data, indented, with a trailing newline."""
    if hasattr(data, "to_json"):
        text = data.to_json()
    elif isinstance(data, BaseModel):
        text = data.model_dump_json(indent=2, by_alias=True, exclude_none=True) + "\n"
    else:
        text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    return write_text(path, text)


def write_jsonl(path: str | Path, items: Any) -> Path:
    """Write one JSON object per line (models are dumped compactly); the whole file is replaced atomically."""
    lines = []
    for item in items:
        obj = item.dump() if hasattr(item, "dump") else item
        lines.append(json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":")))
    return write_text(path, "".join(line + "\n" for line in lines))


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
