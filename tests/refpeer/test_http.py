"""HTTP API of one reference peer against contract section 3: shapes, every bad-input status, sync endpoints."""

from __future__ import annotations

import http.client
import json
import socket
import uuid
from collections.abc import Iterator

import pytest

from refpeer.memory import now_ts, ts_in
from refpeer.testing import PeerProc, free_ports, http_json, http_request


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PeerProc]:
    d = tmp_path_factory.mktemp("http")
    (port,) = free_ports(1)
    p = PeerProc(port, d / "h.db", d / "h.log", env={"AI_MEMORY_REF_DEFECTS": ""})
    try:
        yield p.start()
    finally:
        p.kill()


def ns() -> str:
    return f"ns-{uuid.uuid4().hex[:8]}"


def post(peer: PeerProc, body: dict, **kw) -> tuple[int, object]:
    return http_json(f"{peer.url}/api/v1/memories", "POST", body, **kw)


def test_health_reports_ok_and_version(peer: PeerProc) -> None:
    status, body = http_json(f"{peer.url}/api/v1/health")
    assert status == 200
    assert body == {"status": "ok", "service": "ai-memory", "version": "0.6.3", "embedder_ready": False,
                    "federation_enabled": False}


def test_create_returns_201_with_contract_shape_and_uuid4(peer: PeerProc) -> None:
    n = ns()
    status, body = post(peer, {"title": "t", "content": "c", "namespace": n}, headers={"X-Agent-Id": "ai:agent-alice"})
    assert status == 201
    assert set(body) == {"id", "tier", "namespace", "title", "agent_id"}
    assert uuid.UUID(body["id"]).version == 4 and body["id"] == body["id"].lower()
    assert (body["tier"], body["namespace"], body["title"], body["agent_id"]) == ("mid", n, "t", "ai:agent-alice")
    status, got = http_json(f"{peer.url}/api/v1/memories/{body['id']}")
    mem = got["memory"]
    assert mem["metadata"] == {"agent_id": "ai:agent-alice"}
    assert mem["source"] == "api" and mem["priority"] == 5 and mem["confidence"] == 1.0 and mem["tags"] == []
    assert mem["created_at"] == mem["updated_at"] and mem["created_at"].endswith("+00:00")
    assert "last_accessed_at" not in mem
    assert mem["expires_at"] == ts_in(604_800, mem["created_at"])


def test_agent_id_precedence_body_then_header_then_anonymous(peer: PeerProc) -> None:
    n = ns()
    _, a = post(peer, {"title": "a", "content": "c", "namespace": n, "agent_id": "body-agent"},
                headers={"X-Agent-Id": "hdr-agent"})
    _, b = post(peer, {"title": "b", "content": "c", "namespace": n}, headers={"X-Agent-Id": "hdr-agent"})
    _, c = post(peer, {"title": "c", "content": "c", "namespace": n})
    assert a["agent_id"] == "body-agent" and b["agent_id"] == "hdr-agent"
    assert c["agent_id"].startswith("anonymous:req-") and len(c["agent_id"]) == len("anonymous:req-") + 8


def test_tier_ttls_and_explicit_expiry(peer: PeerProc) -> None:
    n = ns()
    _, s = post(peer, {"title": "s", "content": "c", "namespace": n, "tier": "short"})
    _, lg = post(peer, {"title": "l", "content": "c", "namespace": n, "tier": "long"})
    _, t = post(peer, {"title": "t", "content": "c", "namespace": n, "ttl_secs": 60})
    _, e = post(peer, {"title": "e", "content": "c", "namespace": n, "expires_at": "2099-01-01T00:00:00Z"})
    get = {k: http_json(f"{peer.url}/api/v1/memories/{v['id']}")[1]["memory"] for k, v in
           {"s": s, "l": lg, "t": t, "e": e}.items()}
    assert get["s"]["expires_at"] == ts_in(21_600, get["s"]["created_at"])
    assert "expires_at" not in get["l"]
    assert get["t"]["expires_at"] == ts_in(60, get["t"]["created_at"])
    assert get["e"]["expires_at"] == "2099-01-01T00:00:00.000000000+00:00"


