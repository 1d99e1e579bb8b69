"""Behaviour the reference peer takes from the real 0.6.3 as measured: every write path fans out, the catch-up
loop's cadence, page and cursor rule, the integer interval, signals; and the seeded defects that reproduce
0.6.3's own hazards (bulk_tied_timestamps, update_title_not_replicated)."""

from __future__ import annotations

import itertools
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from refpeer.memory import new_memory
from refpeer.testing import PeerProc, free_ports, http_json, run_cli, wait_until


def _get(node: PeerProc, id_: str) -> dict | None:
    status, body = http_json(f"{node.url}/api/v1/memories/{id_}", timeout=5.0)
    return body["memory"] if status == 200 else None


def _links(node: PeerProc, id_: str) -> list[tuple[str, str, str]]:
    _, body = http_json(f"{node.url}/api/v1/links/{id_}", timeout=5.0)
    return [(lk["source_id"], lk["target_id"], lk["relation"]) for lk in body["links"]]


def _count(node: PeerProc, ns: str) -> int:
    _, body = http_json(f"{node.url}/api/v1/memories?namespace={ns}&limit=1000", timeout=5.0)
    return body["count"]


def _fanout_failed(node: PeerProc) -> int:
    from refpeer.testing import http_request

    _, _, data = http_request(f"{node.url}/metrics", timeout=5.0)
    line = next((ln for ln in data.decode().splitlines() if ln.startswith("refpeer_fanout_failed_total ")), "x 0")
    return int(line.split()[1])


def _post_missed(leader: PeerProc, body: dict) -> None:
    """Store through `leader` while a peer is down and wait until the push to it has failed both attempts,
    so the fan-out's 250 ms retry cannot deliver it to the restarted peer: only catch-up can."""
    before = _fanout_failed(leader)
    assert leader.post(body)[0] == 201
    assert wait_until(lambda: _fanout_failed(leader) > before, 10)


def test_every_http_write_path_fans_out_with_catch_up_off(cluster: Callable[..., list[PeerProc]]) -> None:
    nodes = cluster(n=3, quorum_writes=2, timeout_ms=2000, catchup_secs=0)
    lead, peers = nodes[0], nodes[1:]
    ids = [lead.post({"title": f"w{i}", "content": f"c{i}", "namespace": "fan", "tags": [f"t{i}"]})[1]["id"]
           for i in range(6)]
    assert all(wait_until(lambda p=p: _count(p, "fan") == 6, 10) for p in peers)
    url = lead.url
    assert http_json(f"{url}/api/v1/memories/{ids[0]}", "PUT", {"content": "updated"})[0] == 200
    assert http_json(f"{url}/api/v1/memories/{ids[1]}", "PUT", {"title": "w1-renamed", "content": "renamed"})[0] == 200
    assert http_json(f"{url}/api/v1/memories/{ids[2]}/promote", "POST")[0] == 200
    assert http_json(f"{url}/api/v1/links", "POST", {"source_id": ids[0], "target_id": ids[2]})[0] == 201
    assert http_json(f"{url}/api/v1/memories/{ids[3]}", "DELETE")[0] == 200
    status, cons = http_json(f"{url}/api/v1/consolidate", "POST",
                             {"ids": ids[4:], "title": "merged", "summary": "both", "namespace": "fan"})
    assert status == 201
    status, bulk = http_json(f"{url}/api/v1/memories/bulk", "POST",
                             [{"title": f"bulk{i}", "content": "b", "namespace": "fan-bulk"} for i in range(50)])
    assert (status, bulk) == (200, {"created": 50, "errors": []})

    def replicated(p: PeerProc) -> bool:
        a, b, c = _get(p, ids[0]), _get(p, ids[1]), _get(p, ids[2])
        merged = _get(p, cons["id"])
        return (a is not None and a["content"] == "updated" and b is not None and b["title"] == "w1-renamed"
                and b["content"] == "renamed" and c is not None and c["tier"] == "long"
                and _links(p, ids[0]) == [(ids[0], ids[2], "related_to")] and _get(p, ids[3]) is None
                and merged is not None and merged["content"] == "both"
                and _get(p, ids[4]) is None and _get(p, ids[5]) is None and _count(p, "fan-bulk") == 50)

    for p in peers:
        assert wait_until(lambda p=p: replicated(p), 15), p.log_text()


