"""The Postgres side of `migrate`: the schema of contract 6.2 and an upserting `store()`.

Like the real SAL adapter, the schema runs on every connect and starts with `CREATE EXTENSION IF NOT EXISTS
vector`. Unlike the real adapter (whose connect fails with `init schema: …` without pgvector), the reference peer
falls back to a table without the `embedding vector(384)` column and says so on stderr, so it also works against
a vanilla Postgres. psycopg is imported lazily to keep `ai-memory-ref store` fast.
"""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime
from typing import Any

TIER_RANK = {"short": 0, "mid": 1, "long": 2}

_TABLES = """
CREATE TABLE IF NOT EXISTS schema_version (
    version    INTEGER PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS memories (
    id               TEXT PRIMARY KEY,
    tier             TEXT NOT NULL CHECK (tier IN ('short', 'mid', 'long')),
    namespace        TEXT NOT NULL DEFAULT 'global',
    title            TEXT NOT NULL,
    content          TEXT NOT NULL,
    tags             JSONB NOT NULL DEFAULT '[]'::jsonb,
    priority         INTEGER NOT NULL DEFAULT 5,
    confidence       DOUBLE PRECISION NOT NULL DEFAULT 1.0,
    source           TEXT NOT NULL DEFAULT 'api',
    access_count     BIGINT NOT NULL DEFAULT 0,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    last_accessed_at TIMESTAMPTZ,
    expires_at       TIMESTAMPTZ,
    metadata         JSONB NOT NULL DEFAULT '{}'::jsonb,
    scope_idx        TEXT GENERATED ALWAYS AS (COALESCE(metadata->>'scope', 'private')) STORED
);
CREATE INDEX IF NOT EXISTS memories_namespace_idx ON memories (namespace);
CREATE INDEX IF NOT EXISTS memories_updated_at_idx ON memories (updated_at);
CREATE INDEX IF NOT EXISTS memories_scope_idx ON memories (scope_idx);
CREATE TABLE IF NOT EXISTS memory_links (
    source_id  TEXT NOT NULL,
    target_id  TEXT NOT NULL,
    relation   TEXT NOT NULL DEFAULT 'related_to',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    valid_from TIMESTAMPTZ,
    valid_until TIMESTAMPTZ,
    PRIMARY KEY (source_id, target_id, relation)
);
CREATE TABLE IF NOT EXISTS entity_aliases (
    entity_id  TEXT NOT NULL,
    alias      TEXT NOT NULL,
    namespace  TEXT NOT NULL DEFAULT 'global',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (alias, namespace)
);
CREATE TABLE IF NOT EXISTS archived_memories (
    id             TEXT PRIMARY KEY,
    tier           TEXT NOT NULL,
    namespace      TEXT NOT NULL,
    title          TEXT NOT NULL,
    content        TEXT NOT NULL,
    tags           JSONB NOT NULL DEFAULT '[]'::jsonb,
    priority       INTEGER NOT NULL DEFAULT 5,
    confidence     DOUBLE PRECISION NOT NULL DEFAULT 1.0,
    source         TEXT NOT NULL DEFAULT 'api',
    access_count   BIGINT NOT NULL DEFAULT 0,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ,
    metadata       JSONB NOT NULL DEFAULT '{}'::jsonb,
    archived_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    archive_reason TEXT NOT NULL DEFAULT 'gc'
);
CREATE TABLE IF NOT EXISTS namespace_meta (
    namespace         TEXT PRIMARY KEY,
    standard_id       TEXT,
    parent_namespace  TEXT,
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS pending_actions (
    id           TEXT PRIMARY KEY,
    action_type  TEXT NOT NULL,
    memory_id    TEXT,
    namespace    TEXT NOT NULL,
    payload      JSONB NOT NULL DEFAULT '{}'::jsonb,
    requested_by TEXT NOT NULL,
    requested_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    status       TEXT NOT NULL DEFAULT 'pending',
    decided_by   TEXT,
    decided_at   TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS sync_state (
    agent_id       TEXT NOT NULL,
    peer_id        TEXT NOT NULL,
    last_seen_at   TIMESTAMPTZ,
    last_pulled_at TIMESTAMPTZ,
    last_pushed_at TIMESTAMPTZ,
    PRIMARY KEY (agent_id, peer_id)
);
CREATE TABLE IF NOT EXISTS subscriptions (
    id               TEXT PRIMARY KEY,
    url              TEXT NOT NULL,
    events           TEXT NOT NULL DEFAULT '*',
    secret_hash      TEXT,
    namespace_filter TEXT,
    agent_filter     TEXT,
    created_by       TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO schema_version (version) VALUES (1) ON CONFLICT DO NOTHING;
"""