BAD_400 = [
    ({"title": "  ", "content": "c"}, "title cannot be empty"),
    ({"title": "x" * 513, "content": "c"}, "title exceeds max length of 512 characters"),
    ({"title": "a\x07b", "content": "c"}, "title contains invalid characters"),
    ({"title": "t", "content": " \n "}, "content cannot be empty"),
    ({"title": "t", "content": "x" * 65_537}, "content exceeds max size of 65536 bytes"),
    ({"title": "t", "content": "a\x00b"}, "content contains invalid characters"),
    ({"title": "t", "content": "c", "namespace": "has space"},
     "namespace cannot contain spaces (use hyphens or underscores)"),
    ({"title": "t", "content": "c", "namespace": "/lead"}, "namespace cannot start with '/' (normalize input first)"),
    ({"title": "t", "content": "c", "namespace": "trail/"}, "namespace cannot end with '/' (normalize input first)"),
    ({"title": "t", "content": "c", "namespace": "a//b"}, "namespace cannot contain empty segments (e.g. '//')"),
    ({"title": "t", "content": "c", "namespace": "a/../b"}, "namespace segments '.' and '..' are not allowed"),
    ({"title": "t", "content": "c", "namespace": "/".join("abcdefghi")}, "namespace depth 9 exceeds max of 8"),
    ({"title": "t", "content": "c", "namespace": "a\\b"}, "namespace cannot contain backslashes or null bytes"),
    ({"title": "t", "content": "c", "namespace": ""}, "namespace cannot be empty"),
    ({"title": "t", "content": "c", "tags": [""]}, "tags cannot contain empty strings"),
    ({"title": "t", "content": "c", "tags": [str(i) for i in range(51)]}, "too many tags (max 50)"),
    ({"title": "t", "content": "c", "tags": ["x" * 129]}, "tag 'xxxxxxxxxxxxxxxxxxxx...' exceeds max length of 128 bytes"),
    ({"title": "t", "content": "c", "priority": 0}, "priority must be between 1 and 10 (got 0)"),
    ({"title": "t", "content": "c", "priority": 11}, "priority must be between 1 and 10 (got 11)"),
    ({"title": "t", "content": "c", "confidence": 1.5}, "confidence must be between 0.0 and 1.0 (got 1.5)"),
    ({"title": "t", "content": "c", "confidence": -1}, "confidence must be between 0.0 and 1.0 (got -1)"),
    ({"title": "t", "content": "c", "source": "ship-gate"},
     "invalid source 'ship-gate' — must be one of: user, claude, hook, api, cli, import, consolidation, system, "
     "chaos, notify"),
    ({"title": "t", "content": "c", "metadata": []}, "metadata must be a JSON object"),
    ({"title": "t", "content": "c", "metadata": {"k": "x" * 65_536}},
     "metadata exceeds max size of 65536 bytes (got 65544)"),
    ({"title": "t", "content": "c", "expires_at": "tomorrow"}, "expires_at is not valid RFC3339: 'tomorrow'"),
    ({"title": "t", "content": "c", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at is in the past"),
    ({"title": "t", "content": "c", "ttl_secs": 0}, "ttl_secs must be positive (got 0)"),
    ({"title": "t", "content": "c", "ttl_secs": 366 * 86_400}, "ttl_secs exceeds maximum of 1 year"),
    ({"title": "t", "content": "c", "agent_id": "bad agent"},
     "invalid agent_id: agent_id contains invalid character ' ' (allowed: alphanumeric, _-:@./)"),
    ({"title": "t", "content": "c", "scope": "world"},
     "invalid scope 'world' — must be one of: private, team, unit, org, collective"),
    ({"title": "t", "content": "c", "on_conflict": "replace"},
     "invalid on_conflict 'replace' — must be one of: error, merge, version"),
]


@pytest.mark.parametrize(("body", "message"), BAD_400, ids=[m[:40] for _, m in BAD_400])
def test_rule_violations_are_400_json_with_the_exact_message(peer: PeerProc, body: dict, message: str) -> None:
    status, got = post(peer, {**body, "namespace": body.get("namespace", ns())})
    assert status == 400
    assert got == {"error": message}


def test_deep_metadata_is_400(peer: PeerProc) -> None:
    deep: dict = {}
    cur = deep
    for _ in range(33):
        cur["k"] = {}
        cur = cur["k"]
    status, got = post(peer, {"title": "t", "content": "c", "namespace": ns(), "metadata": deep})
    assert status == 400 and got["error"].startswith("metadata nesting depth exceeds limit of 32")


def test_invalid_agent_header_is_400(peer: PeerProc) -> None:
    status, got = post(peer, {"title": "t", "content": "c", "namespace": ns()}, headers={"X-Agent-Id": "a b"})
    assert status == 400 and got["error"].startswith("invalid agent_id:")


BAD_422 = [
    ({"content": "c"}, "missing field `title`"),
    ({"title": "t"}, "missing field `content`"),
    ({"title": "t", "content": "c", "tier": "huge"}, "unknown variant `huge`"),
    ({"title": "t", "content": "c", "tags": None}, "tags: invalid type: null"),
    ({"title": "t", "content": "c", "tags": "a,b"}, "tags: invalid type"),
    ({"title": "t", "content": "c", "priority": 5.5}, "priority: invalid type"),
    ({"title": "t", "content": "c", "priority": "5"}, "priority: invalid type"),
    ({"title": 5, "content": "c"}, "title: invalid type: integer `5`"),
    ({"title": "t", "content": "c", "confidence": "high"}, "confidence: invalid type"),
    ({"title": "t", "content": "c", "ttl_secs": 1.5}, "ttl_secs: invalid type"),
]


@pytest.mark.parametrize(("body", "fragment"), BAD_422, ids=[f for _, f in BAD_422])
def test_shape_problems_are_422_plain_text(peer: PeerProc, body: dict, fragment: str) -> None:
    status, headers, data = http_request(f"{peer.url}/api/v1/memories", "POST", body)
    assert status == 422
    assert headers["content-type"].startswith("text/plain")
    assert fragment in data.decode()


def test_non_object_body_is_422(peer: PeerProc) -> None:
    status, _h, _d = http_request(f"{peer.url}/api/v1/memories", "POST", [1, 2])
    assert status == 422


def test_malformed_json_is_400_plain_text(peer: PeerProc) -> None:
    status, headers, data = http_request(f"{peer.url}/api/v1/memories", "POST", raw=b'{"title": ',
                                         headers={"Content-Type": "application/json"})
    assert status == 400 and headers["content-type"].startswith("text/plain")
    assert data.decode().startswith("Failed to parse the request body as JSON")


def test_missing_content_type_is_415(peer: PeerProc) -> None:
    status, _h, _d = http_request(f"{peer.url}/api/v1/memories", "POST", raw=b'{"title":"t","content":"c"}')
    assert status == 415


def test_body_over_2_mib_is_413(peer: PeerProc) -> None:
    status, _h, _d = http_request(f"{peer.url}/api/v1/memories", "POST", raw=b"x" * (2 * 1024 * 1024 + 1),
                                  headers={"Content-Type": "application/json"})
    assert status == 413


def test_bad_query_string_is_400(peer: PeerProc) -> None:
    status, _h, data = http_request(f"{peer.url}/api/v1/memories?limit=abc")
    assert status == 400 and b"limit" in data


def test_unknown_path_is_404_with_empty_body_and_trailing_slash_does_not_match(peer: PeerProc) -> None:
    for path in ("/nope", "/api/v1/health/", "/api/v1/memories/"):
        status, _h, data = http_request(f"{peer.url}{path}")
        assert (status, data) == (404, b""), path


def test_wrong_method_is_405_and_head_works_on_get_routes(peer: PeerProc) -> None:
    status, headers, _d = http_request(f"{peer.url}/api/v1/health", "POST", {})
    assert status == 405 and "GET" in headers["allow"]
    status, headers, data = http_request(f"{peer.url}/api/v1/health", "HEAD")
    assert status == 200 and data == b"" and int(headers["content-length"]) > 0


def test_duplicate_title_is_a_silent_upsert_at_063_on_conflict_still_honoured(peer: PeerProc) -> None:
    n = ns()
    s1, first = post(peer, {"title": "dup", "content": "one", "namespace": n})
    s2, again = post(peer, {"title": "dup", "content": "two", "namespace": n, "priority": 9})
    assert (s1, s2) == (201, 201) and again["id"] == first["id"]
    assert again["potential_contradictions"] == [first["id"]]  # 0.6.3 names the upserted row itself
    _, mem = http_json(f"{peer.url}/api/v1/memories/{first['id']}")
    assert mem["memory"]["content"] == "two" and mem["memory"]["priority"] == 9
    s3, conflict = post(peer, {"title": "dup", "content": "three", "namespace": n, "on_conflict": "error"})
    assert s3 == 409 and conflict["existing_id"] == first["id"]
    s4, versioned = post(peer, {"title": "dup", "content": "four", "namespace": n, "on_conflict": "version"})
    assert s4 == 201 and versioned["title"] == "dup (2)"


def test_list_default_limit_20_max_1000_offset_and_order(peer: PeerProc) -> None:
    n = ns()
    status, bulk = http_json(f"{peer.url}/api/v1/memories/bulk", "POST",
                             [{"title": f"r{i:04d}", "content": "c", "namespace": n, "priority": 1 + i % 10}
                              for i in range(1001)])
    assert status == 400  # bulk is capped at 1000
    items = [{"title": f"r{i:04d}", "content": "c", "namespace": n, "priority": 1 + i % 10} for i in range(1000)]
    status, bulk = http_json(f"{peer.url}/api/v1/memories/bulk", "POST", items)
    assert status == 200 and bulk["created"] == 1000 and bulk["errors"] == []
    _, more = http_json(f"{peer.url}/api/v1/memories/bulk", "POST",
                        [{"title": "r-extra", "content": "c", "namespace": n}])
    assert more["created"] == 1
    _, d = http_json(f"{peer.url}/api/v1/memories?namespace={n}")
    assert d["count"] == 20 == len(d["memories"])
    _, big = http_json(f"{peer.url}/api/v1/memories?namespace={n}&limit=5000")
    assert big["count"] == 1000
    keys = [(-m["priority"], m["updated_at"]) for m in big["memories"]]
    assert [k[0] for k in keys] == sorted(k[0] for k in keys)
    for a, b in zip(big["memories"], big["memories"][1:], strict=False):
        if a["priority"] == b["priority"]:
            assert a["updated_at"] >= b["updated_at"]
    _, page2 = http_json(f"{peer.url}/api/v1/memories?namespace={n}&limit=10&offset=10")
    assert [m["id"] for m in page2["memories"]] == [m["id"] for m in big["memories"][10:20]]


def test_expired_rows_hidden_from_list_and_namespaces_but_counted_in_stats(peer: PeerProc) -> None:
    n = ns()
    past = ts_in(-60)
    mem = {"id": str(uuid.uuid4()), "title": "old", "content": "c", "namespace": n, "tier": "mid", "tags": [],
           "priority": 5, "confidence": 1.0, "source": "api", "access_count": 0, "created_at": past,
           "updated_at": past, "expires_at": ts_in(-1), "metadata": {}}
    status, res = http_json(f"{peer.url}/api/v1/sync/push", "POST", {"sender_agent_id": "host:x", "memories": [mem]})
    assert status == 200 and res["applied"] == 1
    _, lst = http_json(f"{peer.url}/api/v1/memories?namespace={n}")
    assert lst["count"] == 0
    _, nss = http_json(f"{peer.url}/api/v1/namespaces")
    assert n not in {x["namespace"] for x in nss["namespaces"]}
    _, st = http_json(f"{peer.url}/api/v1/stats")
    assert {"namespace": n, "count": 1} in st["by_namespace"]
    _, since = http_json(f"{peer.url}/api/v1/sync/since?since={ts_in(-1, past)[:-6]}Z&limit=10000")
    assert mem["id"] in {m["id"] for m in since["memories"]}


def test_stats_and_namespaces_shapes(peer: PeerProc) -> None:
    n = ns()
    for i in range(3):
        post(peer, {"title": f"s{i}", "content": "c", "namespace": n})
    _, st = http_json(f"{peer.url}/api/v1/stats")
    assert set(st) == {"total", "by_tier", "by_namespace", "expiring_soon", "links_count", "db_size_bytes"}
    counts = [x["count"] for x in st["by_namespace"]]
    assert counts == sorted(counts, reverse=True)
    assert {"namespace": n, "count": 3} in st["by_namespace"]
    _, nss = http_json(f"{peer.url}/api/v1/namespaces")
    assert {"namespace": n, "count": 3} in nss["namespaces"]


def test_get_put_delete_by_id(peer: PeerProc) -> None:
    n = ns()
    _, created = post(peer, {"title": "g", "content": "c", "namespace": n})
    url = f"{peer.url}/api/v1/memories/{created['id']}"
    status, updated = http_json(url, "PUT", {"content": "new", "priority": 8})
    assert status == 200 and updated["content"] == "new" and updated["priority"] == 8
    status, bad = http_json(url, "PUT", {"priority": 42})
    assert status == 400 and bad["error"] == "priority must be between 1 and 10 (got 42)"
    assert http_json(url, "DELETE")[0] == 200
    assert http_json(url)[0] == 404
    assert http_json(url, "DELETE")[0] == 404
    assert http_json(url, "PUT", {"content": "x"})[0] == 404


def _mem(n: str, title: str, updated: str, *, id_: str | None = None, **kw) -> dict:
    return {"id": id_ or str(uuid.uuid4()), "title": title, "content": kw.pop("content", "c"), "namespace": n,
            "tier": kw.pop("tier", "mid"), "tags": [], "priority": kw.pop("priority", 5), "confidence": 1.0,
            "source": "api", "access_count": 0, "created_at": updated, "updated_at": updated,
            "metadata": kw.pop("metadata", {}), **kw}


def test_sync_push_insert_if_newer_lww_with_id_tiebreak_and_preserved_provenance(peer: PeerProc) -> None:
    n = ns()
    push = f"{peer.url}/api/v1/sync/push"
    t0 = now_ts()
    a = _mem(n, "k", t0, id_="bbbb", content="first", metadata={"agent_id": "origin"})
    status, r = http_json(push, "POST", {"sender_agent_id": "host:a", "memories": [a]})
    assert status == 200 and r["applied"] == 1 and "ids" not in r
    older = _mem(n, "k", ts_in(-10, t0), content="older", priority=9)
    _, r = http_json(push, "POST", {"sender_agent_id": "host:a", "memories": [older]})
    tie_low = _mem(n, "k", t0, id_="aaaa", content="tie-low")
    tie_high = _mem(n, "k", t0, id_="cccc", content="tie-high", metadata={"agent_id": "thief"}, tier="long")
    http_json(push, "POST", {"sender_agent_id": "host:a", "memories": [tie_low]})
    _, got = http_json(f"{peer.url}/api/v1/memories/bbbb")
    assert got["memory"]["content"] == "first"  # older body ignored, lower id on a tie ignored
    assert got["memory"]["priority"] == 9  # but priority takes the max
    http_json(push, "POST", {"sender_agent_id": "host:a", "memories": [tie_high]})
    _, got = http_json(f"{peer.url}/api/v1/memories/bbbb")
    m = got["memory"]
    assert m["content"] == "tie-high" and m["id"] == "bbbb"
    assert m["metadata"]["agent_id"] == "origin" and m["tier"] == "long" and "expires_at" not in m
    down = _mem(n, "k", ts_in(5, t0), content="newest", tier="short", expires_at=ts_in(3600))
    http_json(push, "POST", {"sender_agent_id": "host:a", "memories": [down]})
    _, got = http_json(f"{peer.url}/api/v1/memories/bbbb")
    assert got["memory"]["tier"] == "long" and got["memory"]["content"] == "newest"


def test_sync_push_counts_skipped_noop_and_validates(peer: PeerProc) -> None:
    n = ns()
    push = f"{peer.url}/api/v1/sync/push"
    good = _mem(n, "ok", now_ts())
    bad = _mem(n, "bad", now_ts(), priority=99)
    status, r = http_json(push, "POST", {"sender_agent_id": "host:a", "memories": [good, bad]})
    assert status == 200 and (r["applied"], r["skipped"], r["noop"]) == (1, 1, 0)
    _, r = http_json(push, "POST", {"sender_agent_id": "host:a", "memories": [good]})
    assert (r["applied"], r["noop"]) == (0, 1)
    assert set(r) >= {"applied", "deleted", "archived", "restored", "links_applied", "pendings_applied",
                      "pending_decisions_applied", "namespace_meta_applied", "namespace_meta_cleared", "noop",
                      "skipped", "dry_run", "receiver_agent_id", "receiver_clock"}
    status, r = http_json(push, "POST", {"sender_agent_id": "bad id", "memories": []})
    assert status == 400 and r["error"].startswith("invalid sender_agent_id:")
    assert http_json(push, "POST", {"sender_agent_id": "host:a"})[0] == 422
    status, r = http_json(push, "POST", {"sender_agent_id": "host:a", "memories": [good] * 1001})
    assert status == 400 and r["error"] == "sync_push limited to 1000 memories per request"
    _, r = http_json(push, "POST", {"sender_agent_id": "host:a", "memories": [], "deletions": [good["id"]]})
    assert r["deleted"] == 1
    assert http_json(f"{peer.url}/api/v1/memories/{good['id']}")[0] == 404


def test_sync_since_orders_by_updated_at_with_string_compare_and_limit(peer: PeerProc) -> None:
    n = ns()
    t = now_ts()
    rows = [_mem(n, f"s{i}", ts_in(i, t)) for i in range(5)]
    http_json(f"{peer.url}/api/v1/sync/push", "POST", {"sender_agent_id": "host:a", "memories": rows[::-1]})
    since = ts_in(0.5, t)
    status, r = http_json(f"{peer.url}/api/v1/sync/since?since={since.replace('+', '%2B')}&limit=2&peer=host:zz")
    assert status == 200 and r["limit"] == 2 and r["updated_since"] == since
    assert [m["title"] for m in r["memories"]] == ["s1", "s2"]
    assert r["earliest_updated_at"] == rows[1]["updated_at"] and r["latest_updated_at"] == rows[2]["updated_at"]
    status, r = http_json(f"{peer.url}/api/v1/sync/since?since=yesterday")
    assert status == 400 and r == {"error": "invalid `since` parameter — expected RFC 3339 timestamp"}
    _, r = http_json(f"{peer.url}/api/v1/sync/since")
    assert r["limit"] == 500 and r["updated_since"] is None


def test_keep_alive_serves_many_requests_on_one_connection(peer: PeerProc) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", peer.port, timeout=5)
    try:
        conn.connect()
        local = conn.sock.getsockname()
        for i in range(20):
            conn.request("POST", "/api/v1/memories", body=json.dumps({"title": f"ka{i}", "content": "c",
                                                                      "namespace": "keepalive"}),
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            assert resp.status in (201, 409)
            assert conn.sock.getsockname() == local
    finally:
        conn.close()


def test_recall_endpoint_is_or_of_tokens(peer: PeerProc) -> None:
    n = ns()
    post(peer, {"title": "alpha note", "content": "about apples", "namespace": n})
    post(peer, {"title": "beta note", "content": "about bananas", "namespace": n})
    _, r = http_json(f"{peer.url}/api/v1/recall?context=apples%20bananas&namespace={n}")
    assert r["count"] == 2 and r["mode"] == "keyword"
    _, s = http_json(f"{peer.url}/api/v1/search?q=apples%20bananas&namespace={n}")
    assert s["count"] == 0
    assert http_json(f"{peer.url}/api/v1/recall?context=x&limit=lots")[0] == 400
    assert http_json(f"{peer.url}/api/v1/recall", "POST", {"context": "apples", "namespace": n})[1]["count"] == 1


def test_raw_socket_garbage_does_not_kill_the_server(peer: PeerProc) -> None:
    with socket.create_connection(("127.0.0.1", peer.port), timeout=5) as s:
        s.sendall(b"NOT-HTTP\r\n\r\n")
        s.recv(1024)
    assert http_json(f"{peer.url}/api/v1/health")[0] == 200


def test_v0631_emulation_answers_409_on_a_duplicate(tmp_path, procs) -> None:
    (port,) = free_ports(1)
    new = PeerProc(port, tmp_path / "o.db", tmp_path / "o.log", env={"AI_MEMORY_REF_ON_CONFLICT_DEFAULT": "error"})
    procs.append(new)
    new.start()
    s1, a = post(new, {"title": "dup", "content": "one", "namespace": "v0631"})
    s2, b = post(new, {"title": "dup", "content": "two", "namespace": "v0631"})
    assert (s1, s2) == (201, 409)
    assert b == {"code": "CONFLICT", "error": "memory with title 'dup' already exists in namespace 'v0631'",
                 "existing_id": a["id"]}


def test_malformed_framing_is_400_and_the_server_keeps_serving(peer: PeerProc) -> None:
    for raw in (b"POST /api/v1/memories HTTP/1.1\r\nContent-Length: many\r\nContent-Type: application/json\r\n\r\n",
                b"POST /api/v1/memories HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json"
                b"\r\n\r\nzz\r\n"):
        with socket.create_connection(("127.0.0.1", peer.port), timeout=5) as s:
            s.sendall(raw)
            assert s.recv(1024).startswith(b"HTTP/1.1 400")
    assert http_json(f"{peer.url}/api/v1/health")[0] == 200


def _raw_exchange(sock: socket.socket, request: bytes) -> tuple[int, bytes]:
    """Send one request on an open connection and read exactly one response (Content-Length framed)."""
    sock.sendall(request)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before a response"
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(h.split(":", 1)[1]) for h in lines[1:] if h.lower().startswith("content-length:"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed in the body"
        rest += chunk
    assert len(rest) == length, "bytes after the response: the server answered a request nobody sent"
    return int(lines[0].split()[1]), rest


def _req(method: str, path: str, body: bytes = b"", *, ctype: bool = True) -> bytes:
    head = [f"{method} {path} HTTP/1.1", "Host: x", f"Content-Length: {len(body)}"]
    if ctype:
        head.append("Content-Type: application/json")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def test_a_body_left_unread_is_never_parsed_as_the_next_request_on_a_kept_alive_connection(peer: PeerProc) -> None:
    """After a 404/405/415/400 with a request body, the next request on the same connection is answered as
    sent (seen with AlphaOne's SDK: the leftover body became a bogus request and the valid store got 400)."""
    n = ns()
    store = json.dumps({"title": "after-early-answer", "content": "c", "namespace": n}).encode()
    bodies = [b'{"some": "json body"}', b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n", b"x" * 70_000]
    with socket.create_connection(("127.0.0.1", peer.port), timeout=10) as s:
        for body in bodies:
            for early, expected in ((_req("POST", "/api/v1/no-such-route", body), 404),
                                    (_req("POST", "/api/v1/health", body), 405),
                                    (_req("PATCH", "/api/v1/memories", body), 405),
                                    (_req("GET", "/api/v1/memories?limit=-1", body), 400),
                                    (_req("POST", "/api/v1/memories/x/y", body), 404)):
                assert _raw_exchange(s, early)[0] == expected
                status, data = _raw_exchange(s, _req("GET", "/api/v1/health"))
                assert status == 200 and json.loads(data)["status"] == "ok"
        status, data = _raw_exchange(s, _req("POST", "/api/v1/memories", store))
        assert status == 201, data
    _, listed = http_json(f"{peer.url}/api/v1/memories?namespace={n}")
    assert [m["title"] for m in listed["memories"]] == ["after-early-answer"]


def test_health_keys_exactly_as_063(peer: PeerProc) -> None:
    _, _, data = http_request(f"{peer.url}/api/v1/health")
    assert list(json.loads(data)) == ["embedder_ready", "federation_enabled", "service", "status", "version"]


def test_list_limit_is_unsigned_default_20_cap_1000(peer: PeerProc) -> None:
    status, _, data = http_request(f"{peer.url}/api/v1/memories?limit=-1")
    assert status == 400 and data == b"Failed to deserialize query string: limit: invalid digit found in string"
    assert http_json(f"{peer.url}/api/v1/memories?limit=0")[1]["count"] == 0


def test_update_promote_delete_link_consolidate_shapes_as_063(peer: PeerProc) -> None:
    n = ns()
    ids = [post(peer, {"title": f"w{i}", "content": f"c{i}", "namespace": n, "tags": [f"t{i}"]})[1]["id"]
           for i in range(4)]
    status, upd = http_json(f"{peer.url}/api/v1/memories/{ids[0]}", "PUT", {"content": "updated", "tags": ["x"]})
    assert status == 200 and upd["id"] == ids[0] and upd["content"] == "updated" and "memory" not in upd
    status, prom = http_json(f"{peer.url}/api/v1/memories/{ids[0]}/promote", "POST")
    assert (status, prom) == (200, {"id": ids[0], "promoted": True, "tier": "long"})
    got = http_json(f"{peer.url}/api/v1/memories/{ids[0]}")[1]["memory"]
    assert got["tier"] == "long" and "expires_at" not in got
    assert http_json(f"{peer.url}/api/v1/memories/nope/promote", "POST")[0] == 404
    status, linked = http_json(f"{peer.url}/api/v1/links", "POST", {"source_id": ids[0], "target_id": ids[1]})
    assert (status, linked) == (201, {"linked": True})
    status, bad = http_json(f"{peer.url}/api/v1/links", "POST",
                            {"source_id": ids[0], "target_id": ids[1], "relation": "bogus"})
    assert status == 400 and bad["error"].startswith("invalid relation 'bogus' — must be one of: related_to")
    links = http_json(f"{peer.url}/api/v1/links/{ids[1]}")[1]["links"]
    assert [(lk["source_id"], lk["target_id"], lk["relation"]) for lk in links] == [(ids[0], ids[1], "related_to")]
    assert set(links[0]) == {"created_at", "relation", "source_id", "target_id"}
    status, cons = http_json(f"{peer.url}/api/v1/consolidate", "POST",
                             {"ids": ids[2:], "title": "merged", "summary": "both", "namespace": n})
    assert status == 201 and set(cons) == {"consolidated", "id"} and cons["consolidated"] == 2
    merged = http_json(f"{peer.url}/api/v1/memories/{cons['id']}")[1]["memory"]
    assert (merged["content"], merged["tier"], sorted(merged["tags"])) == ("both", "long", ["t2", "t3"])
    assert all(http_json(f"{peer.url}/api/v1/memories/{i}")[0] == 404 for i in ids[2:])
    assert http_json(f"{peer.url}/api/v1/consolidate", "POST",
                     {"ids": ids[:1], "title": "one", "summary": "s"})[0] == 400
    assert http_json(f"{peer.url}/api/v1/memories/{ids[1]}", "DELETE") == (200, {"deleted": True})
    assert http_json(f"{peer.url}/api/v1/memories/{ids[1]}", "DELETE")[0] == 404


def test_bulk_is_an_array_answers_created_and_errors_and_stamps_no_agent_id(peer: PeerProc) -> None:
    n = ns()
    rows = [{"title": f"b{i}", "content": "c", "namespace": n} for i in range(3)]
    status, out = http_json(f"{peer.url}/api/v1/memories/bulk", "POST", rows, headers={"X-Agent-Id": "ai:bulk"})
    assert (status, out) == (200, {"created": 3, "errors": []})
    listed = http_json(f"{peer.url}/api/v1/memories?namespace={n}")[1]["memories"]
    assert len(listed) == 3 and all(m["metadata"] == {} for m in listed)
    assert len({m["updated_at"] for m in listed}) == 3  # the clean peer: one timestamp per row
    assert http_json(f"{peer.url}/api/v1/memories/bulk", "POST", {"memories": rows})[0] == 422
