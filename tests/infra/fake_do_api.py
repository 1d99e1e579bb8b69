"""A fake DigitalOcean API v2 on 127.0.0.1: real HTTP, in-memory state, scripted faults.

Just enough of the API for the janitor: tag-filtered and paginated lists (a small page size forces
several pages), VPC members, DELETEs that take a few member polls to take effect (as DigitalOcean's
do), a VPC that refuses deletion while it has members, 401 without the right bearer token, and
scripted 429/5xx answers. Every request is logged for the tests to inspect.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit


@dataclass
class FakeState:
    token: str
    droplets: list[dict[str, Any]] = field(default_factory=list)
    databases: list[dict[str, Any]] = field(default_factory=list)
    firewalls: list[dict[str, Any]] = field(default_factory=list)
    ssh_keys: list[dict[str, Any]] = field(default_factory=list)
    vpcs: list[dict[str, Any]] = field(default_factory=list)
    tags: set[str] = field(default_factory=set)
    page_cap: int = 2
    linger_polls: int = 2
    # (method, path) -> statuses to answer before serving normally, e.g. [429, 503]
    faults: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    retry_after: str | None = "0"
    next_base: str | None = None  # write pagination links against this base instead of the server's own
    log: list[tuple[str, str, dict[str, list[str]]]] = field(default_factory=list)
    # resources deleted but still VPC members for a few more member polls: vpc id -> [member, polls left]
    lingering: dict[str, list[list[Any]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def members(self, vpc_id: str) -> list[dict[str, Any]]:
        out = [{"urn": f"do:droplet:{d['id']}", "name": d["name"]} for d in self.droplets if d.get("vpc_uuid") == vpc_id]
        out += [
            {"urn": f"do:dbaas:{db['id']}", "name": db["name"]}
            for db in self.databases
            if db.get("private_network_uuid") == vpc_id
        ]
        linger = self.lingering.get(vpc_id, [])
        out += [m for m, _ in linger]
        for entry in linger:
            entry[1] -= 1
        self.lingering[vpc_id] = [e for e in linger if e[1] > 0]
        return out


class _Handler(BaseHTTPRequestHandler):
    server: FakeDoServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        st = self.server.state
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        with st.lock:
            st.log.append((method, path, query))
            if self.headers.get("Authorization") != f"Bearer {st.token}":
                self._send(401, {"id": "unauthorized", "message": "Unable to authenticate you"})
                return
            scripted = st.faults.get((method, path))
            if scripted:
                status = scripted.pop(0)
                headers = {"Retry-After": st.retry_after} if st.retry_after is not None else {}
                self._send(status, {"id": "too_many_requests" if status == 429 else "server_error", "message": "x"},
                           headers)
                return
            try:
                status, body = (self._get if method == "GET" else self._delete)(path, query)
            except KeyError:
                status, body = 404, {"id": "not_found", "message": "The resource you requested could not be found."}
            self._send(status, body)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _page(self, path: str, query: dict[str, list[str]], key: str, items: list[dict[str, Any]]):
        per_page = min(int(query.get("per_page", ["20"])[0]), self.server.state.page_cap)
        page = int(query.get("page", ["1"])[0])
        chunk = items[(page - 1) * per_page : page * per_page]
        links: dict[str, Any] = {}
        if page * per_page < len(items):
            q = {k: v[0] for k, v in query.items()}
            q.update(page=str(page + 1), per_page=str(per_page))
            base = self.server.state.next_base or self.server.url
            links = {"pages": {"next": f"{base}{path}?{urlencode(q)}"}}
        return 200, {key: chunk, "links": links, "meta": {"total": len(items)}}

    def _get(self, path: str, query: dict[str, list[str]]):
        st = self.server.state
        tag = query.get("tag_name", [None])[0]
        if path == "/v2/droplets":
            items = [d for d in st.droplets if tag is None or tag in d["tags"]]
            return self._page(path, query, "droplets", items)
        if path == "/v2/databases":
            items = [d for d in st.databases if tag is None or tag in d["tags"]]
            return 200, {"databases": items or None}
        if path == "/v2/firewalls":
            return self._page(path, query, "firewalls", st.firewalls)
        if path == "/v2/account/keys":
            return self._page(path, query, "ssh_keys", st.ssh_keys)
        if path == "/v2/vpcs":
            return self._page(path, query, "vpcs", st.vpcs)
        if path.startswith("/v2/vpcs/") and path.endswith("/members"):
            vpc_id = path.split("/")[3]
            return self._page(path, query, "members", st.members(vpc_id))
        if path.startswith("/v2/tags/"):
            name = unquote(path.split("/", 3)[3])
            if name not in st.tags:
                raise KeyError(name)
            return 200, {"tag": {"name": name}}
        raise KeyError(path)

    def _delete(self, path: str, query: dict[str, list[str]]):
        st = self.server.state
        _, _, kind, *rest = path.split("/")
        ident = unquote("/".join(rest))
        if kind == "account" and rest[:1] == ["keys"]:
            kind, ident = "keys", unquote(rest[1])
        if kind == "droplets":
            d = next((x for x in st.droplets if str(x["id"]) == ident), None)
            if d is None:
                raise KeyError(ident)
            st.droplets.remove(d)
            st.lingering.setdefault(d["vpc_uuid"], []).append(
                [{"urn": f"do:droplet:{d['id']}", "name": d["name"]}, st.linger_polls])
            return 204, None
        if kind == "databases":
            db = next((x for x in st.databases if x["id"] == ident), None)
            if db is None:
                raise KeyError(ident)
            st.databases.remove(db)
            st.lingering.setdefault(db["private_network_uuid"], []).append(
                [{"urn": f"do:dbaas:{db['id']}", "name": db["name"]}, st.linger_polls])
            return 204, None
        if kind in ("firewalls", "keys"):
            coll = st.firewalls if kind == "firewalls" else st.ssh_keys
            item = next((x for x in coll if str(x["id"]) == ident), None)
            if item is None:
                raise KeyError(ident)
            coll.remove(item)
            return 204, None
        if kind == "vpcs":
            vpc = next((x for x in st.vpcs if x["id"] == ident), None)
            if vpc is None:
                raise KeyError(ident)
            if st.members(ident):
                return 409, {"id": "conflict", "message": "VPC cannot be deleted while it has members"}
            st.vpcs.remove(vpc)
            return 204, None
        if kind == "tags":
            if ident not in st.tags:
                raise KeyError(ident)
            st.tags.remove(ident)
            return 204, None
        raise KeyError(path)


class FakeDoServer(ThreadingHTTPServer):
    """Serves `state` on 127.0.0.1:<free port> until `close()`."""

    daemon_threads = True

    def __init__(self, state: FakeState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=10)

    def requests(self, method: str | None = None) -> list[tuple[str, str]]:
        with self.state.lock:
            return [(m, p) for m, p, _ in self.state.log if method is None or m == method]
