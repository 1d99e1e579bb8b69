"""`serve`: the HTTP API of contract section 3 on a ThreadingHTTPServer (HTTP/1.1 keep-alive).

The process that runs this is the server itself (no fork), so SIGKILL/SIGSTOP from a chaos harness hit it.
SIGINT shuts down gracefully and checkpoints the WAL; SIGTERM keeps Python's default (immediate exit),
like the real program. The DB lock is never held across a fan-out: a write commits, releases the lock,
then waits for peer acks.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from refpeer import VERSION, defects
from refpeer.errors import Conflict, RefPeerError, ValidationError
from refpeer.federation import Federation, parse_peers
from refpeer.memory import (
    TIERS,
    agent_id_problem,
    new_memory,
    parse_create,
    parse_memory,
    parse_rfc3339,
    parse_update,
    validate_content,
    validate_namespace,
    validate_title,
)
from refpeer.store import Store

log = logging.getLogger("refpeer.serve")

MAX_BODY = 2 * 1024 * 1024
LIST_DEFAULT, LIST_MAX = 20, 1000
SINCE_DEFAULT, SINCE_MAX = 500, 10_000
BATCH_MAX = 1000
RELATIONS = ("related_to", "supersedes", "contradicts", "derived_from")
CONSOLIDATE_MIN, CONSOLIDATE_MAX = 2, 100
WRITE_BEHIND_FLUSH_S = 1.0
GC_EVERY_S, CHECKPOINT_EVERY_S = 1800.0, 600.0


class HttpError(Exception):
    """A response decided before the handler finished: status, body (dict -> JSON, str -> text), headers."""

    def __init__(self, status: int, body: dict | str | None = None, headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def _hostname() -> str:
    h = socket.gethostname() or "localhost"
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in h)


class WriteBehind:
    """Seeded defect ack_before_durable: acknowledged writes wait in memory and are committed (and only then
    fanned out) by a flusher every second, so a SIGKILL loses every write acknowledged since the last flush."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.pending: dict[tuple[str, str], dict] = {}
        threading.Thread(target=self._loop, name="write-behind", daemon=True).start()

    def has(self, title: str, namespace: str) -> dict | None:
        with self.lock:
            return self.pending.get((title, namespace))

    def add(self, mem: dict) -> None:
        with self.lock:
            self.pending[(mem["title"], mem["namespace"])] = mem

    def _loop(self) -> None:
        while True:
            time.sleep(WRITE_BEHIND_FLUSH_S)
            with self.lock:
                batch = list(self.pending.values())
                self.pending.clear()
            if not batch:
                continue
            try:
                stored = [m for m, _ in self.app.store.store_many(batch, on_conflict="upsert")]
            except RefPeerError as e:
                log.error("write-behind flush failed: %s", e)
                continue
            if self.app.federation:
                self.app.federation.replicate_detached(stored)


