"""An outside client as a fidelity check: AlphaOne's Python SDK (PyPI `ai-memory-mcp==0.6.4`, the earliest
published) runs the same calls against the reference peer and against the real 0.6.3 binary, each `serve`
in its own loopback-only network namespace (the real one tries to reach the Hugging Face hub), and every call
must behave alike: the same HTTP exchanges with the same statuses, and the same outcome -- the same result
shape, or the same SDK error class (the SDK has bugs of its own: `get()` expects a bare memory, `search()`
iterates a dict, so both servers make it raise). Not every call has to succeed.

Outside the comparison, by design: the SDK's export, import, forget, subscriptions, notify, inbox and agents
calls (0.6.3 routes the gate never touches and the reference peer does not implement).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from refpeer.testing import free_ports

REAL_BINARY = Path("/var/cache/shipgate/ai-memory/0.6.3/bin/ai-memory")
DRIVER = Path(__file__).with_name("sdk_driver.py")
DRIVER_TIMEOUT_S = 180


def _preflight() -> None:
    problems = []
    try:
        import ai_memory  # noqa: F401
    except ImportError:
        problems.append("AlphaOne's SDK is not installed: pip install 'ai-memory-mcp==0.6.4' (the dev extra has it)")
    if not REAL_BINARY.is_file():
        problems.append(f"the real ai-memory 0.6.3 is not installed at {REAL_BINARY} "
                        "(build it: invoke target.install 0.6.3)")
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        problems.append("a loopback-only network namespace needs root with unshare(1) and ip(8)")
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)


def _run_sdk(serve: list[str], port: int) -> list[dict[str, Any]]:
    """The driver and its serve in a fresh network namespace that only has `lo` (gone when they exit)."""
    work = Path(tempfile.mkdtemp(prefix="sgsdk-"))
    try:
        proc = subprocess.run(
            ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
             sys.executable, str(DRIVER), str(work), str(port), "--", *serve],
            capture_output=True, text=True, timeout=DRIVER_TIMEOUT_S, check=False)
        log = (work / "serve.log").read_text(errors="replace")[-2000:] if (work / "serve.log").exists() else ""
        assert proc.returncode == 0, f"driver exited {proc.returncode}: {proc.stderr[-2000:]}\nserve log: {log}"
        return json.loads(proc.stdout)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_the_sdk_sees_the_reference_peer_as_it_sees_real_063() -> None:
    _preflight()
    (port,) = free_ports(1)
    real = _run_sdk([str(REAL_BINARY), "serve", "--host", "127.0.0.1", "--port", str(port)], port)
    ref = _run_sdk([sys.executable, "-m", "refpeer", "serve", "--host", "127.0.0.1", "--port", str(port)], port)
    assert [c["call"] for c in real] == [c["call"] for c in ref]
    differ = [{"call": a["call"], "real": a, "refpeer": b} for a, b in zip(real, ref, strict=True) if a != b]
    assert differ == [], json.dumps(differ, indent=1)
    by_call = {c["call"]: c for c in real}
    # The comparison is only worth something if it exercised both outcomes and the known SDK mismatches.
    assert by_call["store"]["outcome"] == "ok" and by_call["get"]["outcome"] == "raised"
    assert by_call["store_after_404_with_body"]["http"] == [["POST", "/api/v1/memories", 201]]
    assert {c["outcome"] for c in real} == {"ok", "raised"}