_UNIQUE_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS memories_title_ns_uidx ON memories (title, namespace)"
_PLAIN_INDEX = "CREATE INDEX IF NOT EXISTS memories_title_ns_idx ON memories (title, namespace)"

_COLUMNS = ("id", "tier", "namespace", "title", "content", "tags", "priority", "confidence", "source",
            "access_count", "created_at", "updated_at", "last_accessed_at", "expires_at", "metadata")

# Upsert on (title, namespace), per contract 6.2: content, tags, priority, confidence and updated_at are
# replaced; the tier takes the higher rank (never downgraded); the stored id and metadata (hence
# metadata.agent_id) are preserved; a long tier clears the expiry.
_UPSERT = f"""
INSERT INTO memories ({", ".join(_COLUMNS)})
VALUES (%(id)s, %(tier)s, %(namespace)s, %(title)s, %(content)s, %(tags)s, %(priority)s, %(confidence)s,
        %(source)s, %(access_count)s, %(created_at)s, %(updated_at)s, %(last_accessed_at)s, %(expires_at)s,
        %(metadata)s)
ON CONFLICT (title, namespace) DO UPDATE SET
    content    = EXCLUDED.content,
    tags       = EXCLUDED.tags,
    priority   = EXCLUDED.priority,
    confidence = EXCLUDED.confidence,
    updated_at = EXCLUDED.updated_at,
    tier       = CASE WHEN (CASE EXCLUDED.tier WHEN 'long' THEN 2 WHEN 'mid' THEN 1 ELSE 0 END)
                         > (CASE memories.tier WHEN 'long' THEN 2 WHEN 'mid' THEN 1 ELSE 0 END)
                      THEN EXCLUDED.tier ELSE memories.tier END,
    expires_at = CASE WHEN memories.tier = 'long' OR EXCLUDED.tier = 'long' THEN NULL
                      ELSE EXCLUDED.expires_at END
RETURNING id
"""

_INSERT_PLAIN = f"""
INSERT INTO memories ({", ".join(_COLUMNS)})
VALUES (%(id)s, %(tier)s, %(namespace)s, %(title)s, %(content)s, %(tags)s, %(priority)s, %(confidence)s,
        %(source)s, %(access_count)s, %(created_at)s, %(updated_at)s, %(last_accessed_at)s, %(expires_at)s,
        %(metadata)s)
RETURNING id
"""


PG_LIST_CAP = 1000


class PgStoreError(RuntimeError):
    """Connecting to Postgres or bootstrapping its schema failed."""