def test_bulk_with_a_peer_down_names_it_in_errors_and_the_clean_peer_converges_by_pages(
        cluster: Callable[..., list[PeerProc]]) -> None:
    """1000 bulk rows missed by a peer: pages of 500 with distinct timestamps, so it gets every row."""
    nodes = cluster(n=3, quorum_writes=2, timeout_ms=2000, catchup_secs=1)
    nodes[2].kill()
    status, out = http_json(f"{nodes[0].url}/api/v1/memories/bulk", "POST",
                            [{"title": f"r{i:04d}", "content": "c", "namespace": "tie"} for i in range(1000)],
                            timeout=30)
    assert status == 200 and out["created"] == 1000
    assert out["errors"] == [f"catchup to peer-1: network: error sending request for url "
                             f"({nodes[2].url}/api/v1/sync/push)"]
    _post_missed(nodes[0], {"title": "later", "content": "c", "namespace": "tie"})
    nodes[2].start()
    assert wait_until(lambda: "later" in nodes[2].titles("tie"), 30), nodes[2].log_text()
    assert wait_until(lambda: _count(nodes[2], "tie") == 1000, 10)  # list caps at 1000 (1001 rows)
    _, st = http_json(f"{nodes[2].url}/api/v1/stats")
    assert st["total"] == 1001


def test_defect_bulk_tied_timestamps_loses_the_rest_of_the_tie_for_good(
        cluster: Callable[..., list[PeerProc]]) -> None:
    """0.6.3's hazard: one updated_at for the whole request; the first page ends inside the tie, the cursor
    becomes that timestamp and `updated_at > cursor` never returns the other tied rows."""
    nodes = cluster(n=3, quorum_writes=2, timeout_ms=2000, catchup_secs=1,
                    env={"AI_MEMORY_REF_DEFECTS": "bulk_tied_timestamps"})
    nodes[2].kill()
    status, _ = http_json(f"{nodes[0].url}/api/v1/memories/bulk", "POST",
                          [{"title": f"r{i:04d}", "content": "c", "namespace": "tie"} for i in range(1000)],
                          timeout=30)
    assert status == 200
    rows = http_json(f"{nodes[0].url}/api/v1/memories?namespace=tie&limit=1000")[1]["memories"]
    assert len({m["updated_at"] for m in rows}) == 1
    _post_missed(nodes[0], {"title": "later", "content": "c", "namespace": "tie"})
    nodes[2].start()
    # "later" is newer than every tied row, so once it is here the cursor has passed the tie: the count is final.
    assert wait_until(lambda: "later" in nodes[2].titles("tie"), 30), nodes[2].log_text()
    _, st = http_json(f"{nodes[2].url}/api/v1/stats")
    assert st["total"] == 501  # one page of 500 tied rows (both peers order the tie by id) + "later"


def test_defect_update_title_not_replicated_acks_a_rename_the_peers_skip(
        cluster: Callable[..., list[PeerProc]]) -> None:
    nodes = cluster(n=3, quorum_writes=2, timeout_ms=2000, catchup_secs=0,
                    env={"AI_MEMORY_REF_DEFECTS": "update_title_not_replicated"})
    id_ = nodes[0].post({"title": "before", "content": "c0", "namespace": "rn"})[1]["id"]
    assert all(wait_until(lambda p=p: _get(p, id_) is not None, 10) for p in nodes[1:])
    status, upd = http_json(f"{nodes[0].url}/api/v1/memories/{id_}", "PUT", {"title": "after", "content": "c1"})
    assert status == 200 and upd["title"] == "after"  # acknowledged: the peers answered the push 200
    renamed = _get(nodes[0], id_)
    push = {"sender_agent_id": "host:t", "memories": [renamed]}
    for p in nodes[1:]:  # the same push again, to read each peer's verdict on it
        status, verdict = http_json(f"{p.url}/api/v1/sync/push", "POST", push)
        assert status == 200 and verdict["skipped"] == 1 and verdict["applied"] == 0
        got = _get(p, id_)
        assert got is not None and (got["title"], got["content"]) == ("before", "c0")


