"""The agent's paged read against a real HTTP server whose rows change between two of its requests.

A late-replicated row keeps its original `updated_at`, so on a correct server it can sort before the offset a
reader has reached: the next page then starts one row later than it would have. The server below inserts a
row at the head of the namespace just before answering a chosen request, and logs every page it served, so
each test can show the race really happened (the condition the single-pass read judged on) and what the agent
made of it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from shipgate.client import calls

AGENT = calls.SOURCE


class Racing(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, rows: int) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.rows = [{"id": f"id-{i:03}", "title": f"t{i}", "namespace": "ns", "content": "c"} for i in range(rows)]
        self.page_cap: int | None = None
        self.insert_before: set[int] = set()  # 1-based list requests answered after a new head row lands
        self.insert_always = False
        self.served: list[dict] = []  # one entry per list request: offset, limit asked, rows returned
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Racing

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        q = parse_qs(urlsplit(self.path).query)
        limit = int(q["limit"][0])
        offset = int(q["offset"][0])
        with self.server.lock:
            n = len(self.server.served) + 1
            if self.server.insert_always or n in self.server.insert_before:
                self.server.rows.insert(0, {"id": f"late-{n:03}", "title": f"late{n}", "namespace": "ns",
                                            "content": "replicated late"})
            cap = min(limit, self.server.page_cap or limit)
            page = self.server.rows[offset:offset + cap]
            self.server.served.append({"offset": offset, "limit": limit, "returned": len(page)})
        body = json.dumps({"count": len(page), "memories": page}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def racing() -> Iterator[Racing]:
    srv = Racing(45)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def read(srv: Racing, page: int) -> dict:
    res = subprocess.run([sys.executable, str(AGENT), "read", "--nodes", f"a=http://127.0.0.1:{srv.server_address[1]}",
                          "--namespace", "ns", "--page", str(page)], capture_output=True, text=True, timeout=60,
                         check=True)
    return json.loads(res.stdout)["a"]


def test_a_row_landing_between_a_short_page_and_its_check_is_not_a_page_cap(racing: Racing):
    racing.insert_before = {2}  # after the short page of 45, before the check for more at offset 45
    doc = read(racing, 1000)
    first, check = racing.served[0], racing.served[1]
    # the race the single-pass read judged on: a short page, then rows behind it
    assert (first["returned"], check["offset"], check["returned"]) == (45, 45, 1)
    assert doc["ok"] and doc["consistent"] is True
    assert doc["anomalies"] == [], "a correct server must not be called a page capper"
    ids = [r["id"] for r in doc["rows"]]
    assert len(ids) == len(set(ids)) == 46 and ids[0] == "late-002"


def test_a_row_landing_mid_walk_is_neither_doubled_nor_lost(racing: Racing):
    racing.insert_before = {2}  # after page 1 (offsets 0-9): every later page starts one row late
    doc = read(racing, 10)
    assert racing.served[1] == {"offset": 10, "limit": 10, "returned": 10}
    assert doc["ok"] and doc["consistent"] is True and doc["anomalies"] == []
    ids = [r["id"] for r in doc["rows"]]
    assert len(ids) == len(set(ids)) == 46, "one pass alone reads id-009 twice"


def test_a_server_that_really_caps_pages_is_still_caught_during_the_race(racing: Racing):
    racing.page_cap = 20
    racing.insert_before = {2}
    doc = read(racing, 1000)
    assert doc["ok"] and doc["consistent"] is True
    assert any("caps pages below the requested limit" in a for a in doc["anomalies"]), doc["anomalies"]
    assert len({r["id"] for r in doc["rows"]}) == 46, "every row is still read"


def test_a_namespace_that_never_settles_is_reported_unsettled_not_capped(racing: Racing):
    racing.insert_always = True
    doc = read(racing, 1000)
    assert doc["ok"] and doc["consistent"] is False and doc["passes"] == 5
    assert doc["anomalies"] == []
    assert any("caps pages" in a for a in doc["unsettled_anomalies"]), "what was seen is still on record"