class App:
    """Everything the handlers share: the store, the federation, the settings."""

    def __init__(self, store: Store, *, federation: Federation | None, local_id: str,
                 default_on_conflict: str = "merge") -> None:
        self.store = store
        self.federation = federation
        self.local_id = local_id
        self.default_on_conflict = default_on_conflict
        self.write_behind = WriteBehind(self) if defects.enabled("ack_before_durable") else None
        self.requests = 0
        self.in_flight = 0
        self.in_flight_lock = threading.Lock()

    # ---- memories -------------------------------------------------------------------------------

    def create(self, body: Any, headers: Any) -> tuple[int, dict, dict[str, str]]:
        mem, on_conflict = parse_create(body, header_agent_id=headers.get("X-Agent-Id"),
                                        default_on_conflict=self.default_on_conflict)
        if self.write_behind is not None:
            return self._create_write_behind(mem, on_conflict)
        try:
            stored, created = self.store.store(mem, on_conflict=on_conflict)
        except Conflict as e:
            raise HttpError(409, e.body()) from e
        out = {"id": stored["id"], "tier": stored["tier"], "namespace": stored["namespace"],
               "title": stored["title"], "agent_id": stored["metadata"].get("agent_id")}
        # 0.6.3 lists the upserted row itself among the potential contradictions of a duplicate store.
        similar = self.store.similar_ids(stored["title"], stored["namespace"], stored["id"] if created else "")
        if similar:
            out["potential_contradictions"] = similar
        if self.federation is not None:
            outcome = self.federation.replicate(stored)
            if not outcome.ok:
                raise HttpError(503, outcome.body(), {"Retry-After": "2"})
            out["quorum_acks"] = outcome.acks
        return 201, out, {}

    def _create_write_behind(self, mem: dict, on_conflict: str) -> tuple[int, dict, dict[str, str]]:
        assert self.write_behind is not None
        existing = self.store.get_by_title(mem["title"], mem["namespace"]) or self.write_behind.has(
            mem["title"], mem["namespace"])
        if existing is not None and on_conflict == "error":
            raise HttpError(409, Conflict(existing["id"], mem["title"], mem["namespace"]).body())
        self.write_behind.add(mem)
        out = {"id": mem["id"], "tier": mem["tier"], "namespace": mem["namespace"], "title": mem["title"],
               "agent_id": mem["metadata"].get("agent_id")}
        if self.federation is not None:
            out["quorum_acks"] = self.federation.w
        return 201, out, {}

    def bulk(self, body: Any, headers: Any) -> tuple[int, dict, dict[str, str]]:
        """A JSON array of create bodies (<= 1000), committed in one transaction, each row fanned out.

        As at 0.6.3: 200 `{"created", "errors"}` (no ids), no agent id stamped into the rows, and a peer the
        fan-out could not reach is named in `errors` although every row was created.
        """
        if not isinstance(body, list):
            raise HttpError(422, "Failed to deserialize the JSON body into the target type: invalid type: "
                                 "map, expected a sequence")
        if len(body) > BATCH_MAX:
            raise HttpError(400, {"error": f"bulk create limited to {BATCH_MAX} memories per request"})
        errors: list[str] = []
        mems: list[tuple[dict, str]] = []
        tied: str | None = None
        for i, item in enumerate(body):
            try:
                mem, mode = parse_create(item, header_agent_id=None, default_on_conflict=self.default_on_conflict)
            except ValidationError as e:
                errors.append(f"item {i}: {e.message}")
                continue
            own = item.get("metadata") if isinstance(item, dict) else None
            if not (isinstance(own, dict) and "agent_id" in own):
                mem["metadata"].pop("agent_id", None)
            if defects.enabled("bulk_tied_timestamps"):
                tied = tied or mem["updated_at"]
                mem["created_at"] = mem["updated_at"] = tied
            mems.append((mem, mode))
        stored: list[dict] = []
        with self.store.transaction():
            for mem, mode in mems:
                try:
                    s, _ = self.store.store(mem, on_conflict=mode)
                except Conflict as e:
                    errors.append(f"{mem['title']}: {e}")
                    continue
                stored.append(s)
        if self.federation is not None:
            errors.extend(self.federation.replicate_rows(stored))
        return 200, {"created": len(stored), "errors": errors}, {}

    def list(self, q: dict[str, str]) -> dict:
        limit = _q_uint(q, "limit", LIST_DEFAULT)
        offset = _q_uint(q, "offset", 0)
        limit = min(limit, LIST_MAX)
        if defects.enabled("list_ignores_limit"):
            limit = min(limit, LIST_DEFAULT)
        if defects.enabled("list_cap_200"):
            limit = min(limit, 200)
        agent = q.get("agent_id")
        if agent is not None and agent_id_problem(agent):
            raise HttpError(400, {"error": f"invalid agent_id: {agent_id_problem(agent)}"})
        tier = q.get("tier")
        if tier is not None and tier not in TIERS:
            raise HttpError(400, f"Failed to deserialize query string: tier: unknown variant `{tier}`, "
                                 "expected one of `short`, `mid`, `long`")
        mems = self.store.list(namespace=q.get("namespace"), tier=tier, limit=limit, offset=max(0, offset),
                               agent_id=agent, min_priority=_q_int(q, "min_priority", None),
                               since=q.get("since"), until=q.get("until"), tag=q.get("tags"))
        return {"count": len(mems), "memories": mems}

    def update(self, id_: str, body: Any) -> dict:
        fields = parse_update(body)
        try:
            mem = self.store.update(id_, fields)
        except Conflict as e:
            raise HttpError(409, e.body()) from e
        if mem is None:
            raise HttpError(404, {"error": "memory not found"})
        if not defects.enabled("update_not_fanned_out"):
            self._fan_out([mem])
        return mem

    def delete(self, id_: str) -> dict:
        if not self.store.delete(id_):
            raise HttpError(404, {"error": "memory not found"})
        if not defects.enabled("delete_not_fanned_out"):
            self._fan_out([], deletions=[id_], key=id_)
        return {"deleted": True}

    def promote(self, id_: str) -> dict:
        mem = self.store.update(id_, {"tier": "long", "expires_at": None})
        if mem is None:
            raise HttpError(404, {"error": "memory not found"})
        if not defects.enabled("promote_not_fanned_out"):
            self._fan_out([mem])
        return {"id": id_, "promoted": True, "tier": "long"}

    def link(self, body: Any) -> dict:
        if not isinstance(body, dict):
            raise HttpError(422, "Failed to deserialize the JSON body into the target type: invalid type, "
                                 "expected struct LinkBody")
        for f in ("source_id", "target_id"):
            if not isinstance(body.get(f), str):
                raise HttpError(422, f"Failed to deserialize the JSON body into the target type: missing field `{f}`")
        relation = body.get("relation") or "related_to"
        if relation not in RELATIONS:
            raise HttpError(400, {"error": f"invalid relation '{relation}' — must be one of: {', '.join(RELATIONS)}"})
        src, tgt = body["source_id"], body["target_id"]
        if src == tgt:
            raise HttpError(400, {"error": "cannot link a memory to itself"})
        for id_ in (src, tgt):
            if self.store.get(id_) is None:
                raise HttpError(404, {"error": f"memory not found: {id_}"})
        link = self.store.add_link(src, tgt, relation)
        if not defects.enabled("link_not_fanned_out"):
            self._fan_out([], links=[link], key=f"{src}>{tgt}")
        return {"linked": True}

    def consolidate(self, body: Any, headers: Any) -> dict:
        if not isinstance(body, dict):
            raise HttpError(422, "Failed to deserialize the JSON body into the target type: invalid type, "
                                 "expected struct ConsolidateBody")
        ids, title, summary = body.get("ids"), body.get("title"), body.get("summary")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise HttpError(422, "Failed to deserialize the JSON body into the target type: missing field `ids`")
        if not isinstance(title, str) or not isinstance(summary, str):
            missing = "title" if not isinstance(title, str) else "summary"
            raise HttpError(422, f"Failed to deserialize the JSON body into the target type: missing field `{missing}`")
        if not CONSOLIDATE_MIN <= len(ids) <= CONSOLIDATE_MAX:
            raise HttpError(400, {"error": f"consolidate requires between {CONSOLIDATE_MIN} and {CONSOLIDATE_MAX} ids"})
        ns = body.get("namespace") or "global"
        tier = body.get("tier") or "long"
        if tier not in TIERS:
            raise HttpError(422, f"Failed to deserialize the JSON body into the target type: tier: unknown variant `{tier}`")
        validate_title(title)
        validate_content(summary)
        validate_namespace(ns)
        sources = []
        for id_ in dict.fromkeys(ids):
            mem = self.store.get(id_)
            if mem is None:
                raise HttpError(404, {"error": f"memory not found: {id_}"})
            sources.append(mem)
        agent = body.get("agent_id") or headers.get("X-Agent-Id") or f"anonymous:req-{os.urandom(4).hex()}"
        new = new_memory(title, summary, tier=tier, namespace=ns,
                         tags=list(dict.fromkeys(t for m in sources for t in m["tags"]))[:50],
                         priority=max(m["priority"] for m in sources), source="consolidation",
                         metadata={"consolidated_from": list(dict.fromkeys(ids))}, agent_id=agent)
        with self.store.transaction():
            stored, _ = self.store.store(new, on_conflict="merge")
            gone = [m["id"] for m in sources if m["id"] != stored["id"]]
            for id_ in gone:
                self.store.delete(id_)
        if not defects.enabled("consolidate_not_fanned_out"):
            self._fan_out([stored], deletions=gone)
        return {"consolidated": len(sources), "id": stored["id"]}

    def _fan_out(self, mems: list[dict], *, deletions: list[str] | None = None, links: list[dict] | None = None,
                 key: str | None = None) -> None:
        """Replicate a committed change with the write quorum; 503 (change kept locally) when it is not met."""
        if self.federation is None:
            return
        outcome = self.federation.replicate_change(mems, deletions or [], links or [],
                                                   key or (mems[0]["id"] if mems else ""))
        if not outcome.ok:
            raise HttpError(503, outcome.body(), {"Retry-After": "2"})

    # ---- federation endpoints -------------------------------------------------------------------

    def sync_push(self, body: Any, headers: Any) -> dict:
        if not isinstance(body, dict):
            raise HttpError(422, "Failed to deserialize the JSON body into the target type: expected struct SyncPushBody")
        sender = body.get("sender_agent_id")
        if "sender_agent_id" not in body:
            raise HttpError(422, "Failed to deserialize the JSON body into the target type: missing field `sender_agent_id`")
        if not isinstance(sender, str):
            raise HttpError(422, "Failed to deserialize the JSON body into the target type: sender_agent_id: "
                                 "invalid type, expected a string")
        problem = agent_id_problem(sender)
        if problem:
            raise HttpError(400, {"error": f"invalid sender_agent_id: {problem}"})
        if "memories" not in body:
            raise HttpError(422, "Failed to deserialize the JSON body into the target type: missing field `memories`")
        kinds = ("memories", "deletions", "archives", "restores", "links", "pendings", "pending_decisions",
                 "namespace_meta", "namespace_meta_clears")
        for kind in kinds:
            val = body.get(kind)
            if val is None:
                continue
            if not isinstance(val, list):
                raise HttpError(422, f"Failed to deserialize the JSON body into the target type: {kind}: "
                                     "invalid type, expected a sequence")
            if len(val) > BATCH_MAX:
                raise HttpError(400, {"error": f"sync_push limited to {BATCH_MAX} {kind} per request"})
        dry_run = bool(body.get("dry_run", False))
        parsed: list[dict | None] = []
        for raw in body["memories"]:
            try:
                parsed.append(parse_memory(raw))
            except ValidationError as e:
                if e.status == 422:
                    raise HttpError(422, e.message) from e
                parsed.append(None)
        counts = {"applied": 0, "noop": 0, "skipped": 0, "deleted": 0, "archived": 0, "restored": 0}
        links_applied = 0
        with self.store.transaction():
            for mem in parsed:
                if mem is None:
                    counts["skipped"] += 1
                    continue
                if dry_run:
                    exists = self.store.get_by_title(mem["title"], mem["namespace"]) is not None
                    counts["noop" if exists else "applied"] += 1
                    continue
                result = self.store.insert_if_newer(mem)
                counts["applied" if result in ("inserted", "updated") else result] += 1
            if not dry_run:
                for id_ in body.get("deletions") or []:
                    if isinstance(id_, str) and self.store.delete(id_):
                        counts["deleted"] += 1
                ids = [i for i in body.get("archives") or [] if isinstance(i, str)]
                counts["archived"] = self.store.archive(ids) if ids else 0
                for id_ in body.get("restores") or []:
                    if isinstance(id_, str) and self.store.archive_restore(id_) is not None:
                        counts["restored"] += 1
                for link in body.get("links") or []:
                    if _apply_link(self.store, link):
                        links_applied += 1
        receiver = headers.get("X-Agent-Id") or self.local_id
        return {**counts, "links_applied": links_applied, "pendings_applied": 0, "pending_decisions_applied": 0,
                "namespace_meta_applied": 0, "namespace_meta_cleared": 0, "dry_run": dry_run,
                "receiver_agent_id": receiver, "receiver_clock": {"entries": {}}}

    def sync_since(self, q: dict[str, str]) -> dict:
        since = q.get("since")
        if since is not None and parse_rfc3339(since) is None:
            raise HttpError(400, {"error": "invalid `since` parameter — expected RFC 3339 timestamp"})
        limit = max(1, min(_q_int(q, "limit", SINCE_DEFAULT), SINCE_MAX))
        peer = q.get("peer")
        if peer and not agent_id_problem(peer):
            self.store.record_peer_seen(self.local_id, peer)
        mems = self.store.since(since, limit)
        return {"count": len(mems), "limit": limit, "updated_since": since,
                "earliest_updated_at": mems[0]["updated_at"] if mems else None,
                "latest_updated_at": mems[-1]["updated_at"] if mems else None, "memories": mems}

    def health(self) -> tuple[int, dict]:
        body: dict[str, Any] = {"embedder_ready": False, "federation_enabled": self.federation is not None,
                                "service": "ai-memory", "status": "ok", "version": VERSION}
        try:
            self.store.query("SELECT COUNT(*) FROM memories")
            self.store.query("SELECT rowid FROM memories_fts LIMIT 1")
        except Exception as e:
            body["status"] = "error"
            body["error"] = str(e)
            return 503, body
        return 200, body

    def metrics(self) -> str:
        lines = [f"ai_memory_requests_total {self.requests}", f"ai_memory_memories {self.store.count()}"]
        if self.federation is not None:
            for k, v in sorted(self.federation.counters.items()):
                lines.append(f"refpeer_{k}_total {v}")
        return "\n".join(lines) + "\n"


