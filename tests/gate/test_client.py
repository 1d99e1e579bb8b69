"""The client side of the host agent: the typed argument lists parse in the real agent's own parser, its
command line runs the uploaded copy under bash, and the one parser turns what it prints (or fails to print)
into a value or the one-line reason the reports show."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys

import pytest

from shipgate.client import calls, hostagent, output
from shipgate.hosts.ssh import CommandResult


def result(stdout: str = "", *, exit_code: int | None = 0, stderr: str = "", error: str | None = None) -> CommandResult:
    return CommandResult(host="chaos", command="python3 shipgate/hostagent.py x", exit_code=exit_code,
                         stdout=stdout, stderr=stderr, duration_s=0.1, error=error)


def parsed(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> argparse.Namespace:
    """The namespace the agent's own argument parser builds from `argv` (the verb is not run)."""
    seen: list[argparse.Namespace] = []
    for name in ("cmd_burst", "cmd_read", "cmd_probe", "cmd_bulk", "cmd_health", "cmd_mcp"):
        monkeypatch.setattr(hostagent, name, lambda args: seen.append(args) or 0)
    assert hostagent.main(argv) == 0
    return seen[0]


def test_every_typed_call_is_understood_by_the_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    h = parsed(monkeypatch, calls.health("http://10.0.0.1:9077", deadline_s=30))
    assert (h.cmd, h.url, h.deadline) == ("health", "http://10.0.0.1:9077", 30.0)
    r = parsed(monkeypatch, calls.read({"node-a": "http://a:1", "node-b": "http://b:2"}, "ns x", page=1000,
                                       timeout_s=5))
    assert (r.cmd, r.nodes, r.namespace, r.page, r.timeout) == ("read", "node-a=http://a:1,node-b=http://b:2",
                                                                "ns x", 1000, 5.0)
    assert parsed(monkeypatch, calls.read({"node-a": "http://a:1"}, "ns")).page == 1000  # the agent's default
    p = parsed(monkeypatch, calls.probe("http://a:1", "ns-probe1", "probe1", timeout_s=17.5))
    assert (p.cmd, p.namespace, p.title, p.timeout) == ("probe", "ns-probe1", "probe1", 17.5)
    b = parsed(monkeypatch, calls.bulk("http://a:1", "migrate", 500))
    assert (b.cmd, b.count) == ("bulk", 500)
    m = parsed(monkeypatch, calls.mcp("shipgate/phase1.db", profile="", timeout_s=20,
                                      call={"name": "memory_get", "arguments": {"id": "x"}}))
    assert (m.cmd, m.db, m.profile, m.timeout) == ("mcp", "shipgate/phase1.db", "", 20.0)
    assert m.call == '{"name": "memory_get", "arguments": {"id": "x"}}'
    assert parsed(monkeypatch, calls.mcp("d.db", profile="full", timeout_s=20)).call is None
    w = parsed(monkeypatch, calls.burst("http://a:1", "ns", node="node-a", agents=["ai:a", "ai:b"], writes=50,
                                        timeout_s=9.0, source="api"))
    assert (w.cmd, w.node, w.agents, w.writes, w.timeout, w.source) == ("burst", "node-a", "ai:a,ai:b", 50, 9.0,
                                                                        "api")


def test_the_command_line_runs_the_uploaded_agent_and_its_answer_parses(tmp_path) -> None:
    """As on a host: the agent copied to ~/shipgate, run by the command line under bash; nothing listens on
    the port, so health answers {"ok": false} with exit 1 -- an object, not a parse failure."""
    (tmp_path / "shipgate").mkdir()
    shutil.copy(calls.SOURCE, tmp_path / calls.PATH)
    cmd = calls.command(calls.health("http://127.0.0.1:9", deadline_s=0.3)).replace("python3", sys.executable, 1)
    proc = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    doc, why = output.agent_object(result(proc.stdout, exit_code=proc.returncode, stderr=proc.stderr),
                                   "host agent health")
    assert proc.returncode == 1 and why is None
    assert doc is not None and doc["ok"] is False and "not healthy within 0.3s" in doc["error"]


def test_agent_object_names_the_call_and_why_there_is_no_value() -> None:
    assert output.agent_object(result('diagnostic\n{"ok": true}\n'), "host agent health") == ({"ok": True}, None)
    assert output.agent_object(result(error="timeout after 40s", exit_code=None), "host agent read") == (
        None, "host agent read: timeout after 40s")
    assert output.agent_object(result("", exit_code=1, stderr="Traceback ...\nKeyError: 'x'\n"),
                               "host agent read") == (None, "host agent read printed no JSON (exit 1): "
                                                            "Traceback ...\nKeyError: 'x'")
    assert output.agent_object(result("[1, 2]\n"), "host agent probe") == (
        None, "host agent probe printed list, not an object")
    _, why = output.agent_object(result("x", exit_code=2, stderr="e" * 1000), "host agent mcp")
    assert why == "host agent mcp printed no JSON (exit 2): " + "e" * 300


def test_document_is_one_json_document_of_a_command_that_succeeded() -> None:
    assert output.document(result('{"id": "m1"}\n')) == ({"id": "m1"}, None)
    assert output.document(result('{\n  "total": 3\n}\n')) == ({"total": 3}, None)  # pretty is one document
    assert output.document(result(error="connect: refused", exit_code=None)) == (None, "chaos: connect: refused")
    assert output.document(result("", exit_code=3, stderr="no such db")) == (None, "exit 3: no such db")
    assert output.document(result("  \n")) == (None, "empty stdout")
    assert output.document(result('{"a": 1}\nall went fine\n')) == (
        None, "stdout is not one JSON document: '{\"a\": 1}\\nall went fine'")


def test_agent_events_keeps_objects_and_returns_the_rest() -> None:
    events, bad = output.agent_events(result('{"type": "invoke"}\n\n{"type": "ok", "id": "1"}\n{"type": \n3\n'))
    assert events == [{"type": "invoke"}, {"type": "ok", "id": "1"}]
    assert bad == ['{"type": ', "3"]
