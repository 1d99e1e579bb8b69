"""Fixtures for the report tests: a real headless Chromium that loads a page and reports console output.

Console output is read from Chromium's own log (`--enable-logging=stderr --v=0` prints every console
message, uncaught exception and Content-Security-Policy violation as an `INFO:CONSOLE` line). Our pages
print nothing to the console, so any such line is an error.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@dataclass
class PageLoad:
    returncode: int
    console: list[str]
    stderr: str
    screenshot: Path


def _load(page: Path, screenshot: Path, *, width: int = 1280, height: int = 2000, timeout_s: float = 90) -> PageLoad:
    profile = tempfile.mkdtemp(prefix="shipgate-chromium-")
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--hide-scrollbars",
        f"--window-size={width},{height}",
        f"--screenshot={screenshot}",
        page.resolve().as_uri(),
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=10)
        pytest.fail(f"chromium did not finish loading {page} within {timeout_s} s:\n{err[-3000:]}")
    finally:
        # Chromium's helpers share its session; end any straggler of this one run, then drop the profile.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(profile, ignore_errors=True)
    console = [line for line in err.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    return PageLoad(proc.returncode, console, err + out, screenshot)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Callable[..., PageLoad]]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"chromium not found at {CHROMIUM}; scripts/setup installs it")
    yield _load
