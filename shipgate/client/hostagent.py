#!/usr/bin/env python3
"""The gate's agent: a stdlib-only program uploaded to a host and run there over SSH.

Why an agent: port 9077 is reachable only inside the VPC, so every HTTP request of the gate
(bursts, probes, convergence reads, health polls) is made from a host, not from the operator.
One JSON document (or JSON lines for histories) on stdout; diagnostics on stderr; every request
has a timeout. Subcommands:

  burst   concurrent writers; one JSONL event per invoke and per completion (Jepsen style)
  read    every memory of a namespace on each node, paginated with an explicit limit
  probe   a single write (the quorum probes), with its status, body and latency
  bulk    seed rows through POST /api/v1/memories/bulk
  ops     a planned mixed workload (stdin): one writer per node, one JSONL event per invoke and completion
  state   every row of some namespaces and the links of some ids, on each node (the workload's convergence)
  seed    the migration phase's seed: mixed rows (bulk and single writes) and links, from a recorded seed
  health  poll GET /api/v1/health until "ok" or a deadline
  mcp     drive `ai-memory mcp` over stdio: initialize, tools/list, one tools/call
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from typing import Any

WRITE_PATH = "/api/v1/memories"
# Every row the gate writes is shared. From 0.7.0 a row without `metadata.scope` is private to the agent that
# wrote it and invisible to every other reader (the gate's reads among them); releases before ignore the key.
SHARED = "collective"


def row_metadata(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {**(extra or {}), "scope": SHARED}


class ResponseDeadline(TimeoutError):
    """The whole exchange overran the request timeout (e.g. a body that drips one byte at a time)."""


class _Deadlines:
    """Shuts down the socket of any request still running past its deadline. A socket timeout bounds one
    read, so a server that sends a byte now and then would otherwise hold a request (and the gate) forever."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watched: dict[int, tuple[float, socket.socket]] = {}
        self._expired: set[int] = set()
        self._next = 0
        self._thread: threading.Thread | None = None

    def watch(self, sock: socket.socket, seconds: float) -> int:
        with self._lock:
            self._next += 1
            self._watched[self._next] = (time.monotonic() + seconds, sock)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="deadlines", daemon=True)
                self._thread.start()
            return self._next

    def release(self, key: int) -> bool:
        """Stop watching; True when the deadline had already passed (the socket was shut down)."""
        with self._lock:
            self._watched.pop(key, None)
            if key in self._expired:
                self._expired.discard(key)
                return True
            return False

    def _run(self) -> None:
        while True:
            time.sleep(0.05)  # resolution of the deadlines
            now = time.monotonic()
            with self._lock:
                late = [(k, s) for k, (due, s) in self._watched.items() if due <= now]
                for key, _ in late:
                    del self._watched[key]
                    self._expired.add(key)
            for _, sock in late:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


_DEADLINES = _Deadlines()


