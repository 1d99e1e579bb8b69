"""The MCP tool catalogue (contract 2.7): the 43 tools of 0.6.3 in its `tools/list` order, with their families
and schemas. 0.6.3 has no tool profiles. The schemas are the ones the handlers in refpeer.mcp_tools enforce.
"""

from __future__ import annotations

from typing import Any, NamedTuple

TOOLS_VERSION = "2026-05-06"
FAMILIES = ("core", "lifecycle", "graph", "governance", "power", "meta", "archive", "other")
TIERS = ("short", "mid", "long")
RELATIONS = ("related_to", "supersedes", "contradicts", "derived_from")
SOURCES = ("user", "claude", "hook", "api", "cli", "import", "consolidation", "system", "chaos", "notify")
SCOPES = ("private", "team", "unit", "org", "collective")
AGENT_TYPES = ("ai:claude-opus-4.6", "ai:claude-opus-4.7", "ai:codex-5.4", "ai:grok-4.2", "human", "system")
GOVERNANCE_LEVELS = ("any", "registered", "owner", "approve")
FORMATS = ("json", "toon", "toon_compact")


class Tool(NamedTuple):
    name: str
    family: str
    description: str
    schema: dict[str, Any]

    def wire(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "inputSchema": self.schema}


def _s(desc: str = "", **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "string", **kw}
    if desc:
        out["description"] = desc
    return out


def _i(desc: str = "", **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "integer", **kw}
    if desc:
        out["description"] = desc
    return out


def _b(desc: str = "", default: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "boolean", "default": default}
    if desc:
        out["description"] = desc
    return out


def _obj(props: dict[str, Any] | None = None, required: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props or {}}
    if required:
        out["required"] = list(required)
    return out


_STR_LIST = {"type": "array", "items": {"type": "string"}}
_FMT = _s("Response text: json (default) or a TOON table", enum=list(FORMATS), default="json")
_TIER = _s(enum=list(TIERS))
_ID = _s("Memory ID")

