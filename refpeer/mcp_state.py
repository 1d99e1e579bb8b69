"""Storage the MCP tools need beyond refpeer.store.Store: entity aliases, webhook events, the dead-letter queue.

The tables live in the same SQLite file, created idempotently through the store's own connection and lock
(refpeer.store already owns memories, links, archive, namespace_meta, pending_actions and subscriptions).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from refpeer.memory import now_ts
from refpeer.store import Store

_TABLES = (
    """CREATE TABLE IF NOT EXISTS entity_aliases (
        alias TEXT NOT NULL,
        namespace TEXT NOT NULL,
        entity_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (alias, namespace)
    )""",
    """CREATE TABLE IF NOT EXISTS subscription_events (
        id TEXT PRIMARY KEY,
        subscription_id TEXT NOT NULL,
        event TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at TEXT NOT NULL,
        delivered INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS subscription_dlq (
        id TEXT PRIMARY KEY,
        subscription_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        error TEXT NOT NULL,
        created_at TEXT NOT NULL
    )""",
)


class McpState:
    """Thin data access over the extra tables (and the store's subscriptions / pending_actions tables)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        with store.transaction() as c:
            for ddl in _TABLES:
                c.execute(ddl)
            cols = {r[1] for r in c.execute("PRAGMA table_info(subscriptions)")}
            if "secret_hash" not in cols:
                c.execute("ALTER TABLE subscriptions ADD COLUMN secret_hash TEXT")

    # -- entity aliases ------------------------------------------------------------------------------
    def alias_owner(self, alias: str, namespace: str) -> str | None:
        rows = self.store.query("SELECT entity_id FROM entity_aliases WHERE alias = ? AND namespace = ?",
                                (alias, namespace))
        return rows[0][0] if rows else None

    def add_aliases(self, entity_id: str, namespace: str, aliases: list[str]) -> None:
        with self.store.transaction() as c:
            for alias in aliases:
                c.execute("INSERT OR IGNORE INTO entity_aliases(alias, namespace, entity_id, created_at) "
                          "VALUES (?, ?, ?, ?)", (alias, namespace, entity_id, now_ts()))

    def aliases_of(self, entity_id: str) -> list[str]:
        return [r[0] for r in self.store.query(
            "SELECT alias FROM entity_aliases WHERE entity_id = ? ORDER BY created_at, alias", (entity_id,))]

    # -- links (beyond Store.add_link/get_links) ---------------------------------------------------
    def outbound(self, source_id: str) -> list[dict[str, Any]]:
        keys = ("source_id", "target_id", "relation", "created_at", "valid_from", "valid_until")
        rows = self.store.query(
            "SELECT source_id, target_id, relation, created_at, valid_from, valid_until FROM memory_links "
            "WHERE source_id = ? ORDER BY COALESCE(valid_from, created_at), target_id", (source_id,))
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def set_valid_until(self, source_id: str, target_id: str, relation: str, until: str) -> int:
        with self.store.transaction() as c:
            return c.execute("UPDATE memory_links SET valid_until = ? WHERE source_id = ? AND target_id = ? "
                             "AND relation = ?", (until, source_id, target_id, relation)).rowcount

    # -- namespace standards -----------------------------------------------------------------------
    def standard(self, namespace: str) -> tuple[str | None, str | None] | None:
        rows = self.store.query("SELECT standard_id, parent_namespace FROM namespace_meta WHERE namespace = ?",
                                (namespace,))
        return (rows[0][0], rows[0][1]) if rows else None

    def set_standard(self, namespace: str, standard_id: str, parent: str | None) -> None:
        with self.store.transaction() as c:
            c.execute("INSERT INTO namespace_meta(namespace, standard_id, parent_namespace, updated_at) "
                      "VALUES (?, ?, ?, ?) ON CONFLICT(namespace) DO UPDATE SET standard_id = excluded.standard_id, "
                      "parent_namespace = excluded.parent_namespace, updated_at = excluded.updated_at",
                      (namespace, standard_id, parent, now_ts()))

    def clear_standard(self, namespace: str) -> bool:
        with self.store.transaction() as c:
            return c.execute("DELETE FROM namespace_meta WHERE namespace = ?", (namespace,)).rowcount > 0

    # -- pending actions ---------------------------------------------------------------------------
    _PENDING_KEYS = ("id", "action_type", "memory_id", "namespace", "payload", "requested_by", "requested_at",
                     "status", "decided_by", "decided_at")

    def add_pending(self, action: str, namespace: str, requested_by: str, payload: dict[str, Any],
                    memory_id: str | None = None) -> str:
        pid = str(uuid.uuid4())
        with self.store.transaction() as c:
            c.execute("INSERT INTO pending_actions(id, action_type, memory_id, namespace, payload, requested_by, "
                      "requested_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (pid, action, memory_id, namespace, json.dumps(payload), requested_by, now_ts()))
        return pid

    def pending(self, pid: str) -> dict[str, Any] | None:
        rows = self.store.query(f"SELECT {', '.join(self._PENDING_KEYS)} FROM pending_actions WHERE id = ?", (pid,))
        return self._pending_row(rows[0]) if rows else None

    def list_pending(self, status: str | None, limit: int) -> list[dict[str, Any]]:
        sql = f"SELECT {', '.join(self._PENDING_KEYS)} FROM pending_actions"
        params: list[Any] = []
        if status:
            sql += " WHERE status = ?"
            params.append(status)
        sql += " ORDER BY requested_at DESC LIMIT ?"
        params.append(limit)
        return [self._pending_row(r) for r in self.store.query(sql, params)]

    def decide(self, pid: str, status: str, by: str) -> None:
        with self.store.transaction() as c:
            c.execute("UPDATE pending_actions SET status = ?, decided_by = ?, decided_at = ? WHERE id = ?",
                      (status, by, now_ts(), pid))

    def _pending_row(self, row: tuple[Any, ...]) -> dict[str, Any]:
        out = dict(zip(self._PENDING_KEYS, row, strict=True))
        out["payload"] = json.loads(out["payload"] or "{}")
        return {k: v for k, v in out.items() if v is not None}

    # -- subscriptions -----------------------------------------------------------------------------
    _SUB_KEYS = ("id", "url", "events", "namespace_filter", "agent_filter", "created_by", "created_at",
                 "dispatch_count", "failure_count", "secret_hash")

    def add_subscription(self, sub: dict[str, Any]) -> None:
        with self.store.transaction() as c:
            c.execute("INSERT INTO subscriptions(id, url, events, namespace_filter, agent_filter, created_by, "
                      "created_at, secret_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      (sub["id"], sub["url"], sub["events"], sub.get("namespace_filter"), sub.get("agent_filter"),
                       sub.get("created_by"), sub["created_at"], sub.get("secret_hash")))

    def subscriptions(self) -> list[dict[str, Any]]:
        rows = self.store.query(f"SELECT {', '.join(self._SUB_KEYS)} FROM subscriptions ORDER BY created_at")
        return [dict(zip(self._SUB_KEYS, r, strict=True)) for r in rows]

    def remove_subscription(self, sid: str) -> bool:
        with self.store.transaction() as c:
            return c.execute("DELETE FROM subscriptions WHERE id = ?", (sid,)).rowcount > 0

    def record_event(self, sid: str, event: str, payload: dict[str, Any]) -> str:
        eid = str(uuid.uuid4())
        with self.store.transaction() as c:
            c.execute("INSERT INTO subscription_events(id, subscription_id, event, payload, created_at) "
                      "VALUES (?, ?, ?, ?, ?)", (eid, sid, event, json.dumps(payload), now_ts()))
        return eid

    def delivery_result(self, sid: str, eid: str, error: str | None) -> None:
        with self.store.transaction() as c:
            c.execute("UPDATE subscription_events SET attempts = attempts + 1, delivered = ?, last_error = ? "
                      "WHERE id = ?", (0 if error else 1, error, eid))
            if error:
                c.execute("UPDATE subscriptions SET failure_count = failure_count + 1 WHERE id = ?", (sid,))
                c.execute("INSERT INTO subscription_dlq(id, subscription_id, event_id, error, created_at) "
                          "VALUES (?, ?, ?, ?, ?)", (str(uuid.uuid4()), sid, eid, error, now_ts()))
            else:
                c.execute("UPDATE subscriptions SET dispatch_count = dispatch_count + 1 WHERE id = ?", (sid,))