def _api_key_header() -> dict[str, str]:
    """`x-api-key` from the key file beside this script, which the gate writes only for a target that needs one
    (ai-memory 0.7.0+ refuses every call but /health without it); no file, no header, as before."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "api-key")
    try:
        with open(path, encoding="utf-8") as fh:
            key = fh.read().strip()
    except FileNotFoundError:
        return {}
    return {"x-api-key": key} if key else {}


API_KEY_HEADER = _api_key_header()


class Endpoint:
    """A keep-alive HTTP/1.1 connection to one node; reconnects after any failure."""

    def __init__(self, base_url: str, timeout: float) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise SystemExit(f"hostagent: bad node URL {base_url!r} (want http://host:port)")
        self.host = parsed.hostname
        self.port = parsed.port or 80
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
                ) -> tuple[int, dict[str, str], bytes]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        hdrs = {"Connection": "keep-alive", **API_KEY_HEADER, **(headers or {})}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        key = None
        try:
            if self.conn.sock is None:
                self.conn.connect()
            key = _DEADLINES.watch(self.conn.sock, self.timeout)
            self.conn.request(method, path, body=data, headers=hdrs)
            resp = self.conn.getresponse()
            payload = resp.read(16 * 1024 * 1024 + 1)
            if len(payload) > 16 * 1024 * 1024:
                raise ValueError("response body larger than 16 MiB")
            done, key = key, None
            if _DEADLINES.release(done):
                raise ResponseDeadline(self._overran("the body was cut off"))
            if resp.getheader("Connection", "").lower() == "close":
                self.close()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload
        except BaseException as exc:
            expired = key is not None and _DEADLINES.release(key)
            self.close()
            if expired and isinstance(exc, Exception):
                raise ResponseDeadline(self._overran(type(exc).__name__)) from exc
            raise

    def _overran(self, how: str) -> str:
        return f"no complete response within {self.timeout:g}s (the server kept the exchange open; {how})"

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def classify_error(exc: BaseException) -> tuple[str, str]:
    """Jepsen semantics: a refused connection never reached the server (fail); a timeout or a reset
    mid-request may or may not have been applied (info, indeterminate)."""
    if isinstance(exc, ConnectionRefusedError):
        return "fail", "connection refused"
    if isinstance(exc, ResponseDeadline):
        return "info", str(exc)
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "info", "timeout"
    if isinstance(exc, (ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError)):
        return "info", f"connection lost: {type(exc).__name__}"
    if isinstance(exc, OSError) and exc.errno in (101, 113):  # network/host unreachable: never sent
        return "fail", f"unreachable: {exc}"
    return "info", f"{type(exc).__name__}: {exc}"


def _emit(lock: threading.Lock, out, event: dict) -> None:
    line = json.dumps(event, separators=(",", ":"))
    with lock:
        out.write(line + "\n")
        out.flush()


def _answer(doc: dict, *, compact: bool = False) -> None:
    """A verb's one JSON object, alone on the last line of stdout: what the gate's parser reads
    (`shipgate.client.output.agent_object`)."""
    sys.stdout.write(json.dumps(doc, separators=(",", ":") if compact else None) + "\n")


def write_once(ep: Endpoint, body: dict, agent_id: str | None) -> dict:
    """One POST, classified. `type` is ok (201), fail (definitely not applied) or info (unknown)."""
    headers = {"X-Agent-Id": agent_id} if agent_id else {}
    t0 = time.monotonic()
    try:
        status, hdrs, payload = ep.request("POST", WRITE_PATH, body, headers)
    except Exception as exc:
        kind, why = classify_error(exc)
        return {"type": kind, "status": None, "error": why, "latency_ms": round((time.monotonic() - t0) * 1000, 3)}
    latency = round((time.monotonic() - t0) * 1000, 3)
    try:
        parsed = json.loads(payload) if payload else None
    except ValueError:
        parsed = None
    event: dict[str, Any] = {"status": status, "latency_ms": latency}
    if status == 201 and isinstance(parsed, dict) and isinstance(parsed.get("id"), str):
        event.update(type="ok", id=parsed["id"])
        if isinstance(parsed.get("quorum_acks"), int):
            event["value"] = {"quorum_acks": parsed["quorum_acks"]}
    elif status == 201:
        event.update(type="info", error="201 without a JSON body carrying an id")
    elif status == 503:
        # quorum_not_met keeps the local row: the write may still surface everywhere.
        event.update(type="info", error=_short(parsed, payload), value={"retry_after": hdrs.get("retry-after")})
    elif 400 <= status < 500:
        event.update(type="fail", error=_short(parsed, payload))
    else:
        event.update(type="info", error=_short(parsed, payload))
    return event


def _short(parsed: Any, payload: bytes) -> str:
    if isinstance(parsed, dict) and "error" in parsed:
        return str(parsed["error"])[:300]
    return payload[:300].decode("utf-8", "replace")


def cmd_burst(args: argparse.Namespace) -> int:
    """Agents write concurrently; each agent's writes are sequential (as upstream), all start together."""
    agents = [a for a in args.agents.split(",") if a]
    if not agents:
        raise SystemExit("hostagent burst: --agents is empty")
    lock = threading.Lock()
    out = sys.stdout
    barrier = threading.Barrier(len(agents))
    interval = (len(agents) / args.rate) if args.rate else 0.0

    def run(agent: str) -> None:
        ep = Endpoint(args.url, args.timeout)
        barrier.wait()
        if args.start_at:
            # A wall-clock start agreed with the operator, so a fault scheduled for it lands mid-burst.
            time.sleep(max(0.0, args.start_at - time.time()))
        start = time.monotonic()
        for seq in range(1, args.writes + 1):
            if interval:
                due = start + (seq - 1) * interval
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)  # pacing a rate, not waiting for a condition
            title = args.title_format.format(agent=agent, seq=seq, ns=args.namespace)
            body = {"tier": "mid", "namespace": args.namespace, "title": title,
                    "content": f"{args.content_prefix} {agent} seq {seq}", "tags": [], "priority": 5,
                    "confidence": 1.0, "source": args.source, "metadata": row_metadata()}
            sent_agent = None if args.no_agent_header else agent
            base = {"process": agent, "op": "write", "title": title, "namespace": args.namespace}
            if args.node:
                base["node"] = args.node
            if sent_agent:
                base["agent"] = sent_agent
            _emit(lock, out, {**base, "type": "invoke", "time": time.time()})
            result = write_once(ep, body, sent_agent)
            _emit(lock, out, {**base, **result, "time": time.time()})
        ep.close()

    threads = [threading.Thread(target=run, args=(a,), daemon=True) for a in agents]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return 0


READ_PASSES = 5


def read_namespace(url: str, namespace: str, page: int, timeout: float, max_rows: int,
                   passes: int = READ_PASSES) -> dict:
    """All rows of a namespace on one node, paginated; notices a server that ignores limit/offset or caps pages.

    One pass walks the pages by offset. A row stored or deleted during the walk shifts every later offset (a
    late-replicated row keeps its original `updated_at`, so it can sort before the current offset): that pass
    may double or skip a row, and its short page may be followed by a row, which looks like a server capping
    pages. So passes repeat until two in a row return the same rows and the same anomalies; only an agreeing
    pair is a reading of the server (`consistent`). After `passes` passes without agreement the last one is
    returned with `consistent: false` and its anomalies withheld (they cannot be told from the churn)."""
    ep = Endpoint(url, timeout)
    try:
        previous: dict | None = None
        for n in range(1, max(passes, 2) + 1):
            current = _read_pass(ep, namespace, page, max_rows)
            if not current.get("ok"):
                return current
            if previous is not None and current == previous:
                return {**current, "consistent": True, "passes": n}
            previous = current
    finally:
        ep.close()
    assert previous is not None
    return {**previous, "anomalies": [], "consistent": False, "passes": n,
            "unsettled_anomalies": previous["anomalies"]}