def _q_int(q: dict[str, str], key: str, default: int | None) -> Any:
    v = q.get(key)
    if v is None or v == "":
        return default
    try:
        return int(v)
    except ValueError:
        raise HttpError(400, f"Failed to deserialize query string: {key}: invalid digit found in string") from None


def _q_uint(q: dict[str, str], key: str, default: int) -> int:
    """An unsigned query integer, like axum's u64 extractor (`-1` is a 400, not a clamp)."""
    v = q.get(key)
    if v is None or v == "":
        return default
    if not v.isdigit():
        raise HttpError(400, f"Failed to deserialize query string: {key}: invalid digit found in string")
    return int(v)


def _apply_link(store: Store, link: Any) -> bool:
    """Apply one replicated link (sync_push `links`) when both ends exist here."""
    if not isinstance(link, dict):
        return False
    src, tgt, rel = link.get("source_id"), link.get("target_id"), link.get("relation") or "related_to"
    if not (isinstance(src, str) and isinstance(tgt, str) and rel in RELATIONS):
        return False
    if store.get(src) is None or store.get(tgt) is None:
        return False
    store.add_link(src, tgt, rel)
    return True


class _Headers(dict):
    """Request headers with case-insensitive get()."""

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)


class Handler(BaseHTTPRequestHandler):
    """Routes requests to the App. Responses go out in a single write (headers + body) to dodge Nagle."""

    protocol_version = "HTTP/1.1"
    server_version = "ai-memory"
    timeout = 300
    app: App

    def setup(self) -> None:
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_one_request(self) -> None:
        """A lean HTTP/1.1 request reader (the stdlib's email-based header parser dominates CPU per request)."""
        try:
            line = self.rfile.readline(65537)
            if not line:
                self.close_connection = True
                return
            self.close_connection = True
            self.request_version = "HTTP/1.1"
            if len(line) > 65536:
                self._reply(414, "URI Too Long")
                return
            parts = line.decode("latin-1").split()
            if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                self._reply(400, "Bad Request")
                return
            method, self.path, version = parts
            self.command, self.request_version = method, version
            headers: dict[str, str] = {}
            for _ in range(200):
                h = self.rfile.readline(65537)
                if h in (b"\r\n", b"\n", b""):
                    break
                k, _, v = h.decode("latin-1").partition(":")
                headers[k.strip().lower()] = v.strip()
            else:
                self._reply(431, "Request Header Fields Too Large")
                return
            self.headers = _Headers(headers)  # type: ignore[assignment]
            conn = headers.get("connection", "").lower()
            self.close_connection = conn == "close" or (version == "HTTP/1.0" and conn != "keep-alive")
            if headers.get("expect", "").lower() == "100-continue":
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self._dispatch(method)
        except TimeoutError:
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _send(self, status: int, body: bytes, ctype: str | None, headers: dict[str, str] | None = None) -> None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        lines = [f"HTTP/1.1 {status} {phrase}", f"date: {formatdate(usegmt=True)}", f"content-length: {len(body)}"]
        if ctype:
            lines.append(f"content-type: {ctype}")
        for k, v in (headers or {}).items():
            lines.append(f"{k.lower()}: {v}")
        if self.close_connection:
            lines.append("connection: close")
        if getattr(self, "_head", False):
            body = b""
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def _reply(self, status: int, body: dict | str | None, headers: dict[str, str] | None = None) -> None:
        if body is None:
            self._send(status, b"", None, headers)
        elif isinstance(body, str):
            self._send(status, body.encode(), "text/plain; charset=utf-8", headers)
        else:
            self._send(status, json.dumps(body, ensure_ascii=False).encode(), "application/json", headers)

    def _read_body(self) -> bytes:
        self._body_read = True
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks: list[bytes] = []
            total = 0
            while True:
                line = self.rfile.readline(65537)
                try:
                    size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                except ValueError:
                    self.close_connection = True
                    raise HttpError(400, "invalid chunked body") from None
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_BODY:
                    self.close_connection = True
                    raise HttpError(413, "Failed to buffer the request body: length limit exceeded")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
            return b"".join(chunks)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            raise HttpError(400, "invalid Content-Length header") from None
        if length > MAX_BODY:
            self.close_connection = True
            if length <= 8 * MAX_BODY:  # drain, so a client still sending sees the 413, not a broken pipe
                left = length
                while left > 0 and (chunk := self.rfile.read(min(left, 1 << 16))):
                    left -= len(chunk)
            raise HttpError(413, "Failed to buffer the request body: length limit exceeded")
        return self.rfile.read(length) if length > 0 else b""

    def _drain_unread_body(self) -> None:
        """Consume a body the route never read (404, 405, an early 4xx), so that on a kept-alive connection
        it is never parsed as the next request; a body that cannot be consumed closes the connection."""
        if self._body_read or self.close_connection:
            return
        if not (self.headers.get("Content-Length") or self.headers.get("Transfer-Encoding")):
            return
        try:
            self._read_body()
        except HttpError:
            self.close_connection = True
        except OSError:
            self.close_connection = True

    def _json_body(self) -> Any:
        raw = self._read_body()
        ctype = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if not (ctype == "application/json" or (ctype.startswith("application/") and ctype.endswith("+json"))):
            raise HttpError(415, "Expected request with `Content-Type: application/json`")
        try:
            return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError) as e:
            raise HttpError(400, f"Failed to parse the request body as JSON: {e}") from None

    def _dispatch(self, method: str) -> None:
        if method not in ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"):
            self.close_connection = True
            self._reply(501, "Not Implemented")
            return
        app = self.app
        with app.in_flight_lock:
            app.requests += 1
            app.in_flight += 1
        try:
            self._dispatch_counted(method)
        finally:
            with app.in_flight_lock:
                app.in_flight -= 1

    def _dispatch_counted(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        self._body_read = False
        try:
            q = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True, strict_parsing=False).items()}
        except ValueError:
            self._drain_unread_body()
            self._reply(400, "Failed to deserialize query string")
            return
        self._head = method == "HEAD"  # axum answers HEAD on every GET route, without the body
        try:
            status, body, headers = self._route("GET" if self._head else method, path, q)
        except HttpError as e:
            if e.status in (413,) or self.close_connection:
                self.close_connection = True
            status, body, headers = e.status, e.body, e.headers
        except ValidationError as e:
            status, body, headers = e.status, ({"error": e.message} if e.status == 400 else e.message), {}
        except Exception:
            log.exception("internal error on %s %s", method, path)
            status, body, headers = 500, {"error": "internal server error"}, {}
        self._drain_unread_body()
        try:
            self._reply(status, body, headers)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _route(self, method: str, path: str, q: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        app = self.app
        if path == "/api/v1/health":
            _allow(method, "GET")
            status, body = app.health()
            return status, body, {}
        if path == "/api/v1/memories":
            _allow(method, "GET", "POST")
            if method == "GET":
                return 200, app.list(q), {}
            return app.create(self._json_body(), self.headers)
        if path == "/api/v1/memories/bulk":
            _allow(method, "POST")
            return app.bulk(self._json_body(), self.headers)
        if path.startswith("/api/v1/memories/") and path.endswith("/promote"):
            id_ = unquote(path[len("/api/v1/memories/"):-len("/promote")])
            if not id_ or "/" in id_:
                raise HttpError(404)
            _allow(method, "POST")
            return 200, app.promote(id_), {}
        if path.startswith("/api/v1/memories/"):
            id_ = unquote(path[len("/api/v1/memories/"):])
            if not id_ or "/" in id_:
                raise HttpError(404)
            _allow(method, "GET", "PUT", "DELETE")
            if method == "GET":
                mem = app.store.get(id_)
                if mem is None:
                    raise HttpError(404, {"error": "memory not found"})
                return 200, {"memory": mem, "links": app.store.get_links(id_)}, {}
            if method == "PUT":
                return 200, app.update(id_, self._json_body()), {}
            return 200, app.delete(id_), {}
        if path == "/api/v1/links":
            _allow(method, "POST")
            return 201, app.link(self._json_body()), {}
        if path.startswith("/api/v1/links/"):
            id_ = unquote(path[len("/api/v1/links/"):])
            if not id_ or "/" in id_:
                raise HttpError(404)
            _allow(method, "GET")
            return 200, {"links": [{k: v for k, v in link.items() if k in ("source_id", "target_id", "relation",
                                                                            "created_at")}
                                   for link in app.store.get_links(id_)]}, {}
        if path == "/api/v1/consolidate":
            _allow(method, "POST")
            return 201, app.consolidate(self._json_body(), self.headers), {}
        if path == "/api/v1/stats":
            _allow(method, "GET")
            return 200, app.store.stats(), {}
        if path == "/api/v1/namespaces":
            _allow(method, "GET")
            if "namespace" in q:
                return 200, {"namespace": q["namespace"], "standard": None}, {}
            return 200, {"namespaces": app.store.namespaces()}, {}
        if path == "/api/v1/sync/push":
            _allow(method, "POST")
            return 200, app.sync_push(self._json_body(), self.headers), {}
        if path == "/api/v1/sync/since":
            _allow(method, "GET")
            return 200, app.sync_since(q), {}
        if path in ("/api/v1/recall", "/api/v1/search"):
            _allow(method, "GET", "POST")
            args = q if method == "GET" else (self._json_body() or {})
            if not isinstance(args, dict):
                raise HttpError(422, "Failed to deserialize the JSON body into the target type: expected a map")
            text = str(args.get("context") or args.get("q") or args.get("query") or "")
            ns = args.get("namespace")
            if ns is not None and not isinstance(ns, str):
                raise HttpError(422, "namespace: invalid type, expected a string")
            if path.endswith("recall"):
                limit = max(1, min(_q_int({"limit": str(args.get("limit") or 10)}, "limit", 10), 50))
                mems = app.store.recall(text, limit=limit, namespace=ns)
                return 200, {"count": len(mems), "memories": mems, "mode": "keyword",
                             "tokens_used": sum((len(m["title"]) + len(m["content"])) // 4 + 1 for m in mems)}, {}
            limit = max(1, min(_q_int({"limit": str(args.get("limit") or 20)}, "limit", 20), 200))
            mems = app.store.search(text, limit=limit, namespace=ns)
            return 200, {"count": len(mems), "results": mems}, {}
        if path == "/api/v1/gc":
            _allow(method, "POST")
            n = app.store.gc()
            return 200, {"expired_deleted": n}, {}
        if path in ("/metrics", "/api/v1/metrics"):
            _allow(method, "GET")
            return 200, app.metrics(), {"Content-Type": "text/plain; version=0.0.4"}
        raise HttpError(404)


def _allow(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise HttpError(405, None, {"Allow": ", ".join(allowed)})


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid number `{name}`")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024
    allow_reuse_address = True


def serve_main(args: argparse.Namespace, db: str) -> None:
    """Start the server in this process and block until SIGINT."""
    logging.basicConfig(stream=sys.stdout, level=os.environ.get("AI_MEMORY_REF_LOG", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    peers = parse_peers(args.quorum_peers)
    if args.quorum_writes < 0:
        raise RefPeerError(f"--quorum-writes must be >= 0 (got {args.quorum_writes})")
    if args.quorum_timeout_ms <= 0:
        raise RefPeerError(f"--quorum-timeout-ms must be > 0 (got {args.quorum_timeout_ms})")
    if args.catchup_interval_secs < 0:
        raise RefPeerError(f"--catchup-interval-secs must be >= 0 (got {args.catchup_interval_secs})")
    sync = os.environ.get("AI_MEMORY_REF_SYNCHRONOUS", "FULL").upper()
    if sync not in ("OFF", "NORMAL", "FULL", "EXTRA"):
        raise RefPeerError(f"AI_MEMORY_REF_SYNCHRONOUS must be OFF, NORMAL, FULL or EXTRA (got {sync})")
    default_conflict = os.environ.get("AI_MEMORY_REF_ON_CONFLICT_DEFAULT", "merge")
    if default_conflict not in ("error", "merge", "version"):
        raise RefPeerError(f"AI_MEMORY_REF_ON_CONFLICT_DEFAULT must be error, merge or version (got {default_conflict})")
    store = Store(db, synchronous=sync, group_commit=True)
    local_id = f"host:{_hostname()}"
    federation = None
    if args.quorum_writes >= 1 and peers:
        federation = Federation(store, peers, args.quorum_writes, args.quorum_timeout_ms,
                                args.catchup_interval_secs, local_id)
    app = App(store, federation=federation, local_id=local_id, default_on_conflict=default_conflict)
    handler = type("BoundHandler", (Handler,), {"app": app})
    try:
        httpd = Server((args.host, args.port), handler)
    except OSError as e:
        store.close()
        raise RefPeerError(f"cannot bind {args.host}:{args.port}: {e}") from e
    stopping = threading.Event()

    def on_sigint(_sig: int, _frame: Any) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGINT, on_sigint)
    threading.Thread(target=_maintenance, args=(store, stopping), name="maintenance", daemon=True).start()
    if federation is not None:
        federation.start_catchup()
    active = sorted(defects.active())
    log.info("ai-memory %s serve listening on http://%s:%d (db=%s, federation=%s%s)", VERSION, args.host,
             httpd.server_address[1], db,
             f"W={federation.w}/N={federation.n} peers={','.join(p.url for p in federation.peers)} "
             f"timeout={args.quorum_timeout_ms}ms catchup={args.catchup_interval_secs}s" if federation else "off",
             f", seeded defects: {','.join(active)}" if active else "")
    for h in logging.getLogger().handlers:
        h.flush()
    try:
        httpd.serve_forever(poll_interval=0.2)
        deadline = time.monotonic() + args.shutdown_grace_secs
        while app.in_flight > 0 and time.monotonic() < deadline:  # let in-flight requests finish
            time.sleep(0.05)
    finally:
        httpd.server_close()
        if federation is not None:
            federation.close()
        store.close()
        log.info("shutdown complete")


def _maintenance(store: Store, stopping: threading.Event) -> None:
    """GC expired rows every 30 min and checkpoint the WAL every 10 min, like the real daemon."""
    last_gc = last_ckpt = time.monotonic()
    while not stopping.wait(5.0):
        now = time.monotonic()
        try:
            if now - last_gc >= GC_EVERY_S:
                store.gc()
                last_gc = now
            if now - last_ckpt >= CHECKPOINT_EVERY_S:
                store.checkpoint()
                last_ckpt = now
        except Exception as e:
            log.warning("maintenance failed: %s", e)
