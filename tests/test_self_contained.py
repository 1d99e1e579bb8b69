"""A clone alone is the whole project: no tracked file outside tests/fixtures reaches for a `shared` folder
beside the clone (the development machines have one; a user's clone does not)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_NAME = "shared"  # spelt once, so this file's own patterns do not match themselves
OUTSIDE = [
    re.compile(rf"\.\./{_NAME}\b"),  # a relative path up and over
    re.compile(rf"/work/{_NAME}\b"),  # the development machines' absolute path
    re.compile(rf"/\s*[\"']{_NAME}[\"']"),  # a pathlib join
]
SKIP_DIRS = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis", "runs"}


def tracked_files() -> list[Path]:
    """`git ls-files` in a checkout; in an exported tree (no .git), every file but caches and outputs."""
    if (ROOT / ".git").exists():
        out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True,
                             timeout=60).stdout
        return [ROOT / name for name in out.decode().split("\0") if name]
    return [p for p in ROOT.rglob("*")
            if p.is_file() and not SKIP_DIRS.intersection(p.relative_to(ROOT).parts[:-1])]


def offenders(files: list[Path], root: Path = ROOT) -> list[str]:
    fixtures = root / "tests" / "fixtures"
    found = []
    for path in files:
        if path.is_relative_to(fixtures) or not path.is_file():
            continue
        for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if any(p.search(line) for p in OUTSIDE):
                found.append(f"{path.relative_to(root)}:{lineno}: {line.strip()}")
    return found


def test_no_tracked_file_outside_fixtures_reads_from_a_shared_folder_beside_the_clone() -> None:
    files = tracked_files()
    assert ROOT / "pyproject.toml" in files and len(files) > 100
    assert offenders(files) == []


def test_the_scan_sees_every_spelling_and_skips_only_tests_fixtures(tmp_path: Path) -> None:
    """The check above only means something if it catches each way of reaching outside."""
    bad = {
        "tests/a.py": f'FIXTURES = Path("../{_NAME}/fixtures/upstream-runs")\n',
        "tests/b.py": f'X = Path(__file__).resolve().parents[3] / "{_NAME}" / "fixtures"\n',
        "scripts/c": f"cp /work/{_NAME}/tools/x .\n",
        "docs/d.md": f"see `../../{_NAME}/DESIGN.md`\n",
    }
    fine = {
        "tests/fixtures/upstream/README.md": f"copied from ../{_NAME}/fixtures\n",
        "refpeer/e.py": 'title = "shared"  # a word, not a path\n',
    }
    for name, text in {**bad, **fine}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    found = offenders([tmp_path / name for name in {**bad, **fine}], root=tmp_path)
    assert [line.split(":", 1)[0] for line in found] == list(bad)
