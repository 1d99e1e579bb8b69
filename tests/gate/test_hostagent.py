"""The host agent, run as a real process against a scripted HTTP server on loopback.

The server plays the parts a release candidate can play: acknowledge, refuse quorum (503), reject
(400), hang past the client timeout, cap list pages below the requested limit, ignore offset.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from shipgate.client import calls
from shipgate.evidence.models import OperationEvent

AGENT = calls.SOURCE


class Scripted(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.rows: list[dict] = []
        self.page_cap: int | None = None
        self.ignore_offset = False
        self.release = threading.Event()
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Scripted

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, doc: object, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/api/v1/health":
            self._send(200, {"status": "ok"})
            return
        q = parse_qs(url.query)
        limit = int(q.get("limit", ["20"])[0])
        offset = 0 if self.server.ignore_offset else int(q.get("offset", ["0"])[0])
        if self.server.page_cap:
            limit = min(limit, self.server.page_cap)
        with self.server.lock:
            rows = [r for r in self.server.rows if r["namespace"] == q["namespace"][0]]
        page = rows[offset:offset + limit]
        self._send(200, {"count": len(page), "memories": page})

    def do_POST(self) -> None:
        doc = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        title = doc["title"]
        if title.endswith("-w3"):
            self._send(503, {"error": "quorum_not_met", "got": 1, "needed": 2, "reason": "timeout"}, {"Retry-After": "2"})
            return
        if title.endswith("-w4"):
            self._send(400, {"error": "invalid source"})
            return
        if title.endswith("-w5"):
            self.server.release.wait(10)  # hangs past the client's timeout
            return
        mem = {"id": str(uuid.uuid4()), "title": title, "namespace": doc["namespace"], "content": doc["content"]}
        with self.server.lock:
            self.server.rows.append(mem)
        self._send(201, {"id": mem["id"], "quorum_acks": 2})


@pytest.fixture
def server() -> Iterator[Scripted]:
    srv = Scripted()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()


def agent(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(AGENT), *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


def url(srv: Scripted) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}"


def test_burst_records_every_operation_with_jepsen_types(server: Scripted):
    out = agent("burst", "--url", url(server), "--namespace", "ns", "--agents", "ai:a,ai:b", "--writes", "6",
                "--timeout", "0.5", "--node", "node-a")
    assert out.returncode == 0, out.stderr
    events = [OperationEvent.model_validate(json.loads(line)) for line in out.stdout.splitlines()]
    assert sum(e.type == "invoke" for e in events) == 12
    by_title = {e.title: e for e in events if e.type != "invoke"}
    assert len(by_title) == 12
    for agent_id in ("ai:a", "ai:b"):
        assert by_title[f"{agent_id}-w1"].type == "ok" and by_title[f"{agent_id}-w1"].id
        assert by_title[f"{agent_id}-w3"].type == "info" and by_title[f"{agent_id}-w3"].status == 503
        assert by_title[f"{agent_id}-w4"].type == "fail" and by_title[f"{agent_id}-w4"].status == 400
        hung = by_title[f"{agent_id}-w5"]
        assert hung.type == "info" and hung.status is None and hung.error == "timeout"
        assert by_title[f"{agent_id}-w6"].type == "ok"  # the writer reconnects after a timeout
    assert all(e.node == "node-a" and e.agent in ("ai:a", "ai:b") for e in events)


def test_refused_connection_is_a_definite_failure():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    out = agent("burst", "--url", f"http://127.0.0.1:{port}", "--namespace", "ns", "--agents", "ai:a",
                "--writes", "2", "--timeout", "2")
    done = [json.loads(line) for line in out.stdout.splitlines() if '"invoke"' not in line]
    assert [e["type"] for e in done] == ["fail", "fail"]
    assert all(e["error"] == "connection refused" for e in done)


def _seed(server: Scripted, n: int) -> None:
    server.rows = [{"id": f"id-{i:03}", "title": f"t{i}", "namespace": "ns", "content": "c"} for i in range(n)]


def test_read_paginates_with_an_explicit_limit(server: Scripted):
    _seed(server, 45)
    out = agent("read", "--nodes", f"a={url(server)}", "--namespace", "ns", "--page", "10")
    doc = json.loads(out.stdout)["a"]
    assert doc["ok"] and doc["anomalies"] == []
    assert [r["id"] for r in doc["rows"]] == [f"id-{i:03}" for i in range(45)]


def test_read_notices_a_server_that_caps_pages(server: Scripted):
    _seed(server, 45)
    server.page_cap = 20
    out = agent("read", "--nodes", f"a={url(server)}", "--namespace", "ns", "--page", "1000")
    doc = json.loads(out.stdout)["a"]
    assert len(doc["rows"]) == 45, "every row is still read"
    assert any("caps pages below the requested limit" in a for a in doc["anomalies"])


def test_read_notices_a_server_that_ignores_offset(server: Scripted):
    _seed(server, 30)
    server.ignore_offset = True
    out = agent("read", "--nodes", f"a={url(server)}", "--namespace", "ns", "--page", "10")
    doc = json.loads(out.stdout)["a"]
    assert any("ignores offset" in a for a in doc["anomalies"])


def test_probe_returns_status_body_and_retry_after(server: Scripted):
    out = agent("probe", "--url", url(server), "--namespace", "ns", "--title", "p-w3")
    doc = json.loads(out.stdout)
    assert doc["status"] == 503 and doc["retry_after"] == "2"
    assert json.loads(doc["body"])["error"] == "quorum_not_met"
    assert doc["latency_ms"] >= 0


def test_health_reports_a_deadline_miss_by_name():
    out = agent("health", "--url", "http://127.0.0.1:9", "--deadline", "0.3")
    doc = json.loads(out.stdout)
    assert out.returncode == 1 and not doc["ok"] and "not healthy within 0.3s" in doc["error"]


def test_bad_url_is_a_clear_error():
    out = agent("probe", "--url", "ftp://x", "--namespace", "ns", "--title", "t")
    assert out.returncode != 0 and "bad node URL" in out.stderr