def _read_pass(ep: Endpoint, namespace: str, page: int, max_rows: int) -> dict:
    """One offset walk over the namespace (see read_namespace for why one is not enough)."""
    rows: list[dict] = []
    anomalies: list[str] = []
    offset = 0
    seen_pages: set[tuple[str, ...]] = set()
    try:
        while True:
            q = urllib.parse.urlencode({"namespace": namespace, "limit": page, "offset": offset})
            status, _, payload = ep.request("GET", f"{WRITE_PATH}?{q}")
            if status != 200:
                return {"ok": False, "error": f"GET {WRITE_PATH} returned {status}: {payload[:200]!r}"}
            try:
                doc = json.loads(payload)
                batch = doc["memories"]
                if not isinstance(batch, list):
                    raise TypeError("memories is not a list")
                for i, m in enumerate(batch):
                    if not isinstance(m, dict):
                        raise TypeError(f"memories[{i}] is {type(m).__name__}, not an object")
                    for key in ("id", "title"):
                        if not isinstance(m.get(key), str):
                            raise TypeError(f"memories[{i}].{key} is {type(m.get(key)).__name__}, not a string")
            except (ValueError, KeyError, TypeError) as exc:
                return {"ok": False, "error": f"unparsable list response: {exc}"}
            ids = tuple(str(m.get("id")) for m in batch if isinstance(m, dict))
            if ids and ids in seen_pages:
                anomalies.append(f"offset={offset} returned a page already seen: server ignores offset")
                break
            seen_pages.add(ids)
            if len(batch) > page:
                anomalies.append(f"limit={page} returned {len(batch)} rows")
            rows.extend({"id": m.get("id"), "title": m.get("title"), "namespace": m.get("namespace"),
                         "content": m.get("content")} for m in batch if isinstance(m, dict))
            if len(rows) > max_rows:
                anomalies.append(f"more than {max_rows} rows; stopped reading")
                break
            if len(batch) < page:
                if batch:
                    # A short page must be the last one; check, so a silent cap is noticed.
                    q2 = urllib.parse.urlencode({"namespace": namespace, "limit": page, "offset": offset + len(batch)})
                    status2, _, payload2 = ep.request("GET", f"{WRITE_PATH}?{q2}")
                    extra = json.loads(payload2).get("memories", []) if status2 == 200 else []
                    if extra:
                        anomalies.append(
                            f"limit={page} offset={offset} returned only {len(batch)} rows but more exist: "
                            "the server caps pages below the requested limit")
                        offset += len(batch)
                        continue
                break
            offset += len(batch)
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "rows": rows, "anomalies": anomalies}


def cmd_read(args: argparse.Namespace) -> int:
    nodes = dict(item.split("=", 1) for item in args.nodes.split(",") if item)

    def one(url: str) -> dict:
        r = read_namespace(url, args.namespace, args.page, args.timeout, args.max_rows, args.passes)
        if not args.with_content and r.get("ok"):
            for row in r["rows"]:
                row.pop("content", None)
        return r

    _answer(_per_node(nodes, one), compact=True)
    return 0