class _FakePeer(BaseHTTPRequestHandler):
    """A peer that serves a fixed row set on /api/v1/sync/since (500 per page, `updated_at > since`) and
    records when each pull came and what it asked for."""

    rows: list[dict]
    pulls: list[tuple[float, str | None]]

    def do_GET(self) -> None:
        q = parse_qs(urlsplit(self.path).query)
        since = q.get("since", [None])[0]
        self.pulls.append((time.monotonic(), since))
        page = [m for m in self.rows if since is None or m["updated_at"] > since][:500]
        body = json.dumps({"count": len(page), "limit": 500, "memories": page}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def fake_peer() -> Iterator[tuple[str, list[dict], list[tuple[float, str | None]]]]:
    rows = [new_memory(f"p{i:04d}", "c", namespace="pages") for i in range(1020)]
    pulls: list[tuple[float, str | None]] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (_FakePeer,), {"rows": rows, "pulls": pulls}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", rows, pulls
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def test_catch_up_first_tick_after_5s_then_one_page_per_interval_exact_cursor(
        tmp_path: Path, procs: list[PeerProc], fake_peer: tuple[str, list[dict], list]) -> None:
    url, rows, pulls = fake_peer
    (port,) = free_ports(1)
    node = PeerProc(port, tmp_path / "n.db", tmp_path / "n.log",
                    ["--quorum-writes", "1", "--quorum-peers", url, "--catchup-interval-secs", "1"])
    procs.append(node)
    started = time.monotonic()
    node.start()
    assert wait_until(lambda: len(pulls) >= 4, 30), node.log_text()
    assert pulls[0][0] - started >= 5.0  # the first tick waits 5 s, not min(5, interval)
    assert [since for _, since in pulls[:4]] == [None, rows[499]["updated_at"], rows[999]["updated_at"],
                                                 rows[1019]["updated_at"]]
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(pulls[:4])]
    assert min(gaps) >= 0.9  # one page per tick: the next page waits for the next interval
    _, st = http_json(f"{node.url}/api/v1/stats")
    assert st["total"] == 1020


def test_catchup_interval_takes_whole_seconds_like_clap(tmp_path: Path) -> None:
    r = run_cli(["serve", "--port", str(free_ports(1)[0]), "--catchup-interval-secs", "0.5"],
                db=tmp_path / "d.db", timeout=20)
    assert r.returncode == 2 and "--catchup-interval-secs" in r.stderr and "0.5" in r.stderr


def test_sigterm_ends_serve_at_once_sigint_checkpoints_and_exits_0(tmp_path: Path, procs: list[PeerProc]) -> None:
    a_port, b_port = free_ports(2)
    a = PeerProc(a_port, tmp_path / "a.db", tmp_path / "a.log")
    b = PeerProc(b_port, tmp_path / "b.db", tmp_path / "b.log")
    procs.extend([a, b])
    a.start()
    b.start()
    assert a.post({"title": "kept", "content": "c", "namespace": "sig"})[0] == 201
    a.signal(signal.SIGTERM)
    assert a.proc is not None and a.proc.wait(timeout=10) == -signal.SIGTERM
    assert b.post({"title": "kept", "content": "c", "namespace": "sig"})[0] == 201
    assert b.interrupt() == 0
    assert not Path(f"{b.db}-wal").exists() or Path(f"{b.db}-wal").stat().st_size == 0
    a.start()
    assert a.titles("sig") == {"kept"}
