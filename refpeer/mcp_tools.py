"""The handlers behind `tools/call`: every tool in refpeer.mcp_catalog really acts on the SQLite store.

A handler returns a JSON-able result or raises ToolError, which the server turns into
`{"content":[{"type":"text","text":msg}],"isError":true}` as the real program does. The reference peer has no
LLM and no embedder (its tier is keyword): the three LLM tools answer with the real program's no-LLM errors,
consolidate needs an explicit summary (the real message otherwise), and check_duplicate uses a lexical cosine.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import math
import os
import re
import socket
import uuid
from collections import Counter, deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from refpeer import memory as M
from refpeer.errors import Conflict, RefPeerError, ValidationError
from refpeer.mcp_catalog import FAMILIES, TOOLS
from refpeer.mcp_state import McpState
from refpeer.store import Store

LLM_ERRORS = {
    "memory_expand_query": "query expansion requires smart or autonomous tier (Ollama LLM)",
    "memory_auto_tag": "auto-tagging requires smart or autonomous tier (Ollama LLM)",
    "memory_detect_contradiction": "contradiction detection requires smart or autonomous tier (Ollama LLM)",
}
WEBHOOK_TIMEOUT = 2.0
_WORD = re.compile(r"\w+", re.UNICODE)


class ToolError(Exception):
    """A tool-level failure (not found, rule violation, no LLM): an MCP result with isError=true."""


def _host() -> str:
    return socket.gethostname() or "localhost"


def _clean_client(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-:.]", "-", name)[:64] or "unknown"


def _ancestors(namespace: str) -> list[str]:
    """Proper ancestors, nearest first: a/b/c -> [a/b, a]."""
    segs = namespace.split("/")
    return ["/".join(segs[:i]) for i in range(len(segs) - 1, 0, -1)]


def _tokens_estimate(mem: dict[str, Any]) -> int:
    return max(1, (len(mem["title"]) + len(mem["content"])) // 4)


def _toon(rows: list[dict[str, Any]], key: str, compact: bool) -> str:
    """A TOON table: `key[N]{fields}:` then one comma-separated line per row (values JSON-quoted if needed)."""
    fields = ["id", "title", "tier", "namespace", "priority"] + ([] if compact else ["created_at", "updated_at"])
    if rows and "score" in rows[0]:
        fields.append("score")

    def cell(v: Any) -> str:
        s = v if isinstance(v, str) else json.dumps(v)
        return json.dumps(s) if any(ch in s for ch in ',"\n') else s

    lines = [f"count: {len(rows)}", f"{key}[{len(rows)}]{{{','.join(fields)}}}:"]
    lines += ["  " + ",".join(cell(r.get(f, "")) for f in fields) for r in rows]
    return "\n".join(lines)


class Tools:
    """Dispatch table plus the per-session identity (the MCP client's name feeds agent-id synthesis)."""

    def __init__(self, store: Store, *, profile_label: str, advertised: tuple[str, ...], version: str) -> None:
        self.store = store
        self.state = McpState(store)
        self.profile_label = profile_label
        self.advertised = advertised
        self.version = version
        self.client_name: str | None = None
        self._fallback_agent = f"host:{_host()}:pid-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            name: getattr(self, "t_" + name.removeprefix("memory_")) for name in TOOLS
        }

    # -- identity ------------------------------------------------------------------------------------
    def caller(self) -> str:
        """AI_MEMORY_AGENT_ID, else ai:<client>@<host>:pid-<pid> once initialize named the client."""
        env = os.environ.get("AI_MEMORY_AGENT_ID")
        if env and M.agent_id_problem(env) is None:
            return env
        if self.client_name:
            return f"ai:{_clean_client(self.client_name)}@{_host()}:pid-{os.getpid()}"
        return self._fallback_agent

    def call(self, name: str, args: dict[str, Any]) -> tuple[Any, str | None]:
        """(result, format) for a known tool; raises ToolError."""
        try:
            result = self.handlers[name](args)
        except ValidationError as exc:
            raise ToolError(exc.message) from None
        except Conflict as exc:
            raise ToolError(str(exc)) from None
        except RefPeerError as exc:
            raise ToolError(str(exc)) from None
        return result, args.get("format")

    def render(self, name: str, result: Any, fmt: str | None) -> str:
        if fmt in ("toon", "toon_compact") and isinstance(result, dict):
            for key in ("memories", "results"):
                if isinstance(result.get(key), list):
                    return _toon(result[key], key, fmt == "toon_compact")
        return json.dumps(result, indent=2, ensure_ascii=False)

    # -- helpers -------------------------------------------------------------------------------------
    def _need(self, id_: str, label: str = "memory not found") -> dict[str, Any]:
        mem = self.store.get(id_)
        if mem is None:
            raise ToolError(f"{label}: {id_}" if label != "memory not found" else "memory not found")
        return mem

    def _all_live(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.store.list(namespace=namespace, limit=1_000_000)

    def _governance(self, action: str, namespace: str, agent: str, payload: dict[str, Any],
                    memory_id: str | None = None) -> dict[str, Any] | None:
        """None to proceed; a pending result dict; raises ToolError on deny. Policies come from the nearest
        namespace standard (namespace, its ancestors, then '*') whose metadata.governance names the action."""
        for ns in (namespace, *_ancestors(namespace), "*"):
            std = self.state.standard(ns)
            if not std or not std[0]:
                continue
            mem = self.store.get(std[0])
            policy = ((mem or {}).get("metadata") or {}).get("governance") or {}
            level = policy.get(action)
            if level is None:
                continue
            owner = ((mem or {}).get("metadata") or {}).get("agent_id")
            if level == "any" or agent == owner:
                return None
            if level == "registered":
                if self.store.get_by_title(agent, "_agents") is not None:
                    return None
                raise ToolError(f"{action if action != 'write' else 'store'} denied by governance: "
                                f"agent '{agent}' is not registered")
            if level == "owner":
                raise ToolError(f"{action if action != 'write' else 'store'} denied by governance: "
                                f"only the namespace owner '{owner}' may {action}")
            if level == "approve":
                verb = "store" if action == "write" else action
                pid = self.state.add_pending(verb, namespace, agent, payload, memory_id)
                out = {"status": "pending", "pending_id": pid, "reason": "governance requires approval",
                       "action": verb}
                return out | ({"memory_id": memory_id} if memory_id else {"namespace": namespace})
        return None

    def _fire(self, event: str, mem: dict[str, Any]) -> None:
        """Record and deliver a webhook event to every matching subscription (synchronously, 2 s timeout)."""
        agent = (mem.get("metadata") or {}).get("agent_id")
        for sub in self.state.subscriptions():
            events = {e.strip() for e in (sub["events"] or "*").split(",")}
            if "*" not in events and event not in events:
                continue
            if sub["namespace_filter"] and sub["namespace_filter"] != mem["namespace"]:
                continue
            if sub["agent_filter"] and sub["agent_filter"] != agent:
                continue
            payload = {"event": event, "memory_id": mem["id"], "namespace": mem["namespace"],
                       "title": mem["title"], "agent_id": agent, "timestamp": M.now_ts()}
            eid = self.state.record_event(sub["id"], event, payload)
            self._deliver(sub, eid, payload)

    def _deliver(self, sub: dict[str, Any], eid: str, payload: dict[str, Any]) -> bool:
        import urllib.error
        import urllib.request

        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "User-Agent": f"ai-memory/{self.version}"}
        if sub.get("secret_hash"):
            sig = hmac.new(sub["secret_hash"].encode(), body, hashlib.sha256).hexdigest()
            headers["X-Ai-Memory-Signature"] = f"sha256={sig}"
        req = urllib.request.Request(sub["url"], data=body, headers=headers, method="POST")
        error: str | None = None
        try:
            with urllib.request.urlopen(req, timeout=WEBHOOK_TIMEOUT) as resp:
                if not 200 <= resp.status < 300:
                    error = f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            error = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            error = str(getattr(exc, "reason", exc))
        self.state.delivery_result(sub["id"], eid, error)
        return error is None

    def _store_memory(self, mem: dict[str, Any], on_conflict: str) -> dict[str, Any]:
        try:
            stored, created = self.store.store(mem, on_conflict=on_conflict)
        except Conflict as exc:
            raise ToolError(str(exc)) from None
        out = {"id": stored["id"], "tier": stored["tier"], "title": stored["title"],
               "namespace": stored["namespace"], "agent_id": (stored.get("metadata") or {}).get("agent_id")}
        if not created:
            out.update(duplicate=True, action="updated existing memory")
        else:
            similar = [m["id"] for m in self.store.search(stored["title"], limit=6, namespace=stored["namespace"])
                       if m["id"] != stored["id"]][:5]
            if similar:
                out["potential_contradictions"] = similar
        self._fire("memory_store", stored)
        return out

    # -- core ----------------------------------------------------------------------------------------
    def t_store(self, a: dict[str, Any]) -> Any:
        metadata = dict(a.get("metadata") or {})
        explicit = a.get("agent_id") or metadata.get("agent_id")
        if explicit is not None:
            M.validate_agent_id(explicit)
        agent = explicit or self.caller()
        mem = M.new_memory(a["title"], a["content"], tier=a.get("tier", "mid"),
                           namespace=a.get("namespace", "global"), tags=a.get("tags") or [],
                           priority=a.get("priority", 5), confidence=float(a.get("confidence", 1.0)),
                           source=a.get("source", "claude"), metadata=metadata, agent_id=agent,
                           scope=a.get("scope"))
        pending = self._governance("write", mem["namespace"], agent, {"memory": mem, "on_conflict":
                                                                       a.get("on_conflict", "merge")})
        if pending:
            return pending
        return self._store_memory(mem, "upsert" if a.get("on_conflict", "merge") == "merge" else a["on_conflict"])

    def t_recall(self, a: dict[str, Any]) -> Any:
        limit = min(int(a.get("limit", 10)), 50)
        filtered = any(a.get(k) for k in ("tags", "since", "until"))
        rows = self.store.recall(a["context"], limit=50 if filtered else limit, namespace=a.get("namespace"),
                                 touch=not filtered)
        if filtered:  # filters apply to the 50 best hits, which are then not touched
            rows = [m for m in rows if (not a.get("tags") or a["tags"] in m["tags"])
                    and (not a.get("since") or m["created_at"] >= a["since"])
                    and (not a.get("until") or m["created_at"] <= a["until"])][:limit]
        used = 0
        if a.get("budget_tokens"):
            kept = []
            for m in rows:
                cost = _tokens_estimate(m)
                if used + cost > a["budget_tokens"]:
                    break
                kept.append(m)
                used += cost
            rows = kept
        else:
            used = sum(_tokens_estimate(m) for m in rows)
        out: dict[str, Any] = {"memories": rows, "count": len(rows), "mode": "keyword", "tokens_used": used}
        if a.get("budget_tokens"):
            out["budget_tokens"] = a["budget_tokens"]
        return out

    def t_search(self, a: dict[str, Any]) -> Any:
        limit = min(int(a.get("limit", 20)), 200)
        rows = self.store.search(a["query"], limit=1000, namespace=a.get("namespace"))
        rows = [m for m in rows if (not a.get("tier") or m["tier"] == a["tier"])
                and (not a.get("agent_id") or (m.get("metadata") or {}).get("agent_id") == a["agent_id"])][:limit]
        return {"results": rows, "count": len(rows)}

    def t_list(self, a: dict[str, Any]) -> Any:
        rows = self.store.list(namespace=a.get("namespace"), tier=a.get("tier"),
                               limit=min(int(a.get("limit", 20)), 200), agent_id=a.get("agent_id"))
        return {"memories": rows, "count": len(rows)}

    def t_get(self, a: dict[str, Any]) -> Any:
        mem = self._need(a["id"])
        mem["links"] = self.store.get_links(a["id"])
        return mem

    # -- graph ---------------------------------------------------------------------------------------
    def t_get_taxonomy(self, a: dict[str, Any]) -> Any:
        prefix = (a.get("namespace_prefix") or "").rstrip("/")
        depth = int(a.get("depth", 8))
        rows = self.store.namespaces()
        rows = [r for r in rows if not prefix or r["namespace"] == prefix or r["namespace"].startswith(prefix + "/")]
        limit = int(a.get("limit", 1000))
        truncated = len(rows) > limit
        rows = rows[:limit]
        root: dict[str, Any] = {"name": prefix, "namespace": prefix, "count": 0, "subtree_count": 0, "children": {}}
        base = len(prefix.split("/")) if prefix else 0
        for r in rows:
            segs = r["namespace"].split("/")[base:]
            node = root
            node["subtree_count"] += r["count"]
            for i, seg in enumerate(segs[:depth]):
                full = "/".join(r["namespace"].split("/")[: base + i + 1])
                node = node["children"].setdefault(seg, {"name": seg, "namespace": full, "count": 0,
                                                         "subtree_count": 0, "children": {}})
                node["subtree_count"] += r["count"]
            if len(segs) <= depth:
                node["count"] += r["count"]

        def freeze(n: dict[str, Any]) -> dict[str, Any]:
            return {**n, "children": [freeze(c) for c in sorted(n["children"].values(), key=lambda c: c["name"])]}

        return {"tree": freeze(root), "total_count": root["subtree_count"], "truncated": truncated}

    def t_entity_register(self, a: dict[str, Any]) -> Any:
        ns = a.get("namespace", "global")
        M.validate_namespace(ns)
        name = a["canonical_name"].strip()
        M.validate_title(name)
        aliases = list(dict.fromkeys([name, *[s.strip() for s in a.get("aliases") or [] if s.strip()]]))
        existing = self.store.get_by_title(name, ns)
        for alias in aliases:
            owner = self.state.alias_owner(alias, ns)
            if owner is not None and (existing is None or owner != existing["id"]):
                raise ToolError(f"alias '{alias}' is already registered to entity {owner} in namespace '{ns}'")
        mem = M.new_memory(name, f"entity: {name}", tier="long", namespace=ns, tags=["entity"],
                           source="claude", metadata={"kind": "entity"}, agent_id=self.caller())
        stored, created = self.store.store(mem, on_conflict="upsert")
        self.state.add_aliases(stored["id"], ns, aliases)
        return {"entity_id": stored["id"], "canonical_name": name, "namespace": ns,
                "aliases": self.state.aliases_of(stored["id"]), "created": created}

    def t_entity_get_by_alias(self, a: dict[str, Any]) -> Any:
        ns = a.get("namespace", "global")
        owner = self.state.alias_owner(a["alias"].strip(), ns)
        mem = self.store.get(owner) if owner else None
        if mem is None:
            return {"found": False, "alias": a["alias"], "namespace": ns}
        return {"found": True, "alias": a["alias"], "entity_id": mem["id"], "canonical_name": mem["title"],
                "namespace": ns, "aliases": self.state.aliases_of(mem["id"])}

    def t_kg_timeline(self, a: dict[str, Any]) -> Any:
        self._need(a["source_id"])
        events = []
        for link in self.state.outbound(a["source_id"]):
            start = link["valid_from"] or link["created_at"]
            if (a.get("since") and start < a["since"]) or (a.get("until") and start > a["until"]):
                continue
            target = self.store.get(link["target_id"])
            events.append({**{k: v for k, v in link.items() if v is not None},
                           "target_title": target["title"] if target else None})
        events = events[: int(a.get("limit", 100))]
        return {"source_id": a["source_id"], "events": events, "count": len(events)}

    def t_kg_invalidate(self, a: dict[str, Any]) -> Any:
        until = a.get("valid_until") or M.now_ts()
        if M.parse_rfc3339(until) is None:
            raise ToolError(f"valid_until is not valid RFC3339: '{until}'")
        if not self.state.set_valid_until(a["source_id"], a["target_id"], a["relation"], until):
            raise ToolError("link not found")
        return {"invalidated": True, "source_id": a["source_id"], "target_id": a["target_id"],
                "relation": a["relation"], "valid_until": until}

    def _live_links(self, source: str, relation: str | None, include_invalidated: bool) -> list[dict[str, Any]]:
        now = M.now_ts()
        return [lk for lk in self.state.outbound(source)
                if (relation is None or lk["relation"] == relation)
                and (include_invalidated or not lk["valid_until"] or lk["valid_until"] > now)]

    def t_kg_query(self, a: dict[str, Any]) -> Any:
        root = self._need(a["source_id"])
        max_depth, limit = int(a.get("max_depth", 1)), int(a.get("limit", 100))
        seen = {root["id"]}
        nodes: list[dict[str, Any]] = []
        queue: deque[tuple[str, int]] = deque([(root["id"], 0)])
        while queue and len(nodes) < limit:
            node, depth = queue.popleft()
            if depth >= max_depth:
                continue
            for link in self._live_links(node, a.get("relation"), bool(a.get("include_invalidated"))):
                tid = link["target_id"]
                if tid in seen:
                    continue
                seen.add(tid)
                mem = self.store.get(tid)
                nodes.append({"id": tid, "title": mem["title"] if mem else None,
                              "namespace": mem["namespace"] if mem else None, "depth": depth + 1,
                              "relation": link["relation"], "via": node})
                queue.append((tid, depth + 1))
                if len(nodes) >= limit:
                    break
        return {"source_id": root["id"], "max_depth": max_depth, "nodes": nodes, "count": len(nodes)}

    def t_link(self, a: dict[str, Any]) -> Any:
        rel = a.get("relation", "related_to")
        if a["source_id"] == a["target_id"]:
            raise ToolError("cannot link a memory to itself")
        for key in ("source_id", "target_id"):
            M.validate_id(a[key])
            if self.store.get(a[key]) is None:
                raise ToolError(f"memory not found: {a[key]}")
        self.store.add_link(a["source_id"], a["target_id"], rel)
        return {"linked": True, "source_id": a["source_id"], "target_id": a["target_id"], "relation": rel}

    def t_get_links(self, a: dict[str, Any]) -> Any:
        links = self.store.get_links(a["id"])
        return {"links": links, "count": len(links)}

    # -- lifecycle -----------------------------------------------------------------------------------
    def t_delete(self, a: dict[str, Any]) -> Any:
        mem = self._need(a["id"])
        pending = self._governance("delete", mem["namespace"], self.caller(), {"id": mem["id"]}, mem["id"])
        if pending:
            return pending
        self.store.delete(mem["id"])
        self._fire("memory_delete", mem)
        return {"deleted": True}

    def t_promote(self, a: dict[str, Any]) -> Any:
        mem = self._need(a["id"])
        target = a.get("to_namespace")
        pending = self._governance("promote", mem["namespace"], self.caller(),
                                   {"id": mem["id"], "to_namespace": target}, mem["id"])
        if pending:
            return pending
        return self._do_promote(mem, target)

    def _do_promote(self, mem: dict[str, Any], target: str | None) -> dict[str, Any]:
        if target is None:
            updated = self.store.update(mem["id"], {"tier": "long", "expires_at": None})
            assert updated is not None
            self._fire("memory_promote", updated)
            return {"promoted": True, "mode": "tier", "id": mem["id"], "tier": "long"}
        M.validate_namespace(target)
        if target not in _ancestors(mem["namespace"]):
            raise ToolError(f"to_namespace '{target}' is not an ancestor of '{mem['namespace']}'")
        clone = dict(mem, id=M.new_id(), namespace=target, created_at=M.now_ts())
        clone["updated_at"] = clone["created_at"]
        clone.pop("links", None)
        stored, _ = self.store.store(clone, on_conflict="upsert")
        self.store.add_link(stored["id"], mem["id"], "derived_from")
        self._fire("memory_promote", stored)
        return {"promoted": True, "mode": "vertical", "source_id": mem["id"], "clone_id": stored["id"],
                "to_namespace": target}

    def t_forget(self, a: dict[str, Any]) -> Any:
        if not any(a.get(k) for k in ("namespace", "pattern", "tier")):
            raise ToolError("forget requires at least one of: namespace, pattern, tier")
        pattern = (a.get("pattern") or "").lower()
        rows = [m for m in self.store.list(namespace=a.get("namespace"), tier=a.get("tier"), limit=1_000_000,
                                           include_expired=True)
                if not pattern or pattern in m["title"].lower() or pattern in m["content"].lower()]
        if a.get("dry_run"):
            return {"would_delete": len(rows), "dry_run": True}
        return {"deleted": self.store.archive([m["id"] for m in rows], reason="forget"), "archived": True}

    def t_stats(self, a: dict[str, Any]) -> Any:
        return self.store.stats()

    def t_update(self, a: dict[str, Any]) -> Any:
        fields = {k: v for k, v in a.items() if k not in ("id", "expires_at")}
        parsed = M.parse_update(fields)
        if "expires_at" in a:
            if a["expires_at"] is None:
                parsed["expires_at"] = None
            else:
                M.validate_expires_at(a["expires_at"], allow_past=True)
                parsed["expires_at"] = M.canonical_ts(a["expires_at"])
        mem = self.store.update(a["id"], parsed)
        if mem is None:
            raise ToolError("memory not found")
        return {"updated": True, "memory": mem}

    def t_gc(self, a: dict[str, Any]) -> Any:
        now = M.now_ts()
        expired = [m for m in self.store.list(limit=1_000_000, include_expired=True)
                   if m.get("expires_at") and m["expires_at"] <= now]
        if a.get("dry_run"):
            return {"collected": len(expired), "dry_run": True}
        return {"collected": self.store.gc(), "dry_run": False}

    # -- power ---------------------------------------------------------------------------------------
    def t_check_duplicate(self, a: dict[str, Any]) -> Any:
        threshold = max(0.5, float(a.get("threshold", 0.85)))

        def vec(text: str) -> Counter[str]:
            return Counter(w.lower() for w in _WORD.findall(text))

        def cosine(x: Counter[str], y: Counter[str]) -> float:
            dot = sum(x[k] * y[k] for k in x.keys() & y.keys())
            norm = math.sqrt(sum(v * v for v in x.values())) * math.sqrt(sum(v * v for v in y.values()))
            return dot / norm if norm else 0.0

        M.validate_title(a["title"])
        M.validate_content(a["content"])
        probe = vec(f"{a['title']} {a['content']}")
        best: tuple[float, dict[str, Any]] | None = None
        candidates = self._all_live(a.get("namespace"))
        for m in candidates:
            sim = cosine(probe, vec(f"{m['title']} {m['content']}"))
            if best is None or sim > best[0]:
                best = (sim, m)
        nearest = None if best is None else {"id": best[1]["id"], "title": best[1]["title"],
                                             "namespace": best[1]["namespace"], "similarity": round(best[0], 3)}
        dup = best is not None and best[0] >= threshold
        return {"is_duplicate": dup, "threshold": threshold, "nearest": nearest,
                "suggested_merge": nearest["id"] if dup and nearest else None,
                "candidates_scanned": len(candidates), "method": "lexical-cosine"}

    def t_consolidate(self, a: dict[str, Any]) -> Any:
        ids = a["ids"]
        if not 2 <= len(ids) <= 100:
            raise ToolError("consolidate requires between 2 and 100 ids")
        if a.get("summary") is None:
            raise ToolError("summary is required (or use smart/autonomous tier for auto-summarization)")
        ns = a.get("namespace", "global")
        M.validate_title(a["title"])
        M.validate_content(a["summary"])
        M.validate_namespace(ns)
        if len(set(ids)) != len(ids):
            raise ToolError("ids must be unique")
        sources = [self._need(i, "memory not found") for i in ids]
        tags = list(dict.fromkeys(t for m in sources for t in m["tags"]))[:50]
        new = M.new_memory(a["title"], a["summary"], tier="long", namespace=ns, tags=tags,
                           priority=max(m["priority"] for m in sources), source="consolidation",
                           metadata={"consolidated_from": ids}, agent_id=self.caller())
        stored, _ = self.store.store(new, on_conflict="upsert")
        for m in sources:
            if m["id"] != stored["id"]:
                self.store.delete(m["id"])
        for m in sources:
            if m["id"] != stored["id"]:
                self.store.add_link(stored["id"], m["id"], "derived_from")
        return {"id": stored["id"], "consolidated": len(ids)}

    def t_expand_query(self, a: dict[str, Any]) -> Any:
        raise ToolError(LLM_ERRORS["memory_expand_query"])

    def t_auto_tag(self, a: dict[str, Any]) -> Any:
        raise ToolError(LLM_ERRORS["memory_auto_tag"])

    def t_detect_contradiction(self, a: dict[str, Any]) -> Any:
        raise ToolError(LLM_ERRORS["memory_detect_contradiction"])

    def t_inbox(self, a: dict[str, Any]) -> Any:
        agent = a.get("agent_id") or self.caller()
        M.validate_agent_id(agent)
        ns = f"_messages/{agent}"
        rows = self.store.list(namespace=ns, limit=min(int(a.get("limit", 50)), 500))
        unread_only = bool(a.get("unread_only"))
        messages = [{"id": m["id"], "from": (m.get("metadata") or {}).get("agent_id", ""), "title": m["title"],
                     "payload": m["content"], "priority": m["priority"], "tier": m["tier"],
                     "created_at": m["created_at"], "read": m["access_count"] > 0,
                     "access_count": m["access_count"]}
                    for m in rows if not unread_only or m["access_count"] == 0]
        return {"agent_id": agent, "namespace": ns, "count": len(messages), "unread_only": unread_only,
                "messages": messages}

    # -- meta ----------------------------------------------------------------------------------------
    def t_capabilities(self, a: dict[str, Any]) -> Any:
        fam = a.get("family")
        if fam:
            names = [n for n, t in TOOLS.items() if t.family == fam]
            loaded = any(n in self.advertised for n in names if n != "memory_capabilities")
            if a.get("include_schema"):
                return {"schema_version": "v0.6.4-family-schemas-1", "family": fam,
                        "loaded_under_active_profile": loaded, "tools": [TOOLS[n].wire() for n in names]}
            return {"schema_version": "v0.6.4-family-list-1", "family": fam,
                    "loaded_under_active_profile": loaded, "tools": names}
        return {
            "tier": "keyword", "version": self.version,
            "features": {"keyword_search": True, "semantic_search": False, "hybrid_recall": False,
                         "query_expansion": False, "auto_tagging": False, "contradiction_detection": False,
                         "cross_encoder_reranking": False, "memory_reflection": False, "webhooks": True,
                         "governance": True},
            "models": {"embedding": "none", "llm": "none", "cross_encoder": "none"},
            "profile": self.profile_label, "tools_loaded": len(self.advertised),
            "families": [{"name": f, "tools": [n for n, t in TOOLS.items() if t.family == f],
                          "loaded": any(TOOLS[n].family == f for n in self.advertised)} for f in FAMILIES],
        }

    def t_session_start(self, a: dict[str, Any]) -> Any:
        rows = self.store.list(namespace=a.get("namespace"), limit=min(int(a.get("limit", 10)), 50))
        for m in rows:
            m["score"] = 0.0
        out: dict[str, Any] = {"memories": rows, "count": len(rows), "mode": "session_start"}
        if a.get("namespace"):
            entry = self._standard_entry(a["namespace"])
            if entry.get("standard_id"):
                out["standard"] = entry
        return out

    def _agent_row(self, mem: dict[str, Any]) -> dict[str, Any]:
        meta = mem.get("metadata") or {}
        return {"id": mem["id"], "agent_id": mem["title"], "agent_type": meta.get("agent_type"),
                "capabilities": meta.get("capabilities", []), "registered_at": meta.get("registered_at"),
                "last_seen_at": meta.get("last_seen_at")}

    def t_agent_register(self, a: dict[str, Any]) -> Any:
        agent = a["agent_id"]
        M.validate_agent_id(agent)
        caps = [c.strip() for c in a.get("capabilities") or [] if c.strip()]
        M.validate_tags(caps)
        now = M.now_ts()
        existing = self.store.get_by_title(agent, "_agents")
        registered_at = ((existing or {}).get("metadata") or {}).get("registered_at", now)
        meta = {"agent_id": agent, "agent_type": a["agent_type"], "capabilities": caps,
                "registered_at": registered_at, "last_seen_at": now}
        content = json.dumps({"agent_type": a["agent_type"], "capabilities": caps})
        if existing is None:
            mem = M.new_memory(agent, content, tier="long", namespace="_agents", tags=["agent"], source="system",
                               metadata=meta)
            stored, _ = self.store.store(mem, on_conflict="error")
        else:
            stored = self.store.update(existing["id"], {"content": content, "metadata": meta}) or existing
        return {"registered": True, "id": stored["id"], "agent_id": agent, "agent_type": a["agent_type"],
                "capabilities": caps}

    def t_agent_list(self, a: dict[str, Any]) -> Any:
        agents = sorted((self._agent_row(m) for m in self.store.list(namespace="_agents", limit=1_000_000)),
                        key=lambda x: x["agent_id"])
        return {"count": len(agents), "agents": agents}

    # -- governance ----------------------------------------------------------------------------------
    def t_namespace_set_standard(self, a: dict[str, Any]) -> Any:
        ns = a["namespace"]
        if ns != "*":
            M.validate_namespace(ns)
        parent = a.get("parent")
        if parent is not None and parent != "*":
            M.validate_namespace(parent)
        mem = self._need(a["id"], "memory not found")
        governance = a.get("governance")
        if governance is not None:
            meta = dict(mem.get("metadata") or {})
            meta["governance"] = {k: v for k, v in governance.items() if v is not None}
            self.store.update(mem["id"], {"metadata": meta})
        self.state.set_standard(ns, mem["id"], parent)
        out: dict[str, Any] = {"set": True, "namespace": ns, "standard_id": mem["id"]}
        if parent is not None:
            out["parent"] = parent
        if governance is not None:
            out["governance"] = governance
        return out

    def _standard_entry(self, ns: str) -> dict[str, Any]:
        """The real get_standard shape: id, title, content, priority and the governance policy."""
        std = self.state.standard(ns)
        if not std or not std[0]:
            return {"namespace": ns, "standard_id": None}
        mem = self.store.get(std[0])
        if mem is None:
            return {"namespace": ns, "standard_id": std[0],
                    "warning": "standard memory not found — may have been deleted"}
        policy = (mem.get("metadata") or {}).get("governance") or {}
        return {"namespace": ns, "standard_id": std[0], "title": mem["title"], "content": mem["content"],
                "priority": mem["priority"], "governance": policy}

    def t_namespace_get_standard(self, a: dict[str, Any]) -> Any:
        ns = a["namespace"]
        if not a.get("inherit"):
            return self._standard_entry(ns)
        explicit_parent = (self.state.standard(ns) or (None, None))[1]
        lineage = list(reversed(_ancestors(ns)))
        if explicit_parent and explicit_parent not in lineage and explicit_parent != "*":
            lineage.insert(0, explicit_parent)
        chain = ["*", *lineage, ns] if ns != "*" else ["*"]
        standards = [e for e in (self._standard_entry(n) for n in chain) if e["standard_id"]]
        return {"namespace": ns, "chain": chain, "standards": standards, "count": len(standards)}

    def t_namespace_clear_standard(self, a: dict[str, Any]) -> Any:
        return {"cleared": self.state.clear_standard(a["namespace"]), "namespace": a["namespace"]}

    def t_pending_list(self, a: dict[str, Any]) -> Any:
        rows = self.state.list_pending(a.get("status"), min(int(a.get("limit", 100)), 1000))
        return {"count": len(rows), "pending": rows}

    def _pending_or_error(self, pid: str) -> dict[str, Any]:
        p = self.state.pending(pid)
        if p is None or p["status"] != "pending":
            raise ToolError(f"pending action not found or already decided: {pid}")
        return p

    def t_pending_approve(self, a: dict[str, Any]) -> Any:
        p = self._pending_or_error(a["id"])
        payload = p["payload"]
        if p["action_type"] == "store":
            oc = payload.get("on_conflict", "merge")
            memory_id = self._store_memory(payload["memory"], "upsert" if oc == "merge" else oc)["id"]
        elif p["action_type"] == "delete":
            mem = self._need(payload["id"])
            self.store.delete(mem["id"])
            self._fire("memory_delete", mem)
            memory_id = mem["id"]
        else:
            done = self._do_promote(self._need(payload["id"]), payload.get("to_namespace"))
            memory_id = done.get("clone_id") or done["id"]
        self.state.decide(p["id"], "approved", self.caller())
        return {"approved": True, "id": p["id"], "decided_by": self.caller(), "executed": True,
                "memory_id": memory_id}

    def t_pending_reject(self, a: dict[str, Any]) -> Any:
        p = self._pending_or_error(a["id"])
        self.state.decide(p["id"], "rejected", self.caller())
        return {"rejected": True, "id": p["id"], "decided_by": self.caller()}

    def t_subscribe(self, a: dict[str, Any]) -> Any:
        creator = self.caller()
        if self.store.get_by_title(creator, "_agents") is None:
            raise ToolError(f"agent {json.dumps(creator)} is not registered; call memory_agent_register before "
                            f"memory_subscribe")
        url = a["url"].strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ToolError(f"invalid webhook url: {url}")
        host = parts.hostname
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            addr = None
        loopback = host == "localhost" or (addr is not None and addr.is_loopback)
        if parts.scheme == "http" and not loopback:
            raise ToolError("webhook url must be https (http is allowed only for loopback hosts)")
        if addr is not None and not loopback and (addr.is_private or addr.is_link_local):
            raise ToolError(f"webhook url rejected by the SSRF guard: {host} is a private address")
        events = a.get("events", "*")
        known = {"memory_store", "memory_delete", "memory_promote", "*"}
        bad = [e for e in (x.strip() for x in events.split(",")) if e and e not in known]
        if bad:
            raise ToolError(f"unknown event(s): {', '.join(bad)} (known: memory_store, memory_delete, "
                            f"memory_promote, *)")
        sub = {"id": str(uuid.uuid4()), "url": url, "events": events, "namespace_filter": a.get("namespace_filter"),
               "agent_filter": a.get("agent_filter"), "created_by": creator, "created_at": M.now_ts(),
               "secret_hash": hashlib.sha256(a["secret"].encode()).hexdigest() if a.get("secret") else None}
        self.state.add_subscription(sub)
        return {k: sub[k] for k in ("id", "url", "events", "namespace_filter", "agent_filter", "created_by")}

    def t_unsubscribe(self, a: dict[str, Any]) -> Any:
        return {"id": a["id"], "removed": self.state.remove_subscription(a["id"])}

    def t_list_subscriptions(self, a: dict[str, Any]) -> Any:
        subs = [{k: v for k, v in s.items() if k != "secret_hash"} | {"signed": bool(s["secret_hash"])}
                for s in self.state.subscriptions()]
        return {"count": len(subs), "subscriptions": subs}

    # -- archive -------------------------------------------------------------------------------------
    def t_archive_list(self, a: dict[str, Any]) -> Any:
        rows = self.store.archive_list(namespace=a.get("namespace"), limit=min(int(a.get("limit", 50)), 1000),
                                       offset=int(a.get("offset", 0)))
        return {"archived": rows, "count": len(rows)}

    def t_archive_restore(self, a: dict[str, Any]) -> Any:
        mem = self.store.archive_restore(a["id"])
        if mem is None:
            raise ToolError("not found in archive")
        return {"restored": True, "id": mem["id"]}

    def t_archive_purge(self, a: dict[str, Any]) -> Any:
        days = a.get("older_than_days")
        older = None
        if days is not None:
            cut = datetime.now(UTC) - timedelta(days=int(days))
            older = cut.isoformat()
        return {"purged": self.store.archive_purge(older_than=older)}

    def t_archive_stats(self, a: dict[str, Any]) -> Any:
        return self.store.archive_stats()

    # -- other ---------------------------------------------------------------------------------------
    def t_notify(self, a: dict[str, Any]) -> Any:
        target = a["target_agent_id"]
        M.validate_agent_id(target)
        M.validate_title(a["title"])
        M.validate_content(a["payload"])
        sender = self.caller()
        ns = f"_messages/{target}"
        try:
            M.validate_namespace(ns)
        except ValidationError as exc:
            raise ToolError(f"target_agent_id cannot be used as an inbox: {exc.message}") from None
        mem = M.new_memory(a["title"], a["payload"], tier=a.get("tier", "mid"), namespace=ns,
                           tags=["_message"], priority=a.get("priority", 5), source="notify",
                           metadata={"recipient_agent_id": target, "message_kind": "notify"}, agent_id=sender)
        stored, _ = self.store.store(mem, on_conflict="version")
        out = {"id": stored["id"], "from": sender, "to": target, "namespace": ns, "tier": stored["tier"],
               "delivered_at": stored["created_at"]}
        if stored["title"] != mem["title"]:
            out["title"] = stored["title"]
        return out