def _ts(value: Any) -> str | None:
    """TIMESTAMPTZ → RFC3339 in the server's style (`+00:00`, not `Z`)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)


class PgStore:
    """A Postgres memory store. `duplicates_defect` seeds `migrate_duplicates`: no unique (title, namespace)
    index and plain inserts, so a re-run of a migration adds a second copy of every row."""

    def __init__(self, url: str, *, duplicates_defect: bool = False, connect_timeout: int = 10) -> None:
        import psycopg

        self.url = url
        self.duplicates_defect = duplicates_defect
        self.has_vector = False
        try:
            self.conn = psycopg.connect(url, connect_timeout=connect_timeout, autocommit=True)
        except psycopg.Error as exc:
            raise PgStoreError(f"connect: {str(exc).strip()}") from None
        try:
            self._init_schema()
        except psycopg.Error as exc:
            self.conn.close()
            raise PgStoreError(f"init schema: {str(exc).strip()}") from None

    def _init_schema(self) -> None:
        import psycopg

        try:
            self.conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            self.has_vector = True
        except psycopg.Error as exc:
            msg = str(exc).strip().splitlines()[0]
            print(f"ai-memory-ref: pgvector unavailable ({msg}); memories.embedding is omitted",
                  file=sys.stderr)
        with self.conn.transaction():
            self.conn.execute(_TABLES)
            if self.has_vector:
                self.conn.execute("ALTER TABLE memories ADD COLUMN IF NOT EXISTS embedding vector(384)")
                self.conn.execute("CREATE INDEX IF NOT EXISTS memories_embedding_hnsw ON memories "
                                  "USING hnsw (embedding vector_cosine_ops)")
            if self.duplicates_defect:
                self.conn.execute("DROP INDEX IF EXISTS memories_title_ns_uidx")
                self.conn.execute(_PLAIN_INDEX)
            else:
                self.conn.execute(_UNIQUE_INDEX)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> PgStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads ---------------------------------------------------------------------------------------
    def list(self, *, namespace: str | None = None, limit: int = 1_000_000) -> list[dict[str, Any]]:
        """Rows ordered like the SQLite list (priority desc, updated_at desc); expired rows included, as the
        real Postgres adapter does not filter them."""
        sql = f"SELECT {', '.join(_COLUMNS)} FROM memories"
        params: list[Any] = []
        if namespace is not None:
            sql += " WHERE namespace = %s"
            params.append(namespace)
        from refpeer import defects

        if defects.enabled("pg_list_cap_1000"):
            limit = max(1, min(limit, PG_LIST_CAP))  # 0.6.3's adapter clamps silently (src/store/postgres.rs)
        sql += " ORDER BY priority DESC, updated_at DESC, id LIMIT %s"
        params.append(limit)
        cur = self.conn.execute(sql, params)
        return [self._row(r) for r in cur.fetchall()]

    def get(self, id: str) -> dict[str, Any] | None:
        cur = self.conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM memories WHERE id = %s", (id,))
        row = cur.fetchone()
        return self._row(row) if row else None

    def links(self) -> list[tuple[str, str, str]]:
        cur = self.conn.execute("SELECT source_id, target_id, relation FROM memory_links")
        return [(str(a), str(b), str(r)) for a, b, r in cur.fetchall()]

    def add_link(self, source_id: str, target_id: str, relation: str = "related_to") -> None:
        """Insert a link (kept if already there), stamped now: the copy's time, as 0.7.0's migrate does."""
        with self.conn.transaction():
            self.conn.execute("INSERT INTO memory_links (source_id, target_id, relation) VALUES (%s, %s, %s) "
                              "ON CONFLICT DO NOTHING", (source_id, target_id, relation))

    def count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM memories").fetchone()[0])

    @staticmethod
    def _row(row: tuple[Any, ...]) -> dict[str, Any]:
        mem = dict(zip(_COLUMNS, row, strict=True))
        for key in ("created_at", "updated_at", "last_accessed_at", "expires_at"):
            mem[key] = _ts(mem[key])
        for key in ("last_accessed_at", "expires_at"):
            if mem[key] is None:
                del mem[key]
        mem["tags"] = list(mem["tags"] or [])
        mem["metadata"] = dict(mem["metadata"] or {})
        mem["access_count"] = int(mem["access_count"])
        return mem

    # -- writes --------------------------------------------------------------------------------------
    def transaction(self) -> Any:
        """One outer transaction for a whole migration: each `store()` inside it is a savepoint, so one bad
        row does not abort the rest and 1000 rows cost one commit, not 1000."""
        return self.conn.transaction()

    def store(self, mem: dict[str, Any]) -> str:
        """Upsert one wire-shape memory; returns the id the row has in Postgres."""
        from psycopg.types.json import Jsonb

        params = {key: mem.get(key) for key in _COLUMNS}
        params["tags"] = Jsonb(list(mem.get("tags") or []))
        params["metadata"] = Jsonb(dict(mem.get("metadata") or {}))
        params.setdefault("access_count", 0)
        params["access_count"] = int(mem.get("access_count") or 0)
        params["source"] = mem.get("source") or "api"
        if params["tier"] not in TIER_RANK:
            raise ValueError(f"invalid tier: {params['tier']!r}")
        with self.conn.transaction():
            if self.duplicates_defect:
                taken = self.conn.execute("SELECT 1 FROM memories WHERE id = %s", (params["id"],)).fetchone()
                if taken:
                    params["id"] = str(uuid.uuid4())
                row = self.conn.execute(_INSERT_PLAIN, params).fetchone()
            else:
                row = self.conn.execute(_UPSERT, params).fetchone()
        return str(row[0])