def _per_node(nodes: dict[str, str], read: Any) -> dict[str, dict]:
    """`read(url)` on every node at once (one thread each): node name -> its answer."""
    results: dict[str, dict] = {}
    lock = threading.Lock()

    def one(name: str, url: str) -> None:
        r = read(url)
        with lock:
            results[name] = r

    threads = [threading.Thread(target=one, args=item, daemon=True) for item in nodes.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def cmd_probe(args: argparse.Namespace) -> int:
    """A single write that also returns the raw body, for checks on the 503 shape."""
    ep = Endpoint(args.url, args.timeout)
    body = {"tier": "mid", "namespace": args.namespace, "title": args.title,
            "content": f"probe {args.title}", "tags": [], "priority": 5, "confidence": 1.0,
            "source": args.source, "metadata": row_metadata()}
    t0 = time.monotonic()
    try:
        status, hdrs, payload = ep.request("POST", WRITE_PATH, body, {"X-Agent-Id": args.agent})
        out: dict[str, Any] = {"status": status, "body": payload[:2000].decode("utf-8", "replace"),
                               "retry_after": hdrs.get("retry-after")}
    except Exception as exc:
        kind, why = classify_error(exc)
        out = {"status": None, "error": why, "type": kind}
    out["latency_ms"] = round((time.monotonic() - t0) * 1000, 3)
    ep.close()
    _answer(out)
    return 0


def seed_rows(namespace: str, count: int) -> list[dict]:
    """The migration phase's rows: varied lengths and multi-byte text, so truncation cannot hide."""
    return [{"tier": "mid", "namespace": namespace, "title": f"migrate-test-{i}",
             "content": f"row {i} for migration test " + "\u00df\u2202\u0192-" * (i % 64),
             "tags": [f"t{i % 7}"], "priority": 1 + i % 10, "confidence": 1.0, "source": "import",
             "metadata": row_metadata()} for i in range(1, count + 1)]


def cmd_bulk(args: argparse.Namespace) -> int:
    """Seed rows through POST /api/v1/memories/bulk in chunks (the real program caps a request at 1000)."""
    ep = Endpoint(args.url, args.timeout)
    rows = seed_rows(args.namespace, args.count)
    out: dict[str, Any] = {"requested": len(rows), "responses": []}
    try:
        for i in range(0, len(rows), args.chunk):
            chunk = rows[i:i + args.chunk]
            status, _, payload = ep.request("POST", "/api/v1/memories/bulk", chunk)
            out["responses"].append({"status": status, "body": payload[:300].decode("utf-8", "replace")})
            if status not in (200, 201):
                break
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        ep.close()
    _answer(out)
    return 0 if "error" not in out else 1


def run_op(ep: Endpoint, op: dict) -> dict:
    """One planned HTTP write, classified like `write_once`: ok (an answer in `ok_status`, carrying an id when
    `want_id`), fail (definitely not applied: refused, or a 4xx) or info (unknown: timeout, 503, other 5xx)."""
    t0 = time.monotonic()
    headers = {"X-Agent-Id": op["agent"]} if op.get("agent") else {}
    try:
        status, _, payload = ep.request(op["method"], op["path"], op.get("body"), headers)
    except Exception as exc:
        kind, why = classify_error(exc)
        return {"type": kind, "status": None, "error": why, "latency_ms": round((time.monotonic() - t0) * 1000, 3)}
    latency = round((time.monotonic() - t0) * 1000, 3)
    try:
        parsed = json.loads(payload) if payload else None
    except ValueError:
        parsed = None
    event: dict[str, Any] = {"status": status, "latency_ms": latency}
    if isinstance(parsed, dict):
        event["value"] = {k: parsed[k] for k in ("id", "created", "errors", "tier", "deleted", "promoted", "linked",
                                                 "quorum_acks", "existing_id", "code", "title", "consolidated")
                          if k in parsed and isinstance(parsed[k], (str, int, bool, list)) and parsed[k] is not None}
        if isinstance(event["value"].get("errors"), list):
            event["value"]["errors"] = [str(e)[:200] for e in event["value"]["errors"][:5]]
    if status in op.get("ok_status", [200, 201]):
        returned = parsed.get("id") if isinstance(parsed, dict) else None
        if op.get("want_id") and not isinstance(returned, str):
            event.update(type="info", error=f"{status} without a JSON body carrying an id")
        else:
            event["type"] = "ok"
            if isinstance(returned, str):
                event["id"] = returned
    elif 400 <= status < 500:
        event.update(type="fail", error=_short(parsed, payload))
    else:
        event.update(type="info", error=_short(parsed, payload))
    return event


def cmd_ops(args: argparse.Namespace) -> int:
    """Run a plan read from stdin, `{"nodes": {name: url}, "ops": [{kind, node, method, path, body, ...}]}`:
    one sequential writer per node, all nodes at once, so the kinds interleave across the cluster."""
    try:
        plan = json.loads(sys.stdin.read())
        nodes: dict[str, str] = plan["nodes"]
        ops: list[dict] = plan["ops"]
        for op in ops:
            if op["node"] not in nodes:
                raise KeyError(f"op for unknown node {op['node']!r}")
    except (ValueError, KeyError, TypeError) as exc:
        raise SystemExit(f"hostagent ops: bad plan on stdin: {exc}") from None
    lock = threading.Lock()
    out = sys.stdout

    def run(node: str) -> None:
        ep = Endpoint(nodes[node], args.timeout)
        for op in (o for o in ops if o["node"] == node):
            base = {"process": f"workload-{node}", "op": op.get("op", "write"), "kind": op["kind"], "node": node}
            for key in ("title", "namespace", "agent"):
                if op.get(key):
                    base[key] = op[key]
            if op.get("target"):
                base["id"] = op["target"]
            _emit(lock, out, {**base, "type": "invoke", "time": time.time(), "value": op.get("effect")})
            _emit(lock, out, {**base, **run_op(ep, op), "time": time.time()})
        ep.close()

    threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in nodes if any(o["node"] == n for o in ops)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return 0


_STATE_FIELDS = ("id", "title", "namespace", "content", "tags", "tier", "priority")


def read_state(url: str, namespaces: list[str], link_ids: list[str], page: int, timeout: float) -> dict:
    """What one node holds for the workload: every row of `namespaces` (the fields the workload changes) and
    the links of `link_ids`. Offset paging is enough here: the caller polls, and judges only the last pass,
    taken when nothing writes any more. It reads on to an empty page, so a server that caps pages below the
    requested limit loses no row; the cap is reported in `anomalies`."""
    ep = Endpoint(url, timeout)
    rows: list[dict] = []
    links: dict[str, list[dict]] = {}
    anomalies: list[str] = []
    try:
        for ns in namespaces:
            offset = 0
            short: int | None = None
            while True:
                q = urllib.parse.urlencode({"namespace": ns, "limit": page, "offset": offset})
                status, _, payload = ep.request("GET", f"{WRITE_PATH}?{q}")
                if status != 200:
                    return {"ok": False, "error": f"GET {WRITE_PATH} ({ns}) returned {status}: {payload[:200]!r}"}
                batch = json.loads(payload)["memories"]
                if not isinstance(batch, list) or not all(isinstance(m, dict) for m in batch):
                    return {"ok": False, "error": f"unparsable list response for {ns}"}
                rows.extend({k: m.get(k) for k in _STATE_FIELDS} for m in batch)
                if not batch:
                    break
                if short is not None:
                    anomalies.append(f"{ns}: limit={page} offset={offset - short} returned only {short} rows but "
                                     "more exist: the server caps pages below the requested limit")
                    short = None
                if len(batch) < page:
                    short = len(batch)
                offset += len(batch)
        for id_ in link_ids:
            status, _, payload = ep.request("GET", f"/api/v1/links/{urllib.parse.quote(id_, safe='')}")
            if status == 404:
                links[id_] = []
                continue
            if status != 200:
                return {"ok": False, "error": f"GET /api/v1/links/{id_} returned {status}: {payload[:200]!r}"}
            doc = json.loads(payload)
            found = doc.get("links") if isinstance(doc, dict) else doc
            if not isinstance(found, list):
                return {"ok": False, "error": f"unparsable links response for {id_}"}
            links[id_] = [{k: ln.get(k) for k in ("source_id", "target_id", "relation")}
                          for ln in found if isinstance(ln, dict)]
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        ep.close()
    return {"ok": True, "rows": rows, "links": links, "anomalies": anomalies}


def cmd_state(args: argparse.Namespace) -> int:
    nodes = dict(item.split("=", 1) for item in args.nodes.split(",") if item)
    namespaces = [n for n in args.namespace if n]
    link_ids = [i for i in (args.links or "").split(",") if i]
    _answer(_per_node(nodes, lambda url: read_state(url, namespaces, link_ids, args.page, args.timeout)),
            compact=True)
    return 0


# --- the migration phase's seed ----------------------------------------------------------------------

SEED_RELATIONS = ("related_to", "supersedes", "contradicts", "derived_from")
SEED_SOURCES = ("api", "cli", "import", "user", "claude", "hook", "system", "consolidation")
SEED_TAGS = ("alpha", "beta", "\u00fcn\u00efc\u00f8d\u00e9", "\u6f22\u5b57", "emoji-\U0001f642", "with space",
             'quote"d', "a/b:c", "e\u0301-combining", "\U0001f1ef\U0001f1f5")
# Texts a migration can break: multi-byte, outside the BMP, ZWJ sequences, combining marks next to their
# precomposed forms (a normaliser changes them), quotes and backslashes, JSON and SQL look-alikes, RTL, and
# invisible format characters. No NUL, no CR: the product refuses control characters other than \n and \t.
SEED_TEXTS = (
    "plain ascii row",
    "multi\nline\n\ttabbed content\nlast line",
    "emoji \U0001f642\U0001f680 ZWJ \U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 flag "
    "\U0001f1ef\U0001f1f5 skin \U0001f44d\U0001f3fd",
    "CJK \u6f22\u5b57\u304b\u306a\u30ab\u30ca \ud55c\uad6d\uc5b4 \u4e2d\u6587",
    "combining e\u0301 a\u0308\u0304 o\u0302\u0323 (decomposed) and \u00e9 \u00e4 (precomposed)",
    "quotes ' \" ` and a backslash \\ and a literal \\n; SQL '); DROP TABLE memories; --",
    'JSON-looking {"a": [1, "b"], "c": null}',
    "RTL \u05e2\u05d1\u05e8\u05d9\u05ea \u0627\u0644\u0639\u0631\u0628\u064a\u0629 then LTR",
    "zero-width \u200b joiner \u200d bom \ufeff nbsp \u00a0 line separator \u2028 paragraph \u2029 end",
)
SEED_LONG_BYTES = (4096, 16_384, 40_000, 65_000)  # the product caps content at 65,536 bytes
_LONG_UNIT = "\u9577\u3044\u884c long line \U0001f642 e\u0301 \"q\" \\ \n"


def _utf8_prefix(text: str, size: int) -> str:
    """The longest prefix of `text` of at most `size` UTF-8 bytes (never a broken character)."""
    return text.encode()[:size].decode("utf-8", "ignore")


def seed_plan(seed: int, count: int, namespace: str, links: int, anchor_every: int = 8) -> dict:
    """The migration seed as a pure function of (seed, count, namespace, links): rows of mixed tiers,
    priorities, confidences, sources, namespaces (the base one holds over half, so one namespace crosses
    every per-namespace cap too), tags, metadata and contents (short, long up to ~64 KB, non-ASCII), and
    links between the `anchor` rows (written one by one, since bulk answers no ids)."""
    rng = random.Random(f"phase3:{seed}")
    spaces = (namespace, f"{namespace}/team-a", f"{namespace}/deep/x/y/z", f"{namespace}/\u00fcn\u00ef-\u540d\u524d")
    rows: list[dict] = []
    for i in range(count):
        ns = rng.choices(spaces, weights=(55, 20, 15, 10))[0]
        if i % 7 == 3:
            title = f"m\u00efgr\u00e4t\u00eb {i} \u6f22\u5b57 \U0001f642 \"q\" 'a'"
        elif i % 11 == 5:
            title = f"migrate-test-{i}-" + "t\u00eftl\u00eb " * 40
        else:
            title = f"migrate-test-{i}"
        if i % 97 == 13:
            size = SEED_LONG_BYTES[(i // 97) % len(SEED_LONG_BYTES)]
            content = _utf8_prefix(f"row {i} long " + _LONG_UNIT * (size // len(_LONG_UNIT.encode()) + 1), size)
        else:
            content = f"row {i}: " + " | ".join(rng.sample(SEED_TEXTS, rng.randint(1, 3)))
        meta: dict[str, Any] = {}
        if rng.random() < 0.5:
            meta = {"k": i, "nested": {"list": [1, "two", None, True, 2.5], "\u00fc": "\u6f22 \U0001f642"},
                    "note": rng.choice(SEED_TEXTS)}
        rows.append({
            "tier": rng.choices(("short", "mid", "long"), weights=(2, 5, 3))[0], "namespace": ns,
            "title": title, "content": content,
            "tags": rng.sample(SEED_TAGS, rng.randint(0, 4)), "priority": rng.randint(1, 10),
            "confidence": rng.choice((1.0, 0.0, 0.5, round(rng.random(), 6))),
            "source": rng.choice(SEED_SOURCES), "metadata": row_metadata(meta)})
    anchors = list(range(0, count, anchor_every))
    pairs: list[tuple[int, int, str]] = []
    room = len(anchors) * (len(anchors) - 1) * len(SEED_RELATIONS)
    if links > room:
        raise SystemExit(f"hostagent seed: {links} links need more than {len(anchors)} anchor rows "
                         f"(at most {room}); raise --count or lower --links")
    taken: set[tuple[int, int, str]] = set()
    while len(pairs) < links:
        a, b = rng.sample(anchors, 2)
        link = (a, b, rng.choice(SEED_RELATIONS))
        if link not in taken:
            taken.add(link)
            pairs.append(link)
    return {"rows": rows, "anchors": anchors, "links": pairs}


def _chunks(rows: list[dict], count: int, max_bytes: int) -> list[list[dict]]:
    """Bulk requests of at most `count` rows and `max_bytes` of JSON (the server refuses bodies over 2 MiB)."""
    out: list[list[dict]] = []
    cur: list[dict] = []
    size = 0
    for row in rows:
        n = len(json.dumps(row).encode()) + 1
        if cur and (len(cur) >= count or size + n > max_bytes):
            out.append(cur)
            cur, size = [], 0
        cur.append(row)
        size += n
    if cur:
        out.append(cur)
    return out


def _parallel(items: list, fn, workers: int, timeout: float, url: str) -> list:
    """fn(endpoint, item) for every item on `workers` keep-alive connections; results in item order."""
    results: list = [None] * len(items)
    cursor = iter(range(len(items)))
    lock = threading.Lock()

    def work() -> None:
        ep = Endpoint(url, timeout)
        try:
            while True:
                with lock:
                    k = next(cursor, None)
                if k is None:
                    return
                try:
                    results[k] = fn(ep, items[k])
                except Exception as exc:
                    results[k] = {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            ep.close()

    threads = [threading.Thread(target=work, daemon=True) for _ in range(max(1, workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _seed_cli(args: argparse.Namespace, plan: dict, out: dict, problem) -> None:
    """The same plan through the CLI, one process per row and per link (`store` takes no metadata)."""
    base = [*args.cli.split(), "--db", args.cli_db]
    ids: dict[int, str] = {}
    for i, row in enumerate(plan["rows"]):
        argv = [*base, "store", "--title", row["title"], "--content", row["content"], "--tier", row["tier"],
                "--namespace", row["namespace"], "--tags", ",".join(row["tags"]), "--priority", str(row["priority"]),
                "--confidence", str(row["confidence"]), "--source", row["source"], "--json"]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=args.timeout, check=False)
        try:
            ids[i] = json.loads(proc.stdout.strip().splitlines()[-1])["id"]
        except (ValueError, IndexError, KeyError, TypeError):
            problem(f"store of row {i}: exit {proc.returncode}: {proc.stderr.strip()[-200:]}")
    out["single_created"] = len(ids)
    for a, b, relation in plan["links"]:
        if a not in ids or b not in ids:
            problem(f"link {a}->{b}: an end was not stored")
            continue
        proc = subprocess.run([*base, "link", ids[a], ids[b], "--relation", relation, "--json"], capture_output=True,
                              text=True, timeout=args.timeout, check=False)
        if proc.returncode == 0:
            out["links_created"] += 1
        else:
            problem(f"link {a}->{b}: exit {proc.returncode}: {proc.stderr.strip()[-200:]}")


def cmd_seed(args: argparse.Namespace) -> int:
    """Write the seed plan: non-anchor rows by bulk, anchor rows one by one (their ids), then the links.
    Prints what each step created; the phase then counts the rows and links the database really holds."""
    if bool(args.url) == bool(args.cli_db):
        raise SystemExit("hostagent seed: give exactly one of --url and --cli-db")
    plan = seed_plan(args.seed, args.count, args.namespace, args.links)
    rows, anchors = plan["rows"], set(plan["anchors"])
    out: dict[str, Any] = {"seed": args.seed, "requested": len(rows), "links_requested": len(plan["links"]),
                           "bulk_requests": 0, "bulk_created": 0, "single_created": 0, "links_created": 0,
                           "errors": []}

    def problem(text: str) -> None:
        if len(out["errors"]) < 20:
            out["errors"].append(text[:300])

    if args.cli_db:
        _seed_cli(args, plan, out, problem)
        _answer(out)
        return 0
    ep = Endpoint(args.url, args.timeout)
    try:
        for chunk in _chunks([r for i, r in enumerate(rows) if i not in anchors], args.chunk, args.chunk_bytes):
            status, _, payload = ep.request("POST", "/api/v1/memories/bulk", chunk)
            out["bulk_requests"] += 1
            body = json.loads(payload) if status in (200, 201) and payload else {}
            if status not in (200, 201) or not isinstance(body, dict):
                out["error"] = f"bulk of {len(chunk)} rows: {status} {payload[:300].decode('utf-8', 'replace')}"
                break
            out["bulk_created"] += int(body.get("created") or 0)
            for err in body.get("errors") or []:
                problem(f"bulk: {err}")
    except Exception as exc:
        out["error"] = f"bulk: {type(exc).__name__}: {exc}"
    finally:
        ep.close()
    ids: dict[int, str] = {}
    if "error" not in out:
        def one(ep: Endpoint, i: int) -> dict:
            ev = write_once(ep, rows[i], args.agent)
            return {"i": i, **ev}

        for ev in _parallel(sorted(anchors), one, args.workers, args.timeout, args.url):
            if ev.get("type") == "ok":
                ids[ev["i"]] = ev["id"]
            else:
                problem(f"store of row {ev.get('i')}: {ev.get('status')} {ev.get('error')}")
        out["single_created"] = len(ids)

        def link(ep: Endpoint, pair: tuple[int, int, str]) -> dict:
            a, b, relation = pair
            if a not in ids or b not in ids:
                return {"error": f"link {a}->{b}: an end was not stored"}
            # 0.7.0+ lets only the source memory's owner link it: the agent that stored the anchors.
            status, _, payload = ep.request("POST", "/api/v1/links",
                                            {"source_id": ids[a], "target_id": ids[b], "relation": relation},
                                            {"X-Agent-Id": args.agent})
            if status in (200, 201):
                return {"ok": True}
            return {"error": f"link {a}->{b}: {status} {payload[:200].decode('utf-8', 'replace')}"}

        for res in _parallel(plan["links"], link, args.workers, args.timeout, args.url):
            if res.get("ok"):
                out["links_created"] += 1
            else:
                problem(str(res.get("error")))
    _answer(out)
    return 0 if "error" not in out else 1


def cmd_health(args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.deadline
    last = "never answered"
    while True:
        ep = Endpoint(args.url, min(args.timeout, max(0.2, deadline - time.monotonic())))
        try:
            status, _, payload = ep.request("GET", "/api/v1/health")
            if status == 200 and b'"ok"' in payload:
                _answer({"ok": True, "body": payload[:500].decode("utf-8", "replace")})
                return 0
            last = f"status {status}: {payload[:200]!r}"
        except Exception as exc:
            last = f"{type(exc).__name__}: {exc}"
        finally:
            ep.close()
        if time.monotonic() >= deadline:
            _answer({"ok": False, "error": f"not healthy within {args.deadline}s: {last}"})
            return 1
        time.sleep(0.05)  # the interval of the deadline-bounded poll above (standalone: no shipgate.clock here)


def _mcp_exchange(proc: subprocess.Popen, request: dict, deadline: float) -> dict:
    """Send one request and read lines until the reply with the same id arrives."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(request) + "\n")
    proc.stdin.flush()
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no reply to {request['method']} before the deadline")
        line = proc.stdout.readline()
        if not line:
            raise EOFError(f"mcp closed stdout before replying to {request['method']}")
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
        except ValueError:
            raise ValueError(f"mcp wrote a non-JSON line on stdout: {line[:200]!r}") from None
        if isinstance(msg, dict) and msg.get("id") == request["id"]:
            return msg


def cmd_mcp(args: argparse.Namespace) -> int:
    """initialize + tools/list + one tools/call, stdin kept open until every reply has arrived."""
    env = dict(os.environ)
    if args.profile:
        env["AI_MEMORY_PROFILE"] = args.profile
    argv = [*args.binary.split(), *(["--db", args.db] if args.db else []), "mcp"]
    out: dict[str, Any] = {"argv": argv, "profile_requested": args.profile}
    timer = None
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env)
    except OSError as exc:
        _answer({**out, "error": f"cannot start mcp: {exc}"})
        return 1
    try:
        timer = threading.Timer(args.timeout + 1, proc.kill)
        timer.start()
        deadline = time.monotonic() + args.timeout
        init = _mcp_exchange(proc, {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                    "params": {"protocolVersion": "2024-11-05", "capabilities": {},
                                               "clientInfo": {"name": "ship-gate", "version": "1"}}}, deadline)
        out["initialize"] = init
        assert proc.stdin is not None
        proc.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n")
        proc.stdin.flush()
        tools = _mcp_exchange(proc, {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}, deadline)
        result = tools.get("result")
        listed = result.get("tools") if isinstance(result, dict) else None
        names = [t.get("name") for t in (listed if isinstance(listed, list) else []) if isinstance(t, dict)]
        out["tool_names"] = names
        if args.call:
            call = json.loads(args.call)
            out["call"] = call
            out["call_reply"] = _mcp_exchange(proc, {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                                                     "params": call}, deadline)
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        if proc.stdin:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        try:
            out["exit_code"] = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            out["exit_code"] = proc.wait(timeout=5)
            out.setdefault("error", "mcp did not exit after stdin closed")
        if timer:
            timer.cancel()
        err = proc.stderr.read() if proc.stderr else ""
        out["stderr_tail"] = err[-1000:]
    _answer(out)
    return 0 if "error" not in out else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="hostagent", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    b = sub.add_parser("burst", help="concurrent writers, JSONL history on stdout")
    b.add_argument("--url", required=True)
    b.add_argument("--namespace", required=True)
    b.add_argument("--agents", required=True, help="comma list of agent ids, one writer thread each")
    b.add_argument("--writes", type=int, required=True, help="writes per agent")
    b.add_argument("--timeout", type=float, default=10.0, help="per-request timeout, seconds")
    b.add_argument("--rate", type=float, default=0.0, help="total writes/s across agents (0 = as fast as possible)")
    b.add_argument("--source", default="api")
    b.add_argument("--title-format", default="{agent}-w{seq}")
    b.add_argument("--content-prefix", default="multi-agent write")
    b.add_argument("--node", help="node name recorded in every event")
    b.add_argument("--no-agent-header", action="store_true", help="send no X-Agent-Id (as the chaos harness)")
    b.add_argument("--start-at", type=float, default=0.0, help="Unix time at which the writers start (0 = at once)")
    b.set_defaults(fn=cmd_burst)

    r = sub.add_parser("read", help="every row of a namespace on each node")
    r.add_argument("--nodes", required=True, help="name=url,name=url")
    r.add_argument("--namespace", required=True)
    r.add_argument("--page", type=int, default=1000)
    r.add_argument("--timeout", type=float, default=10.0)
    r.add_argument("--max-rows", type=int, default=100_000)
    r.add_argument("--with-content", action="store_true")
    r.add_argument("--passes", type=int, default=READ_PASSES,
                   help="full reads at most, until two in a row agree (>= 2)")
    r.set_defaults(fn=cmd_read)

    pr = sub.add_parser("probe", help="one write, raw status and body (quorum probes)")
    pr.add_argument("--url", required=True)
    pr.add_argument("--namespace", required=True)
    pr.add_argument("--title", required=True)
    pr.add_argument("--agent", default="ai:ship-gate-probe")
    pr.add_argument("--source", default="api")
    pr.add_argument("--timeout", type=float, default=15.0)
    pr.set_defaults(fn=cmd_probe)

    bk = sub.add_parser("bulk", help="seed rows through POST /api/v1/memories/bulk")
    bk.add_argument("--url", required=True)
    bk.add_argument("--namespace", required=True)
    bk.add_argument("--count", type=int, required=True)
    bk.add_argument("--chunk", type=int, default=500)
    bk.add_argument("--timeout", type=float, default=60.0)
    bk.set_defaults(fn=cmd_bulk)

    op = sub.add_parser("ops", help="a planned mixed workload from stdin, JSONL history on stdout")
    op.add_argument("--timeout", type=float, default=10.0, help="per-request timeout, seconds")
    op.set_defaults(fn=cmd_ops)

    st = sub.add_parser("state", help="rows of namespaces and links of ids, on each node")
    st.add_argument("--nodes", required=True, help="name=url,name=url")
    st.add_argument("--namespace", action="append", required=True, help="repeat for several namespaces")
    st.add_argument("--links", help="comma list of memory ids whose links to read")
    st.add_argument("--page", type=int, default=1000)
    st.add_argument("--timeout", type=float, default=10.0)
    st.set_defaults(fn=cmd_state)

    sd = sub.add_parser("seed", help="the migration seed: mixed rows by bulk and single writes, and links")
    sd.add_argument("--url", help="a serve to seed through (bulk + single writes + POST /api/v1/links)")
    sd.add_argument("--cli-db", help="seed this database through the CLI instead, one process per row and link")
    sd.add_argument("--cli", default="ai-memory", help="the CLI with --cli-db")
    sd.add_argument("--namespace", required=True)
    sd.add_argument("--count", type=int, required=True)
    sd.add_argument("--links", type=int, default=0)
    sd.add_argument("--seed", type=int, required=True, help="the plan is a pure function of this seed")
    sd.add_argument("--chunk", type=int, default=500, help="rows per bulk request")
    sd.add_argument("--chunk-bytes", type=int, default=1 << 20, help="JSON bytes per bulk request")
    sd.add_argument("--workers", type=int, default=4, help="connections for the single writes and links")
    sd.add_argument("--agent", default="ai:ship-gate-seed")
    sd.add_argument("--timeout", type=float, default=60.0)
    sd.set_defaults(fn=cmd_seed)

    h = sub.add_parser("health", help="poll health until ok or the deadline")
    h.add_argument("--url", required=True)
    h.add_argument("--deadline", type=float, default=30.0)
    h.add_argument("--timeout", type=float, default=2.0)
    h.set_defaults(fn=cmd_health)

    m = sub.add_parser("mcp", help="initialize + tools/list + one tools/call over stdio")
    m.add_argument("--binary", default="ai-memory")
    m.add_argument("--db")
    m.add_argument("--profile", default="full", help="sets AI_MEMORY_PROFILE ('' for none)")
    m.add_argument("--call", help="JSON params of one tools/call, e.g. {\"name\":...,\"arguments\":{...}}")
    m.add_argument("--timeout", type=float, default=20.0)
    m.set_defaults(fn=cmd_mcp)

    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
