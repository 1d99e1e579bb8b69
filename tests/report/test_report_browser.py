"""A real headless Chromium loads every kind of page with no console output and takes a screenshot."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from runbuilder import build_campaign

from shipgate.evidence.report import render_campaign, render_index
from shipgate.evidence.upstream import import_upstream

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "upstream" / "runs"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("site")
    for kind in ("pass", "fail", "error"):
        build_campaign(root, f"gate-{kind}", kind, seed=7, analysis="# Notes\n\n*Looks* `fine`.\n")
    upstream = tmp_path_factory.mktemp("upstream-src")
    for run in ("soak-v0.6.0-r1", "soak-v0.6.0-r2"):
        shutil.copytree(FIXTURES / run, upstream / run)
    import_upstream(upstream, root)
    broken = root / "gate-broken"
    shutil.copytree(root / "gate-pass", broken)
    (broken / "phase2.json").write_bytes(b"")
    (broken / "phase4.json").write_text("cycle 1 ok\ncycle 2 ok\n")
    (broken / "campaign-summary.json").write_text("{not json")
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        render_campaign(d)
    render_index(root)
    return root


PAGES = ["index.html", "gate-pass/index.html", "gate-fail/index.html", "gate-error/index.html",
         "gate-broken/index.html", "soak-v0.6.0-r1/index.html", "soak-v0.6.0-r2/index.html"]


@pytest.mark.parametrize("page", PAGES)
def test_chromium_loads_page_without_console_errors(site: Path, page: str, chromium: Callable[..., object],
                                                    tmp_path: Path) -> None:
    shot = tmp_path / (page.replace("/", "_") + ".png")
    result = chromium(site / page, shot)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.console == [], "\n".join(result.console)
    data = shot.read_bytes()
    assert data.startswith(PNG)
    assert len(data) > 20_000  # a rendered page with text and plots, not a blank frame
    keep = os.environ.get("SHIPGATE_SCREENSHOTS")  # a folder to keep the screenshots in, for a human look
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)


def test_chromium_harness_does_see_console_errors(tmp_path: Path, chromium: Callable[..., object]) -> None:
    """The check above is only worth something if a page that logs or breaks is caught."""
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'><title>x</title>"
                    "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'\"></head>"
                    "<body><p>x</p><img src='http://127.0.0.1:9/x.png' alt=''></body></html>")
    result = chromium(page, tmp_path / "bad.png")
    assert any("Content Security Policy" in line for line in result.console), result.console
