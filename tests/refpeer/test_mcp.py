"""`ai-memory-ref mcp` as a real subprocess over pipes: protocol, profiles, and every tool really working."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from refpeer.mcp_catalog import V063_TOOLS
from refpeer.mcp_tools import _host
from refpeer.memory import new_memory, ts_in
from refpeer.store import Store

REF = str(Path(sys.executable).parent / "ai-memory-ref")
REPLY_TIMEOUT = 20.0

CORE = ["memory_store", "memory_recall", "memory_search", "memory_list", "memory_get", "memory_capabilities"]
LATER = ["memory_load_family", "memory_smart_load", "memory_find_paths", "memory_verify", "memory_replay",
         "memory_subscription_replay", "memory_subscription_dlq_list", "memory_quota_status"]


class Mcp:
    """One `ai-memory-ref mcp` process; replies are read by a thread so every wait has a deadline."""

    def __init__(self, db: Path, *args: str, env: dict[str, str] | None = None) -> None:
        full_env = {k: v for k, v in os.environ.items()
                    if k not in ("AI_MEMORY_PROFILE", "AI_MEMORY_REF_DEFECTS", "AI_MEMORY_AGENT_ID")}
        full_env.update({"AI_MEMORY_DB": str(db), **(env or {})})
        self.proc = subprocess.Popen([REF, "mcp", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=full_env, bufsize=1)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self._next_id = 0
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def send_raw(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def read(self) -> dict[str, Any]:
        line = self.lines.get(timeout=REPLY_TIMEOUT)
        assert line is not None, f"mcp exited; stderr: {self.proc.stderr.read() if self.proc.stderr else ''}"
        return json.loads(line)

    def request(self, method: str, params: Any = None) -> dict[str, Any]:
        self._next_id += 1
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if params is not None:
            msg["params"] = params
        self.send_raw(json.dumps(msg))
        reply = self.read()
        assert reply["id"] == self._next_id
        return reply

    def call(self, tool: str, **arguments: Any) -> Any:
        """tools/call that must succeed; returns the parsed JSON text."""
        reply = self.request("tools/call", {"name": tool, "arguments": arguments})
        assert "result" in reply, reply
        assert not reply["result"].get("isError"), reply["result"]["content"][0]["text"]
        [content] = reply["result"]["content"]
        assert content["type"] == "text"
        return json.loads(content["text"])

    def call_error(self, tool: str, **arguments: Any) -> str:
        reply = self.request("tools/call", {"name": tool, "arguments": arguments})
        assert reply["result"]["isError"] is True, reply
        return reply["result"]["content"][0]["text"]

    def close(self) -> int:
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            return self.proc.wait(timeout=REPLY_TIMEOUT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=10)
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream:
                    stream.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "mcp.db"


@pytest.fixture
def mcp(db: Path) -> Iterator[Mcp]:
    client = Mcp(db)
    client.request("initialize", {"clientInfo": {"name": "pytest"}})
    yield client
    client.close()


class Hook(BaseHTTPRequestHandler):
    received: queue.Queue[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.received.put((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def webhook() -> Iterator[tuple[str, queue.Queue[tuple[dict[str, str], bytes]]]]:
    received: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()
    handler = type("H", (Hook,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- protocol -------------------------------------------------------------------------------------------


def test_gate_handshake_and_the_43_tools_of_063(db: Path) -> None:
    client = Mcp(db)
    init = client.request("initialize", {"clientInfo": {"name": "ship-gate"}})
    assert init["result"] == {"protocolVersion": "2024-11-05", "capabilities": {"tools": {}, "prompts": {}},
                              "serverInfo": {"name": "ai-memory", "version": "0.6.3"}}
    listed = client.request("tools/list")["result"]
    assert set(listed) == {"tools", "toolsVersion"}
    names = [t["name"] for t in listed["tools"]]
    assert names == list(V063_TOOLS) and len(names) == 43
    assert "memory_kg_query" in names and "memory_load_family" not in names and "memory_quota_status" not in names
    for tool in listed["tools"]:
        assert tool["description"] and tool["inputSchema"]["type"] == "object"
        assert set(tool["inputSchema"].get("required", [])) <= set(tool["inputSchema"]["properties"])
    for later in LATER:  # tools of later releases are unknown at 0.6.3
        err = client.request("tools/call", {"name": later, "arguments": {}})["error"]
        assert err == {"code": -32601, "message": f"unknown tool: {later}"}
    assert client.close() == 0


@pytest.mark.parametrize("profile", ["core", "full", "graph", "nonsense"])
def test_ai_memory_profile_is_ignored(db: Path, profile: str) -> None:
    client = Mcp(db, env={"AI_MEMORY_PROFILE": profile})
    names = [t["name"] for t in client.request("tools/list")["result"]["tools"]]
    assert names == list(V063_TOOLS)
    assert client.close() == 0


def test_there_is_no_profile_option(db: Path) -> None:
    proc = subprocess.run([REF, "mcp", "--profile", "full"], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=30, env={**os.environ, "AI_MEMORY_DB": str(db)}, check=False)
    assert proc.returncode == 2
    assert "--profile" in proc.stderr and proc.stdout == ""


def test_defect_mcp_core_profile_advertises_6_core_tools(db: Path) -> None:
    for env in ({}, {"AI_MEMORY_PROFILE": "full"}):
        client = Mcp(db, env={"AI_MEMORY_REF_DEFECTS": "mcp_core_profile", **env})
        names = [t["name"] for t in client.request("tools/list")["result"]["tools"]]
        assert sorted(names) == sorted(CORE)
        client.close()


def test_protocol_errors_notifications_and_eof(db: Path) -> None:
    client = Mcp(db)
    client.send_raw("")  # blank line: ignored
    client.send_raw('{"jsonrpc":"2.0","method":"notifications/initialized"}')
    client.send_raw('{"jsonrpc":"2.0","id":null,"method":"ping"}')
    client.send_raw("{not json")
    parse = client.read()  # the notifications produced nothing, so this is the parse error
    assert parse["id"] is None and parse["error"]["code"] == -32700
    client.send_raw('{"jsonrpc":"1.0","id":"a","method":"ping"}')
    assert client.read() == {"jsonrpc": "2.0", "id": "a",
                             "error": {"code": -32600, "message": 'invalid JSON-RPC version (must be "2.0")'}}
    client.send_raw("[1,2]")
    assert client.read()["error"]["code"] == -32600
    assert client.request("ping")["result"] == {}
    assert client.request("notifications/initialized")["result"] == {}
    assert client.request("no/such/method")["error"]["code"] == -32601
    unknown = client.request("tools/call", {"name": "memory_nope", "arguments": {}})
    assert unknown["error"] == {"code": -32601, "message": "unknown tool: memory_nope"}
    assert client.request("tools/call", {"arguments": {}})["error"]["code"] == -32602
    bad_args = client.request("tools/call", {"name": "memory_list", "arguments": [1]})
    assert bad_args["error"]["code"] == -32602
    missing = client.request("tools/call", {"name": "memory_store", "arguments": {"title": "t"}})
    assert missing["error"]["code"] == -32602 and "content" in missing["error"]["message"]
    wrong_type = client.request("tools/call", {"name": "memory_list", "arguments": {"limit": "5"}})
    assert wrong_type["error"]["code"] == -32602 and "limit" in wrong_type["error"]["message"]
    bad_enum = client.request("tools/call", {"name": "memory_store",
                                             "arguments": {"title": "t", "content": "c", "tier": "forever"}})
    assert bad_enum["error"]["code"] == -32602 and "tier" in bad_enum["error"]["message"]
    too_big = client.request("tools/call", {"name": "memory_recall", "arguments": {"context": "x", "limit": 51}})
    assert too_big["error"]["code"] == -32602
    prompts = client.request("prompts/list")["result"]["prompts"]
    assert [p["name"] for p in prompts] == ["recall-first", "memory-workflow"]
    got = client.request("prompts/get", {"name": "recall-first", "arguments": {"namespace": "proj"}})
    assert "proj" in got["result"]["messages"][0]["content"]["text"]
    assert client.request("prompts/get", {"name": "nope"})["error"]["code"] == -32602
    assert client.close() == 0


def test_tool_call_as_notification_runs_silently(db: Path) -> None:
    client = Mcp(db)
    client.send_raw(json.dumps({"jsonrpc": "2.0", "method": "tools/call", "params": {
        "name": "memory_store", "arguments": {"title": "silent", "content": "stored by a notification"}}}))
    listed = client.call("memory_list")
    assert [m["title"] for m in listed["memories"]] == ["silent"]
    client.close()


# ---- every tool -----------------------------------------------------------------------------------------


def test_every_063_tool_works(mcp: Mcp, db: Path,
                                       webhook: tuple[str, queue.Queue[tuple[dict[str, str], bytes]]]) -> None:
    called: set[str] = set()

    def call(tool: str, **kw: Any) -> Any:
        called.add(tool)
        return mcp.call(tool, **kw)

    def error(tool: str, **kw: Any) -> str:
        called.add(tool)
        return mcp.call_error(tool, **kw)

    url, received = webhook
    me = f"ai:pytest@{_host()}:pid-{mcp.proc.pid}"
    assert "is not registered" in error("memory_subscribe", url=url)
    reg = call("memory_agent_register", agent_id=me, agent_type="ai:claude-opus-4.7", capabilities=["hooks"])
    assert reg["registered"] is True and reg["agent_id"] == me
    sub = call("memory_subscribe", url=url, events="memory_store,memory_delete", secret="s3cret",
               namespace_filter="proj/app")
    assert sub["url"] == url and sub["created_by"] == me and "secret" not in json.dumps(sub)
    subs = call("memory_list_subscriptions")
    assert subs["count"] == 1 and subs["subscriptions"][0]["id"] == sub["id"]
    assert subs["subscriptions"][0]["signed"] is True
    assert "secret_hash" not in json.dumps(subs)

    # store / get / list / search / recall
    a = call("memory_store", title="alpha decision", content="we chose postgres for the ledger service",
             namespace="proj/app", tags=["db", "decision"], priority=8, metadata={"family": "decisions"})
    assert a["agent_id"].startswith("ai:pytest@") and a["namespace"] == "proj/app"
    headers, body = received.get(timeout=REPLY_TIMEOUT)
    event = json.loads(body)
    assert event["event"] == "memory_store" and event["memory_id"] == a["id"]
    key = hashlib.sha256(b"s3cret").hexdigest().encode()
    assert headers["X-Ai-Memory-Signature"] == "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
    b = call("memory_store", title="beta note", content="the ledger service needs nightly backups",
             namespace="proj/app", tier="long", metadata={"family": "ops"}, agent_id="ai:other")
    dup = call("memory_store", title="alpha decision", content="we chose postgres 18 for the ledger service",
               namespace="proj/app", metadata={"family": "decisions"})
    assert dup["id"] == a["id"] and dup["duplicate"] is True
    c = call("memory_store", title="gamma", content="unrelated cooking recipe with basil", namespace="misc",
             tier="short")
    got = call("memory_get", id=a["id"])
    assert got["content"] == "we chose postgres 18 for the ledger service" and got["links"] == []
    assert got["metadata"]["agent_id"] == a["agent_id"]
    listed = call("memory_list", namespace="proj/app")
    assert {m["id"] for m in listed["memories"]} == {a["id"], b["id"]}
    assert call("memory_list", tier="short")["memories"][0]["id"] == c["id"]
    assert [m["id"] for m in call("memory_list", agent_id="ai:other")["memories"]] == [b["id"]]
    found = call("memory_search", query="ledger service")
    assert {m["id"] for m in found["results"]} == {a["id"], b["id"]}
    assert call("memory_search", query="ledger basil")["count"] == 0
    recalled = call("memory_recall", context="postgres basil")
    assert {m["id"] for m in recalled["memories"]} == {a["id"], c["id"]} and recalled["mode"] == "keyword"
    assert all("score" in m for m in recalled["memories"])
    assert call("memory_get", id=c["id"])["access_count"] == 1  # recall touched it
    toon = mcp.request("tools/call", {"name": "memory_list", "arguments": {"format": "toon_compact"}})
    assert toon["result"]["content"][0]["text"].startswith("count: 4\nmemories[4]{id,title,tier,namespace,priority")


    # taxonomy, stats, capabilities, session start
    tax = call("memory_get_taxonomy")
    assert tax["total_count"] == 4  # the three memories and the caller's _agents entry
    proj = next(n for n in tax["tree"]["children"] if n["name"] == "proj")
    assert proj["subtree_count"] == 2 and proj["children"][0]["namespace"] == "proj/app"
    stats = call("memory_stats")
    assert stats["total"] == 4 and {"by_tier", "by_namespace", "links_count", "db_size_bytes"} <= stats.keys()
    caps = call("memory_capabilities")
    assert caps["tier"] == "keyword" and caps["tools_loaded"] == 43 and caps["features"]["query_expansion"] is False
    fam_caps = call("memory_capabilities", family="archive", include_schema=True)
    assert [t["name"] for t in fam_caps["tools"]] == ["memory_archive_list", "memory_archive_restore",
                                                      "memory_archive_purge", "memory_archive_stats"]
    session = call("memory_session_start", namespace="proj/app", limit=1)
    assert session["count"] == 1 and session["mode"] == "session_start"
    assert session["memories"][0]["id"] in {a["id"], b["id"]} and session["memories"][0]["score"] == 0.0

    # duplicates check (lexical)
    near = call("memory_check_duplicate", title="alpha decision",
                content="we chose postgres 18 for the ledger service")
    assert near["is_duplicate"] is True and near["suggested_merge"] == a["id"]
    assert near["candidates_scanned"] == 4 and near["nearest"]["similarity"] == 1.0
    far = call("memory_check_duplicate", title="weather", content="sunny tomorrow", threshold=0.9)
    assert far["is_duplicate"] is False

    # links and the knowledge graph
    assert call("memory_link", source_id=a["id"], target_id=b["id"], relation="supersedes")["linked"] is True
    assert call("memory_link", source_id=b["id"], target_id=c["id"])["relation"] == "related_to"
    assert "itself" in error("memory_link", source_id=a["id"], target_id=a["id"])
    links = call("memory_get_links", id=b["id"])
    assert links["count"] == 2
    assert call("memory_get", id=a["id"])["links"][0]["target_id"] == b["id"]
    q1 = call("memory_kg_query", source_id=a["id"])
    assert [n["id"] for n in q1["nodes"]] == [b["id"]]
    q2 = call("memory_kg_query", source_id=a["id"], max_depth=2)
    assert [n["id"] for n in q2["nodes"]] == [b["id"], c["id"]] and q2["nodes"][1]["depth"] == 2
    timeline = call("memory_kg_timeline", source_id=a["id"])
    assert timeline["events"][0]["target_id"] == b["id"] and timeline["events"][0]["target_title"] == "beta note"
    inv = call("memory_kg_invalidate", source_id=a["id"], target_id=b["id"], relation="supersedes",
               valid_until=ts_in(-1))
    assert inv["invalidated"] is True
    assert call("memory_kg_query", source_id=a["id"])["count"] == 0
    assert call("memory_kg_query", source_id=a["id"], include_invalidated=True)["count"] == 1

    # entities
    ent = call("memory_entity_register", canonical_name="PostgreSQL", aliases=["postgres", "pg"])
    assert ent["created"] is True and set(ent["aliases"]) == {"PostgreSQL", "postgres", "pg"}
    byalias = call("memory_entity_get_by_alias", alias="pg")
    assert byalias["found"] is True and byalias["entity_id"] == ent["entity_id"]
    assert call("memory_entity_get_by_alias", alias="mysql")["found"] is False
    again = call("memory_entity_register", canonical_name="PostgreSQL", aliases=["psql"])
    assert again["entity_id"] == ent["entity_id"] and again["created"] is False and "psql" in again["aliases"]
    other = call("memory_entity_register", canonical_name="Postgres Fork", aliases=["x1"])
    assert "already registered" in error("memory_entity_register", canonical_name="Another", aliases=["x1"])
    assert other["entity_id"] != ent["entity_id"]

    # update, promote, the LLM tools
    upd = call("memory_update", id=c["id"], content="a better basil recipe", priority=3, tags=["food"])
    assert upd["updated"] is True and upd["memory"]["content"] == "a better basil recipe"
    assert call("memory_get", id=c["id"])["tags"] == ["food"]
    assert mcp.request("tools/call", {"name": "memory_update", "arguments": {
        "id": c["id"], "priority": 11}})["error"]["code"] == -32602
    assert error("memory_update", id="no-such-id", content="x") == "memory not found"
    assert call("memory_promote", id=c["id"]) == {"promoted": True, "mode": "tier", "id": c["id"], "tier": "long"}
    promoted = call("memory_get", id=c["id"])
    assert promoted["tier"] == "long" and "expires_at" not in promoted
    clone = call("memory_promote", id=a["id"], to_namespace="proj")
    assert clone["to_namespace"] == "proj" and clone["mode"] == "vertical" and clone["source_id"] == a["id"]
    assert call("memory_get", id=clone["clone_id"])["namespace"] == "proj"
    assert "ancestor" in error("memory_promote", id=a["id"], to_namespace="elsewhere")
    assert error("memory_expand_query", query="x") == \
        "query expansion requires smart or autonomous tier (Ollama LLM)"
    assert error("memory_auto_tag", id=a["id"]) == "auto-tagging requires smart or autonomous tier (Ollama LLM)"
    assert error("memory_detect_contradiction", id_a=a["id"], id_b=b["id"]) == \
        "contradiction detection requires smart or autonomous tier (Ollama LLM)"

    # consolidate
    assert error("memory_consolidate", ids=[a["id"], b["id"]], title="merged") == \
        "summary is required (or use smart/autonomous tier for auto-summarization)"
    s1 = call("memory_store", title="part one", content="first half", namespace="merge")
    s2 = call("memory_store", title="part two", content="second half", namespace="merge")
    merged = call("memory_consolidate", ids=[s1["id"], s2["id"]], title="both parts", summary="first and second",
                  namespace="merge")
    assert merged["consolidated"] == 2
    mm = call("memory_get", id=merged["id"])
    assert mm["tier"] == "long" and mm["source"] == "consolidation"
    assert {lk["target_id"] for lk in mm["links"]} == {s1["id"], s2["id"]}
    assert error("memory_get", id=s1["id"]) == "memory not found"

    # agents, notify, inbox, quota
    bob = call("memory_agent_register", agent_id="ai:bob", agent_type="human", capabilities=["review"])
    assert bob["registered"] is True and bob["capabilities"] == ["review"]
    bob2 = call("memory_agent_register", agent_id="ai:bob", agent_type="system")
    assert bob2["id"] == bob["id"]
    agents = call("memory_agent_list")
    assert agents["count"] == 2
    bob_row = next(x for x in agents["agents"] if x["agent_id"] == "ai:bob")
    assert bob_row["agent_type"] == "system" and bob_row["registered_at"] <= bob_row["last_seen_at"]
    sent = call("memory_notify", target_agent_id="ai:bob", title="ping", payload="please review PR 7")
    assert sent["from"] == me and sent["to"] == "ai:bob" and sent["namespace"] == "_messages/ai:bob"
    call("memory_notify", target_agent_id="ai:bob", title="ping", payload="second message")
    inbox = call("memory_inbox", agent_id="ai:bob")
    assert inbox["count"] == 2 and all(m["read"] is False and m["from"] == me for m in inbox["messages"])
    assert {m["payload"] for m in inbox["messages"]} == {"please review PR 7", "second message"}
    assert call("memory_inbox")["count"] == 0  # the caller's own inbox
    call("memory_recall", context="review")  # reading through recall marks the message read
    assert call("memory_inbox", agent_id="ai:bob", unread_only=True)["count"] == 1

    # governance: standards and pending approvals
    policy = call("memory_store", title="app policy", content="writes need approval", namespace="gov")
    std = call("memory_namespace_set_standard", namespace="gov", id=policy["id"],
               governance={"write": "approve", "delete": "approve"})
    assert std["set"] is True
    assert std == {"set": True, "namespace": "gov", "standard_id": policy["id"],
                   "governance": {"write": "approve", "delete": "approve"}}
    got_std = call("memory_namespace_get_standard", namespace="gov")
    assert got_std["standard_id"] == policy["id"] and got_std["content"] == "writes need approval"
    assert got_std["governance"]["write"] == "approve"
    chain = call("memory_namespace_get_standard", namespace="gov/sub", inherit=True)
    assert chain["chain"] == ["*", "gov", "gov/sub"]
    assert [e["namespace"] for e in chain["standards"]] == ["gov"]
    queued = mcp.call("memory_store", title="needs approval", content="queued write", namespace="gov",
                      agent_id="ai:intern")
    assert queued["status"] == "pending" and queued["action"] == "store"
    pending = call("memory_pending_list")
    assert [p["id"] for p in pending["pending"]] == [queued["pending_id"]]
    approved = call("memory_pending_approve", id=queued["pending_id"])
    assert approved["approved"] is True and approved["executed"] is True and approved["decided_by"] == me
    assert any(m["title"] == "needs approval" for m in call("memory_list", namespace="gov")["memories"])
    queued2 = mcp.call("memory_store", title="rejected write", content="nope", namespace="gov",
                       agent_id="ai:intern")
    assert call("memory_pending_reject", id=queued2["pending_id"])["rejected"] is True
    assert call("memory_pending_list", status="rejected")["count"] == 1
    assert "not found or already decided" in error("memory_pending_approve", id=queued2["pending_id"])
    assert not any(m["title"] == "rejected write" for m in call("memory_list", namespace="gov")["memories"])
    assert call("memory_namespace_clear_standard", namespace="gov")["cleared"] is True
    assert call("memory_namespace_get_standard", namespace="gov")["standard_id"] is None

    # delete (fires the webhook), forget, archive, gc
    while not received.empty():
        received.get_nowait()
    assert call("memory_delete", id=b["id"]) == {"deleted": True}
    assert json.loads(received.get(timeout=REPLY_TIMEOUT)[1])["event"] == "memory_delete"
    assert error("memory_delete", id=b["id"]) == "memory not found"
    assert call("memory_forget", pattern="basil", dry_run=True) == {"would_delete": 1, "dry_run": True}
    assert call("memory_forget", pattern="basil") == {"deleted": 1, "archived": True}
    assert "at least one" in error("memory_forget")
    archived = call("memory_archive_list")
    assert [m["id"] for m in archived["archived"]] == [c["id"]]
    assert call("memory_archive_stats")["archived_total"] == 1
    assert call("memory_archive_restore", id=c["id"]) == {"restored": True, "id": c["id"]}
    assert call("memory_get", id=c["id"])["content"] == "a better basil recipe"
    assert error("memory_archive_restore", id=c["id"]) == "not found in archive"

    store = Store(str(db))  # an expired row, written behind the server's back, for gc
    old = new_memory("stale", "expired row", namespace="misc")
    old["expires_at"] = ts_in(-5)
    store.store(old)
    store.close()
    assert call("memory_gc", dry_run=True) == {"collected": 1, "dry_run": True}
    assert call("memory_gc") == {"collected": 1, "dry_run": False}
    assert call("memory_archive_purge", older_than_days=30) == {"purged": 0}
    assert call("memory_archive_purge")["purged"] == 1
    assert call("memory_archive_stats")["archived_total"] == 0

    # webhook failures: dead-letter queue and replay
    dead = call("memory_subscribe", url=f"http://127.0.0.1:{_closed_port()}/gone", events="memory_store")
    call("memory_store", title="dlq trigger", content="nobody listens", namespace="misc")
    assert "https" in error("memory_subscribe", url="http://example.com/hook")
    assert "SSRF" in error("memory_subscribe", url="https://10.1.2.3/hook")
    assert call("memory_unsubscribe", id=dead["id"]) == {"id": dead["id"], "removed": True}
    assert call("memory_unsubscribe", id=dead["id"]) == {"id": dead["id"], "removed": False}

    assert called == set(V063_TOOLS), sorted(set(V063_TOOLS) - called)


def test_store_validation_errors_are_tool_errors(mcp: Mcp) -> None:
    assert "must be >= 1" in mcp.request("tools/call", {
        "name": "memory_store", "arguments": {"title": "t", "content": "c", "priority": 0}})["error"]["message"]
    assert mcp.call_error("memory_store", title="t", content="c", namespace="has space") == \
        "namespace cannot contain spaces (use hyphens or underscores)"
    assert mcp.request("tools/call", {"name": "memory_store", "arguments": {
        "title": "t", "content": "c", "source": "martian"}})["error"]["code"] == -32602
    assert mcp.call_error("memory_store", title="t", content="  ") == "content cannot be empty"
    assert mcp.call_error("memory_store", title="t", content="c", agent_id="bad id!").startswith("invalid agent_id")
    mcp.call("memory_store", title="t", content="c")
    assert "already exists" in mcp.call_error("memory_store", title="t", content="c2", on_conflict="error")
    versioned = mcp.call("memory_store", title="t", content="c3", on_conflict="version")
    assert versioned["title"] == "t (2)"


def test_agent_id_from_env_and_before_initialize(db: Path) -> None:
    client = Mcp(db, env={"AI_MEMORY_AGENT_ID": "ai:env-agent"})
    assert client.call("memory_store", title="x", content="y")["agent_id"] == "ai:env-agent"
    client.close()
    anon = Mcp(db)
    assert anon.call("memory_store", title="z", content="y")["agent_id"].startswith("host:")
    anon.close()


def test_writes_are_visible_to_the_cli(db: Path) -> None:
    client = Mcp(db)
    stored = client.call("memory_store", title="shared", content="seen by the cli", namespace="x")
    assert client.close() == 0
    proc = subprocess.run([REF, "--db", str(db), "recall", "cli", "--json"], capture_output=True, text=True,
                          timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    assert [m["id"] for m in json.loads(proc.stdout)["memories"]] == [stored["id"]]