_TOOLS: tuple[Tool, ...] = (
    Tool("memory_store", "core", "Store a memory. Deduplicates by title+namespace.", _obj({
        "title": _s("Short descriptive title"), "content": _s("Full memory content"),
        "tier": _s(enum=list(TIERS), default="mid"), "namespace": _s("Project/topic namespace", default="global"),
        "tags": {**_STR_LIST, "default": []}, "priority": _i(minimum=1, maximum=10, default=5),
        "confidence": {"type": "number", "minimum": 0.0, "maximum": 1.0, "default": 1.0},
        "source": _s(enum=list(SOURCES), default="claude"),
        "metadata": {"type": "object", "description": "Arbitrary JSON metadata", "default": {}},
        "agent_id": _s("Agent identifier; synthesized from the MCP client when omitted"),
        "scope": _s("Visibility scope, stored as metadata.scope", enum=list(SCOPES)),
        "on_conflict": _s("What a duplicate title+namespace does: merge (update in place, the default), "
                          "error, or version (store as 'T (2)')", enum=["merge", "error", "version"],
                          default="merge"),
    }, ("title", "content"))),
    Tool("memory_recall", "core", "Recall memories relevant to a context (any-token match, ranked).", _obj({
        "context": _s("What you are trying to remember"), "namespace": _s("Filter by namespace"),
        "limit": _i(default=10, minimum=1, maximum=50), "tags": _s("Only memories carrying this tag"),
        "since": _s("Only memories created at or after this RFC3339 time"),
        "until": _s("Only memories created at or before this RFC3339 time"),
        "budget_tokens": _i("Keep the top memories whose title+content fit in N tokens (~4 chars/token)",
                            minimum=1),
        "format": _FMT,
    }, ("context",))),
    Tool("memory_search", "core", "Search memories by exact keyword match (AND semantics).", _obj({
        "query": _s(), "namespace": _s(), "tier": _TIER, "limit": _i(default=20, minimum=1, maximum=200),
        "agent_id": _s("Only memories whose metadata.agent_id is this"), "format": _FMT,
    }, ("query",))),
    Tool("memory_list", "core", "List memories, optionally filtered by namespace or tier.", _obj({
        "namespace": _s(), "tier": _TIER, "limit": _i(default=20, minimum=1, maximum=200),
        "agent_id": _s("Only memories whose metadata.agent_id is this"), "format": _FMT,
    })),
    Tool("memory_get_taxonomy", "graph", "Namespace tree with memory counts (expired rows excluded).", _obj({
        "namespace_prefix": _s("Only this namespace and its descendants"),
        "depth": _i(default=8, minimum=0, maximum=8), "limit": _i(default=1000, minimum=1, maximum=10000),
    })),
    Tool("memory_check_duplicate", "power",
         "Pre-write near-duplicate check (lexical cosine over title+content; no embedder in the reference peer).",
         _obj({"title": _s(), "content": _s(), "namespace": _s(),
               "threshold": {"type": "number", "minimum": 0.5, "maximum": 1.0, "default": 0.85}},
              ("title", "content"))),
    Tool("memory_entity_register", "graph", "Register an entity (a long-term memory) plus its aliases.", _obj({
        "canonical_name": _s(), "namespace": _s(default="global"), "aliases": {**_STR_LIST, "default": []},
    }, ("canonical_name",))),
    Tool("memory_entity_get_by_alias", "graph", "Resolve an alias to its entity.", _obj({
        "alias": _s(), "namespace": _s(default="global"),
    }, ("alias",))),
    Tool("memory_kg_timeline", "graph", "Outbound links of a memory ordered by valid_from.", _obj({
        "source_id": _ID, "since": _s("valid_from at or after (RFC3339)"), "until": _s("valid_from at or before"),
        "limit": _i(default=100, minimum=1, maximum=1000),
    }, ("source_id",))),
    Tool("memory_kg_invalidate", "graph", "Set valid_until on a link (default now).", _obj({
        "source_id": _ID, "target_id": _ID, "relation": _s(enum=list(RELATIONS)),
        "valid_until": _s("RFC3339; default now"),
    }, ("source_id", "target_id", "relation"))),
    Tool("memory_kg_query", "graph", "Outbound link traversal from a memory (at most 5 hops).", _obj({
        "source_id": _ID, "max_depth": _i(default=1, minimum=1, maximum=5),
        "relation": _s("Follow only this relation", enum=list(RELATIONS)),
        "include_invalidated": _b("Also follow links whose valid_until has passed"),
        "limit": _i(default=100, minimum=1, maximum=1000),
    }, ("source_id",))),
    Tool("memory_delete", "lifecycle", "Delete a memory by ID.", _obj({"id": _s()}, ("id",))),
    Tool("memory_promote", "lifecycle",
         "Promote a memory to long-term, or clone it into an ancestor namespace (to_namespace).",
         _obj({"id": _s(), "to_namespace": _s("A proper ancestor of the memory's namespace")}, ("id",))),
    Tool("memory_forget", "lifecycle", "Bulk delete by pattern, namespace or tier (archives first).", _obj({
        "namespace": _s(), "pattern": _s("Substring of title or content"), "tier": _TIER,
        "dry_run": _b("Report what would be deleted"),
    })),
    Tool("memory_stats", "meta", "Memory store statistics.", _obj()),
    Tool("memory_update", "lifecycle", "Update a memory by ID; only the given fields change.", _obj({
        "id": _s("Memory ID to update"), "title": _s(), "content": _s(), "tier": _TIER, "namespace": _s(),
        "tags": _STR_LIST, "priority": _i(minimum=1, maximum=10),
        "confidence": {"type": "number", "minimum": 0.0, "maximum": 1.0},
        "expires_at": {"type": ["string", "null"], "description": "RFC3339 expiry, or null to clear"},
        "metadata": {"type": "object"},
    }, ("id",))),
    Tool("memory_get", "core", "Get a memory by ID, with its links.", _obj({"id": _s("Memory ID")}, ("id",))),
    Tool("memory_link", "graph", "Create a typed link between two memories.", _obj({
        "source_id": _ID, "target_id": _ID, "relation": _s(enum=list(RELATIONS), default="related_to"),
    }, ("source_id", "target_id"))),
    Tool("memory_get_links", "graph", "All links of a memory (both directions).", _obj({"id": _ID}, ("id",))),
    Tool("memory_consolidate", "power",
         "Merge memories into one long-term summary; deletes the sources and links derived_from.", _obj({
             "ids": {**_STR_LIST, "minItems": 2, "maxItems": 100}, "title": _s(),
             "summary": _s("Summary content (required without an LLM)"), "namespace": _s(default="global"),
         }, ("ids", "title"))),
    Tool("memory_capabilities", "meta", "Active tier, models, features, profile and tool families.", _obj({
        "family": _s("List (or with include_schema, describe) the tools of one family", enum=list(FAMILIES)),
        "include_schema": _b("With family: return the full tool definitions"),
    })),
    Tool("memory_expand_query", "power", "LLM query expansion (needs the smart or autonomous tier).",
         _obj({"query": _s()}, ("query",))),
    Tool("memory_auto_tag", "power", "LLM tag generation (needs the smart or autonomous tier).",
         _obj({"id": _ID}, ("id",))),
    Tool("memory_detect_contradiction", "power", "LLM contradiction check (needs the smart or autonomous tier).",
         _obj({"id_a": _ID, "id_b": _ID}, ("id_a", "id_b"))),
    Tool("memory_archive_list", "archive", "List archived memories.", _obj({
        "namespace": _s(), "limit": _i(default=50, minimum=1, maximum=1000), "offset": _i(default=0, minimum=0),
    })),
    Tool("memory_archive_restore", "archive", "Restore an archived memory (expiry cleared).",
         _obj({"id": _s("Archived memory ID")}, ("id",))),
    Tool("memory_archive_purge", "archive", "Permanently delete archived memories (optionally only old ones).",
         _obj({"older_than_days": _i(minimum=0)})),
    Tool("memory_archive_stats", "archive", "Archive totals by namespace.", _obj()),
    Tool("memory_gc", "lifecycle", "Archive then delete expired memories.",
         _obj({"dry_run": _b("Report what would be collected")})),
    Tool("memory_session_start", "meta", "Most recently used memories, for the start of a session.", _obj({
        "namespace": _s(), "limit": _i(default=10, minimum=1, maximum=50), "format": _FMT,
    })),
    Tool("memory_namespace_set_standard", "governance",
         "Make a memory the standard (policy) of a namespace, optionally with a governance policy.", _obj({
             "namespace": _s(), "id": _s("Memory ID to use as the standard"),
             "parent": _s("Parent namespace for rule layering"),
             "governance": _obj({"write": _s(enum=list(GOVERNANCE_LEVELS)),
                                 "promote": _s(enum=list(GOVERNANCE_LEVELS)),
                                 "delete": _s(enum=list(GOVERNANCE_LEVELS))}),
         }, ("namespace", "id"))),
    Tool("memory_namespace_get_standard", "governance", "The standard of a namespace (inherit: the chain).",
         _obj({"namespace": _s(), "inherit": _b("Return the chain * -> ancestors -> namespace")},
              ("namespace",))),
    Tool("memory_namespace_clear_standard", "governance", "Clear the standard of a namespace.",
         _obj({"namespace": _s()}, ("namespace",))),
    Tool("memory_pending_list", "governance", "Governance-queued actions.", _obj({
        "status": _s(enum=["pending", "approved", "rejected"]), "limit": _i(default=100, minimum=1, maximum=1000),
    })),
    Tool("memory_pending_approve", "governance", "Approve (and execute) a pending action.",
         _obj({"id": _s("Pending action id")}, ("id",))),
    Tool("memory_pending_reject", "governance", "Reject a pending action.",
         _obj({"id": _s("Pending action id")}, ("id",))),
    Tool("memory_agent_register", "meta", "Register an agent in the reserved _agents namespace.", _obj({
        "agent_id": _s(), "agent_type": _s(enum=list(AGENT_TYPES)), "capabilities": {**_STR_LIST, "default": []},
    }, ("agent_id", "agent_type"))),
    Tool("memory_agent_list", "meta", "Every registered agent.", _obj()),
    Tool("memory_notify", "other", "Send a message to another agent's inbox (_messages/<agent>).", _obj({
        "target_agent_id": _s(), "title": _s("Subject, at most 200 characters"), "payload": _s(),
        "priority": _i(minimum=1, maximum=10, default=5), "tier": _s(enum=list(TIERS), default="mid"),
    }, ("target_agent_id", "title", "payload"))),
    Tool("memory_inbox", "power", "Messages sent to an agent (default: the caller).", _obj({
        "agent_id": _s(), "unread_only": _b("Only messages never read (access_count == 0)"),
        "limit": _i(default=50, minimum=1, maximum=500),
    })),
    Tool("memory_subscribe", "governance",
         "Register a webhook (https, or http to a loopback host) for memory_store/delete/promote events.", _obj({
             "url": _s(), "events": _s("Comma list or *", default="*"),
             "secret": _s("HMAC-SHA256 key; signature header X-Ai-Memory-Signature"),
             "namespace_filter": _s(), "agent_filter": _s(),
         }, ("url",))),
    Tool("memory_unsubscribe", "governance", "Delete a subscription.", _obj({"id": _s()}, ("id",))),
    Tool("memory_list_subscriptions", "other", "Webhook subscriptions (secrets never returned).", _obj()),
)

TOOLS: dict[str, Tool] = {t.name: t for t in _TOOLS}
V063_TOOLS: tuple[str, ...] = tuple(t.name for t in _TOOLS)


def core_tools() -> tuple[str, ...]:
    """The core family plus memory_capabilities: what the seeded defect mcp_core_profile advertises."""
    return tuple(n for n in V063_TOOLS if TOOLS[n].family == "core" or n == "memory_capabilities")
