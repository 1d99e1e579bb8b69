"""SQLite storage for the reference peer (contract 6.1): one connection behind one lock, WAL mode.

One connection guarded by a re-entrant lock mirrors the real server (every endpoint shares one connection
behind a mutex, so writes are serialized) and keeps SQLite out of "database is locked" territory inside
the process; `busy_timeout` covers other processes (a CLI `store` next to a running `serve`).
Memory dicts are the wire shape of contract 5.1: `last_accessed_at` / `expires_at` are omitted when unset.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from refpeer.errors import Conflict, RefPeerError
from refpeer.memory import TIER_RANK, TOUCH_EXTEND_SECS, now_ts, ts_in

SCHEMA_VERSION = 28
COLUMNS: tuple[str, ...] = (
    "id", "tier", "namespace", "title", "content", "tags", "priority", "confidence", "source",
    "access_count", "created_at", "updated_at", "last_accessed_at", "expires_at", "metadata",
)
_COLS = ", ".join(COLUMNS)
_MCOLS = ", ".join(f"m.{c}" for c in COLUMNS)
_PLACEHOLDERS = ", ".join("?" for _ in COLUMNS)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS memories (
    id TEXT PRIMARY KEY,
    tier TEXT NOT NULL DEFAULT 'mid',
    namespace TEXT NOT NULL DEFAULT 'global',
    title TEXT NOT NULL,
    content TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '[]',
    priority INTEGER NOT NULL DEFAULT 5,
    confidence REAL NOT NULL DEFAULT 1.0,
    source TEXT NOT NULL DEFAULT 'api',
    access_count INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_accessed_at TEXT,
    expires_at TEXT,
    metadata TEXT NOT NULL DEFAULT '{{}}'
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_memories_title_ns ON memories(title, namespace);
CREATE INDEX IF NOT EXISTS idx_memories_ns_prio ON memories(namespace, priority DESC, updated_at DESC);
CREATE INDEX IF NOT EXISTS idx_memories_updated ON memories(updated_at);
CREATE INDEX IF NOT EXISTS idx_memories_tier ON memories(tier);
CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5(
    title, content, tags, content='memories', content_rowid='rowid'
);
CREATE TRIGGER IF NOT EXISTS memories_ai AFTER INSERT ON memories BEGIN
    INSERT INTO memories_fts(rowid, title, content, tags) VALUES (new.rowid, new.title, new.content, new.tags);
END;
CREATE TRIGGER IF NOT EXISTS memories_ad AFTER DELETE ON memories BEGIN
    INSERT INTO memories_fts(memories_fts, rowid, title, content, tags)
    VALUES ('delete', old.rowid, old.title, old.content, old.tags);
END;
CREATE TRIGGER IF NOT EXISTS memories_au AFTER UPDATE OF title, content, tags ON memories BEGIN
    INSERT INTO memories_fts(memories_fts, rowid, title, content, tags)
    VALUES ('delete', old.rowid, old.title, old.content, old.tags);
    INSERT INTO memories_fts(rowid, title, content, tags) VALUES (new.rowid, new.title, new.content, new.tags);
END;
CREATE TABLE IF NOT EXISTS archived_memories (
    {', '.join(c + (' TEXT PRIMARY KEY' if c == 'id' else '') for c in COLUMNS)},
    archived_at TEXT NOT NULL,
    archive_reason TEXT NOT NULL DEFAULT 'ttl'
);
CREATE TABLE IF NOT EXISTS memory_links (
    source_id TEXT NOT NULL,
    target_id TEXT NOT NULL,
    relation TEXT NOT NULL DEFAULT 'related_to',
    created_at TEXT NOT NULL,
    valid_from TEXT,
    valid_until TEXT,
    PRIMARY KEY (source_id, target_id, relation)
);
CREATE TABLE IF NOT EXISTS sync_state (
    agent_id TEXT NOT NULL,
    peer_id TEXT NOT NULL,
    last_seen_at TEXT,
    last_pulled_at TEXT,
    last_pushed_at TEXT,
    PRIMARY KEY (agent_id, peer_id)
);
CREATE TABLE IF NOT EXISTS namespace_meta (
    namespace TEXT PRIMARY KEY,
    standard_id TEXT,
    parent_namespace TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pending_actions (
    id TEXT PRIMARY KEY,
    action_type TEXT NOT NULL,
    memory_id TEXT,
    namespace TEXT NOT NULL,
    payload TEXT NOT NULL DEFAULT '{{}}',
    requested_by TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    decided_by TEXT,
    decided_at TEXT
);
CREATE TABLE IF NOT EXISTS subscriptions (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    events TEXT NOT NULL DEFAULT '*',
    namespace_filter TEXT,
    agent_filter TEXT,
    created_by TEXT,
    created_at TEXT NOT NULL,
    dispatch_count INTEGER NOT NULL DEFAULT 0,
    failure_count INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
"""


def _row_to_mem(row: sqlite3.Row | tuple) -> dict:
    """A stored row in wire shape (JSON columns decoded, unset optional timestamps omitted)."""
    mem = dict(zip(COLUMNS, row, strict=False))
    mem["tags"] = json.loads(mem["tags"]) if mem["tags"] else []
    mem["metadata"] = json.loads(mem["metadata"]) if mem["metadata"] else {}
    if mem["last_accessed_at"] is None:
        del mem["last_accessed_at"]
    if mem["expires_at"] is None:
        del mem["expires_at"]
    return mem


def _mem_to_row(mem: dict) -> tuple:
    return (
        mem["id"], mem.get("tier", "mid"), mem.get("namespace", "global"), mem["title"], mem["content"],
        json.dumps(mem.get("tags") or [], ensure_ascii=False), int(mem.get("priority", 5)),
        float(mem.get("confidence", 1.0)), mem.get("source", "api"), int(mem.get("access_count", 0)),
        mem["created_at"], mem["updated_at"], mem.get("last_accessed_at"), mem.get("expires_at"),
        json.dumps(mem.get("metadata") or {}, ensure_ascii=False, separators=(",", ":")),
    )


def _fts_query(query: str, joiner: str) -> str | None:
    """Each whitespace token phrase-quoted, operators dropped (contract 2.3); None when nothing is left."""
    toks = [t for t in query.split() if t.upper() not in ("AND", "OR", "NOT", "NEAR")]
    if not toks:
        return None
    return f" {joiner} ".join('"' + t.replace('"', '""') + '"' for t in toks)


class Store:
    """The memory store. Thread-safe: every public method takes the one lock."""

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL", group_commit: bool = False) -> None:
        """Open (creating file and schema if needed). `group_commit` batches concurrent writers into one
        COMMIT (one fsync) from a committer thread -- what keeps `serve` fast with synchronous=FULL."""
        self.path = str(path)
        self._owner: int | None = None
        self._group = False
        self._batch_open = False
        self._batch_id = 0
        self._committed_id = 0
        self._submitted = 0
        self._handled = 0
        self._closing = False
        self._errors: dict[int, BaseException] = {}
        self._cv = threading.Condition(threading.Lock())
        self._local = threading.local()
        if self.path != ":memory:":
            parent = Path(self.path).parent
            if not parent.exists():
                raise RefPeerError(f"database directory does not exist: {parent}")
        self.lock = threading.RLock()
        try:
            self.conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as e:
            raise RefPeerError(f"cannot open database {self.path}: {e}") from e
        c = self.conn
        try:
            c.execute("PRAGMA busy_timeout=5000")
            c.execute("PRAGMA journal_mode=WAL")
            c.execute(f"PRAGMA synchronous={synchronous}")
            c.execute("PRAGMA foreign_keys=ON")
            have = c.execute("SELECT 1 FROM sqlite_master WHERE name='schema_version'").fetchone()
            if not have:
                with self.transaction():
                    for stmt in _split_sql(SCHEMA):
                        c.execute(stmt)
                    c.execute("INSERT INTO schema_version(version) VALUES (?)", (SCHEMA_VERSION,))
        except sqlite3.DatabaseError as e:
            c.close()
            raise RefPeerError(f"cannot initialise database {self.path}: {e}") from e
        if group_commit:
            self._group = True
            self._committer = threading.Thread(target=self._commit_loop, name="group-commit", daemon=True)
            self._committer.start()

    # ---- plumbing -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block atomically and return only once it is committed (re-entrant: a nested block joins
        the outer one).

        Plain mode: BEGIN IMMEDIATE ... COMMIT under the store lock. Group-commit mode: the block runs in a
        SAVEPOINT of the shared open batch transaction, the lock is released, and the caller waits until the
        committer thread has committed that batch, so N concurrent writers share one fsync.
        """
        me = threading.get_ident()
        if self._owner == me:
            yield self.conn
            return
        if not self._group:
            with self.lock:
                self.conn.execute("BEGIN IMMEDIATE")
                self._owner = me
                try:
                    yield self.conn
                    self.conn.execute("COMMIT")
                except BaseException:
                    if self.conn.in_transaction:
                        self.conn.execute("ROLLBACK")
                    raise
                finally:
                    self._owner = None
            return
        failed = False
        with self.lock:
            if self._closing:
                raise RefPeerError("store is closed")
            if not self._batch_open:
                self.conn.execute("BEGIN IMMEDIATE")
                self._batch_open = True
                self._batch_id += 1
            bid = self._batch_id
            self._owner = me
            self.conn.execute("SAVEPOINT w")
            try:
                yield self.conn
                self.conn.execute("RELEASE w")
            except BaseException:
                failed = True
                self.conn.execute("ROLLBACK TO w")
                self.conn.execute("RELEASE w")
                raise
            finally:
                self._owner = None
                with self._cv:
                    self._submitted += 1
                    self._cv.notify_all()
        if failed:
            return
        with self._cv:
            while self._committed_id < bid:
                self._cv.wait()
            err = self._errors.get(bid)
        if err is not None:
            raise RefPeerError(f"commit failed: {err}")

    def _commit_loop(self) -> None:
        """Commit the open batch whenever writers have finished their blocks in it."""
        while True:
            with self._cv:
                while self._submitted == self._handled and not self._closing:
                    self._cv.wait()
                if self._closing and self._submitted == self._handled:
                    return
                self._handled = self._submitted
            err: BaseException | None = None
            with self.lock:
                if not self._batch_open:
                    continue
                bid = self._batch_id
                try:
                    self.conn.execute("COMMIT")
                except Exception as e:  # every waiter must hear about it; the loop must survive
                    err = e
                    with contextlib.suppress(sqlite3.Error):
                        self.conn.execute("ROLLBACK")
                self._batch_open = False
            with self._cv:
                if err is not None:
                    self._errors[bid] = err
                self._committed_id = bid
                self._cv.notify_all()

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A connection for a read: in group-commit mode a per-thread reader (WAL readers never wait for the
        writer's fsync) seeing committed data; otherwise -- or inside this thread's own transaction -- the
        writer connection under the lock."""
        if not self._group or self._owner == threading.get_ident():
            with self.lock:
                yield self.conn
            return
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
        yield conn

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        """Run a read-only statement under the lock (for callers that need a table this class does not wrap)."""
        with self._read() as rc:
            return rc.execute(sql, tuple(params)).fetchall()

    def close(self) -> None:
        if self._group and not self._closing:
            with self._cv:
                self._closing = True
                self._cv.notify_all()
            self._committer.join(timeout=10)
        with self.lock:
            if self._batch_open:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("COMMIT")
                self._batch_open = False
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.conn.close()

    def checkpoint(self, mode: str = "PASSIVE") -> None:
        """Checkpoint the WAL (PASSIVE never waits for readers, so the periodic one cannot stall writers)."""
        with self.lock, contextlib.suppress(sqlite3.Error):
            if not self._batch_open:
                self.conn.execute(f"PRAGMA wal_checkpoint({mode})")

    def _get_by_key(self, title: str, namespace: str, conn: sqlite3.Connection | None = None) -> dict | None:
        row = (conn or self.conn).execute(
            f"SELECT {_COLS} FROM memories WHERE title = ? AND namespace = ?", (title, namespace)
        ).fetchone()
        return _row_to_mem(row) if row else None

    def _insert(self, mem: dict) -> None:
        self.conn.execute(f"INSERT INTO memories ({_COLS}) VALUES ({_PLACEHOLDERS})", _mem_to_row(mem))

    def _replace(self, mem: dict) -> None:
        """Overwrite every column of the row with `mem['id']` (title/namespace included)."""
        row = _mem_to_row(mem)
        sets = ", ".join(f"{c} = ?" for c in COLUMNS[1:])
        self.conn.execute(f"UPDATE memories SET {sets} WHERE id = ?", (*row[1:], row[0]))

    # ---- writes ---------------------------------------------------------------------------------

    def store(self, mem: dict, *, on_conflict: str = "upsert") -> tuple[dict, bool]:
        """Insert `mem`, or resolve a (title, namespace) clash per `on_conflict`; returns (stored, created).

        upsert/merge: content, tags and source replaced, priority and confidence MAX, tier never
        downgrades, metadata.agent_id preserved, the existing id kept. error: raise Conflict.
        version: store under 'T (2)', 'T (3)', ...
        """
        with self.transaction():
            return self._store_locked(mem, on_conflict)

    def store_many(self, mems: list[dict], *, on_conflict: str = "upsert") -> list[tuple[dict, bool]]:
        """store() for many rows in one transaction (the fast seeding path: import, bulk)."""
        with self.transaction():
            return [self._store_locked(m, on_conflict) for m in mems]

    def _store_locked(self, mem: dict, on_conflict: str) -> tuple[dict, bool]:
        existing = self._get_by_key(mem["title"], mem["namespace"])
        if existing is None:
            try:
                self._insert(mem)
            except sqlite3.IntegrityError as e:
                raise RefPeerError(f"cannot store memory {mem['id']}: {e}") from e
            return dict(mem), True
        if on_conflict == "error":
            raise Conflict(existing["id"], mem["title"], mem["namespace"])
        if on_conflict == "version":
            n = 2
            while self._get_by_key(f"{mem['title']} ({n})", mem["namespace"]) is not None:
                n += 1
            versioned = dict(mem, title=f"{mem['title']} ({n})")
            self._insert(versioned)
            return versioned, True
        if on_conflict not in ("upsert", "merge"):
            raise ValueError(f"unknown on_conflict: {on_conflict}")
        merged = dict(existing)
        merged["content"] = mem["content"]
        merged["tags"] = list(mem.get("tags") or [])
        merged["source"] = mem.get("source", existing["source"])
        merged["priority"] = max(existing["priority"], mem.get("priority", 5))
        merged["confidence"] = max(existing["confidence"], mem.get("confidence", 1.0))
        tier = mem.get("tier", "mid")
        if TIER_RANK[tier] > TIER_RANK[existing["tier"]]:
            merged["tier"] = tier
        meta = dict(mem.get("metadata") or {})
        if "agent_id" in existing["metadata"]:
            meta["agent_id"] = existing["metadata"]["agent_id"]
        merged["metadata"] = meta
        merged["updated_at"] = mem["updated_at"]
        merged.pop("expires_at", None)
        if merged["tier"] != "long" and mem.get("expires_at"):
            merged["expires_at"] = mem["expires_at"]
        self._replace(merged)
        return merged, False

    def delete(self, id: str) -> bool:
        with self.transaction():
            cur = self.conn.execute("DELETE FROM memories WHERE id = ?", (id,))
            self.conn.execute("DELETE FROM memory_links WHERE source_id = ? OR target_id = ?", (id, id))
            return cur.rowcount > 0

    def update(self, id: str, fields: dict) -> dict | None:
        """Apply already-validated fields (title, content, tier, namespace, tags, priority, confidence,
        source, expires_at, metadata); bumps updated_at. None when the id does not exist.
        A (title, namespace) clash with another row raises Conflict."""
        with self.transaction():
            cur = self.get(id)
            if cur is None:
                return None
            new = dict(cur)
            for k, v in fields.items():
                if k in ("title", "content", "tier", "namespace", "tags", "priority", "confidence",
                         "source", "expires_at", "metadata"):
                    new[k] = v
            if "metadata" in fields and "agent_id" in cur["metadata"]:
                new["metadata"] = dict(fields["metadata"], agent_id=cur["metadata"]["agent_id"])
            if new["tier"] == "long" and "expires_at" not in fields:
                new.pop("expires_at", None)
            if new.get("expires_at") is None:
                new.pop("expires_at", None)
            other = self._get_by_key(new["title"], new["namespace"])
            if other is not None and other["id"] != id:
                raise Conflict(other["id"], new["title"], new["namespace"])
            new["updated_at"] = now_ts()
            self._replace(new)
            return new

    def insert_if_newer(self, mem: dict) -> str:
        """Merge a replicated row (contract 4.6), keyed on (title, namespace), not on id.

        Returns "inserted" (new row, sender's id kept), "updated" (existing row changed), "noop" (nothing
        changed: the incoming row was not newer and carried nothing larger) or "skipped" (the row cannot be
        applied, e.g. its id belongs to a row with another title).
        """
        with self.transaction():
            existing = self._get_by_key(mem["title"], mem["namespace"])
            if existing is None:
                try:
                    self._insert(mem)
                except sqlite3.IntegrityError:
                    return self._retitle_if_newer(mem)
                return "inserted"
            newer = mem["updated_at"] > existing["updated_at"] or (
                mem["updated_at"] == existing["updated_at"] and mem["id"] > existing["id"]
            )
            merged = dict(existing)
            if newer:
                merged["content"] = mem["content"]
                merged["tags"] = list(mem.get("tags") or [])
                merged["source"] = mem.get("source", existing["source"])
                meta = dict(mem.get("metadata") or {})
                if "agent_id" in existing["metadata"]:
                    meta["agent_id"] = existing["metadata"]["agent_id"]
                else:
                    meta.pop("agent_id", None)
                merged["metadata"] = meta
            merged["priority"] = max(existing["priority"], mem.get("priority", 5))
            merged["confidence"] = max(existing["confidence"], mem.get("confidence", 1.0))
            merged["access_count"] = max(existing["access_count"], mem.get("access_count", 0))
            merged["updated_at"] = max(existing["updated_at"], mem["updated_at"])
            tier = mem.get("tier", "mid")
            if TIER_RANK[tier] > TIER_RANK[existing["tier"]]:
                merged["tier"] = tier
            if merged["tier"] == "long" or tier == "long":
                merged.pop("expires_at", None)
            else:
                exp = mem.get("expires_at") if newer else existing.get("expires_at")
                merged.pop("expires_at", None)
                if exp:
                    merged["expires_at"] = exp
            if merged == existing:
                return "noop"
            self._replace(merged)
            return "updated"

    def _retitle_if_newer(self, mem: dict) -> str:
        """The incoming row's id exists here under another (title, namespace): an update that renamed it.
        Newer wins as a whole row; the seeded defect update_title_not_replicated skips it, as 0.6.3 does."""
        from refpeer import defects

        if defects.enabled("update_title_not_replicated"):
            return "skipped"
        row = self.conn.execute(f"SELECT {_COLS} FROM memories WHERE id = ?", (mem["id"],)).fetchone()
        if row is None:
            return "skipped"
        existing = _row_to_mem(row)
        if mem["updated_at"] <= existing["updated_at"]:
            return "noop"
        if self._get_by_key(mem["title"], mem["namespace"]) is not None:
            return "skipped"
        merged = dict(mem, access_count=max(existing["access_count"], mem.get("access_count", 0)))
        if "agent_id" in existing["metadata"]:
            merged["metadata"] = dict(mem.get("metadata") or {}, agent_id=existing["metadata"]["agent_id"])
        self._replace(merged)
        return "updated"

    # ---- reads ----------------------------------------------------------------------------------

    def get(self, id: str) -> dict | None:
        with self._read() as rc:
            row = rc.execute(f"SELECT {_COLS} FROM memories WHERE id = ?", (id,)).fetchone()
        return _row_to_mem(row) if row else None

    def get_by_title(self, title: str, namespace: str) -> dict | None:
        with self._read() as rc:
            return self._get_by_key(title, namespace, rc)

    def list(self, *, namespace: str | None = None, tier: str | None = None, limit: int = 20, offset: int = 0,
             include_expired: bool = False, agent_id: str | None = None, min_priority: int | None = None,
             since: str | None = None, until: str | None = None, tag: str | None = None) -> list[dict]:
        """Rows ordered priority desc, updated_at desc; expired rows hidden unless include_expired."""
        where, params = self._filters(namespace, tier, include_expired, agent_id, min_priority, since, until, tag)
        sql = (f"SELECT {_COLS} FROM memories {where} ORDER BY priority DESC, updated_at DESC, id "
               f"LIMIT ? OFFSET ?")
        with self._read() as rc:
            rows = rc.execute(sql, (*params, int(limit), int(offset))).fetchall()
        return [_row_to_mem(r) for r in rows]

    @staticmethod
    def _filters(namespace: str | None, tier: str | None, include_expired: bool, agent_id: str | None,
                 min_priority: int | None = None, since: str | None = None, until: str | None = None,
                 tag: str | None = None) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if namespace is not None:
            clauses.append("namespace = ?")
            params.append(namespace)
        if tier is not None:
            clauses.append("tier = ?")
            params.append(tier)
        if not include_expired:
            clauses.append("(expires_at IS NULL OR expires_at > ?)")
            params.append(now_ts())
        if agent_id is not None:
            clauses.append("json_extract(metadata, '$.agent_id') = ?")
            params.append(agent_id)
        if min_priority is not None:
            clauses.append("priority >= ?")
            params.append(min_priority)
        if since is not None:
            clauses.append("created_at >= ?")
            params.append(since)
        if until is not None:
            clauses.append("created_at <= ?")
            params.append(until)
        if tag is not None:
            clauses.append("EXISTS (SELECT 1 FROM json_each(memories.tags) WHERE json_each.value = ?)")
            params.append(tag)
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", params

    def count(self, namespace: str | None = None, *, include_expired: bool = True) -> int:
        where, params = self._filters(namespace, None, include_expired, None)
        with self._read() as rc:
            return int(rc.execute(f"SELECT COUNT(*) FROM memories {where}", params).fetchone()[0])

    def _fts(self, query: str, joiner: str, namespace: str | None,
             conn: sqlite3.Connection | None = None) -> list[tuple[dict, float]]:
        match = _fts_query(query, joiner)
        if match is None:
            return []
        sql = (f"SELECT {_MCOLS}, bm25(memories_fts) FROM memories_fts CROSS JOIN memories m "
               f"ON m.rowid = memories_fts.rowid WHERE memories_fts MATCH ? "
               f"AND (m.expires_at IS NULL OR m.expires_at > ?)")
        params: list[Any] = [match, now_ts()]
        if namespace is not None:
            sql += " AND m.namespace = ?"
            params.append(namespace)
        try:
            rows = (conn or self.conn).execute(sql, params).fetchall()
        except sqlite3.OperationalError:
            return []
        return [(_row_to_mem(r[:-1]), float(r[-1])) for r in rows]

    def recall(self, query: str, *, limit: int = 10, namespace: str | None = None, touch: bool = True) -> list[dict]:
        """Any-token (OR) match over title, content and tags, expired rows excluded, ranked; each row gets
        a `score` (3 dp). touch: access_count+1, last_accessed_at=now, TTL extended (short +1 h, mid
        +1 d), mid promoted to long at access_count >= 5, priority +1 at every 10th access."""
        with self.transaction():
            hits = self._fts(query, "OR", namespace)
            now = now_ts()
            scored = []
            for mem, bm25 in hits:
                bonus = {"long": 0.3, "mid": 0.1}.get(mem["tier"], 0.0)
                score = (-bm25 + mem["priority"] * 0.1 + min(mem["access_count"], 50) * 0.02
                         + mem["confidence"] * 0.2 + bonus + (0.1 if mem["updated_at"][:10] == now[:10] else 0.0))
                mem["score"] = round(score, 3)
                scored.append(mem)
            scored.sort(key=lambda m: (-m["score"], m["id"]))
            out = scored[: max(0, int(limit))]
            if touch:
                for mem in out:
                    self._touch(mem, now)
            return out

    def _touch(self, mem: dict, now: str) -> None:
        count = mem["access_count"] + 1
        tier = mem["tier"]
        priority = mem["priority"]
        exp = mem.get("expires_at")
        if tier == "mid" and count >= 5:
            tier, exp = "long", None
        elif exp is not None and TOUCH_EXTEND_SECS.get(tier):
            exp = max(exp, ts_in(TOUCH_EXTEND_SECS[tier] or 0, now))
        if count % 10 == 0:
            priority = min(10, priority + 1)
        self.conn.execute(
            "UPDATE memories SET access_count = ?, last_accessed_at = ?, tier = ?, expires_at = ?, priority = ? "
            "WHERE id = ?", (count, now, tier, exp, priority, mem["id"]),
        )

    def similar_ids(self, title: str, namespace: str, exclude_id: str, limit: int = 5) -> list[str]:
        """Ids of live rows in `namespace` matching any token of `title` (201's potential_contradictions)."""
        with self._read() as rc:
            hits = self._fts(title, "OR", namespace, rc)
        hits.sort(key=lambda h: h[1])
        return [m["id"] for m, _ in hits if m["id"] != exclude_id][:limit]

    def search(self, query: str, *, limit: int = 20, namespace: str | None = None) -> list[dict]:
        """All-token (AND) match, best FTS rank first, then priority."""
        with self._read() as rc:
            hits = self._fts(query, "AND", namespace, rc)
        hits.sort(key=lambda h: (h[1], -h[0]["priority"], h[0]["id"]))
        return [m for m, _ in hits[: max(0, int(limit))]]

    def stats(self) -> dict:
        """The `stats --json` object (contract 2.4): totals count expired rows too."""
        now = now_ts()
        with self._read() as rc:
            c = rc
            total = c.execute("SELECT COUNT(*) FROM memories").fetchone()[0]
            by_tier = c.execute(
                "SELECT tier, COUNT(*) n FROM memories GROUP BY tier ORDER BY n DESC, tier").fetchall()
            by_ns = c.execute(
                "SELECT namespace, COUNT(*) n FROM memories GROUP BY namespace ORDER BY n DESC, namespace").fetchall()
            soon = c.execute(
                "SELECT COUNT(*) FROM memories WHERE expires_at IS NOT NULL AND expires_at > ? AND expires_at <= ?",
                (now, ts_in(3600, now))).fetchone()[0]
            links = c.execute("SELECT COUNT(*) FROM memory_links").fetchone()[0]
        size = os.path.getsize(self.path) if self.path != ":memory:" and os.path.exists(self.path) else 0
        return {
            "total": total,
            "by_tier": [{"tier": t, "count": n} for t, n in by_tier],
            "by_namespace": [{"namespace": ns, "count": n} for ns, n in by_ns],
            "expiring_soon": soon, "links_count": links, "db_size_bytes": size,
        }

    def namespaces(self) -> list[dict]:
        """[{namespace, count}] over non-expired rows, count desc."""
        with self._read() as rc:
            rows = rc.execute(
                "SELECT namespace, COUNT(*) n FROM memories WHERE expires_at IS NULL OR expires_at > ? "
                "GROUP BY namespace ORDER BY n DESC, namespace", (now_ts(),)).fetchall()
        return [{"namespace": ns, "count": n} for ns, n in rows]

    def since(self, since: str | None, limit: int = 500) -> list[dict]:
        """Rows with updated_at > since (string compare), oldest first, expired rows included (contract 3.8)."""
        with self._read() as rc:
            if since is None:
                rows = rc.execute(
                    f"SELECT {_COLS} FROM memories ORDER BY updated_at ASC, id LIMIT ?", (int(limit),)).fetchall()
            else:
                rows = rc.execute(
                    f"SELECT {_COLS} FROM memories WHERE updated_at > ? ORDER BY updated_at ASC, id LIMIT ?",
                    (since, int(limit))).fetchall()
        return [_row_to_mem(r) for r in rows]

    # ---- sync_state -----------------------------------------------------------------------------

    def sync_cursor(self, agent_id: str, peer_id: str) -> str | None:
        """The catch-up cursor (greatest updated_at pulled from `peer_id`), None before the first pull."""
        with self._read() as rc:
            row = rc.execute(
                "SELECT last_pulled_at FROM sync_state WHERE agent_id = ? AND peer_id = ?",
                (agent_id, peer_id)).fetchone()
        return row[0] if row else None

    def set_sync_cursor(self, agent_id: str, peer_id: str, cursor: str) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO sync_state(agent_id, peer_id, last_seen_at, last_pulled_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(agent_id, peer_id) DO UPDATE SET last_seen_at = excluded.last_seen_at, "
                "last_pulled_at = MAX(COALESCE(last_pulled_at, ''), excluded.last_pulled_at)",
                (agent_id, peer_id, now_ts(), cursor))

    def record_peer_seen(self, agent_id: str, peer_id: str) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO sync_state(agent_id, peer_id, last_seen_at) VALUES (?, ?, ?) "
                "ON CONFLICT(agent_id, peer_id) DO UPDATE SET last_seen_at = excluded.last_seen_at",
                (agent_id, peer_id, now_ts()))

    # ---- links, archive, gc (used by the MCP tools and POST /gc) ----------------------------------

    def add_link(self, source_id: str, target_id: str, relation: str = "related_to") -> dict:
        with self.transaction():
            now = now_ts()
            self.conn.execute(
                "INSERT OR IGNORE INTO memory_links(source_id, target_id, relation, created_at, valid_from) "
                "VALUES (?, ?, ?, ?, ?)", (source_id, target_id, relation, now, now))
        return {"source_id": source_id, "target_id": target_id, "relation": relation, "created_at": now}

    def get_links(self, id: str) -> list[dict]:
        with self._read() as rc:
            rows = rc.execute(
                "SELECT source_id, target_id, relation, created_at, valid_from, valid_until FROM memory_links "
                "WHERE source_id = ? OR target_id = ? ORDER BY created_at", (id, id)).fetchall()
        keys = ("source_id", "target_id", "relation", "created_at", "valid_from", "valid_until")
        return [{k: v for k, v in zip(keys, r, strict=True) if v is not None} for r in rows]

    def delete_link(self, source_id: str, target_id: str, relation: str | None = None) -> int:
        with self.transaction():
            if relation is None:
                cur = self.conn.execute(
                    "DELETE FROM memory_links WHERE source_id = ? AND target_id = ?", (source_id, target_id))
            else:
                cur = self.conn.execute(
                    "DELETE FROM memory_links WHERE source_id = ? AND target_id = ? AND relation = ?",
                    (source_id, target_id, relation))
            return cur.rowcount

    def archive(self, ids: list[str], reason: str = "archive") -> int:
        """Move rows into archived_memories (soft delete)."""
        n = 0
        with self.transaction():
            for id_ in ids:
                mem = self.get(id_)
                if mem is None:
                    continue
                self.conn.execute(
                    f"INSERT OR REPLACE INTO archived_memories ({_COLS}, archived_at, archive_reason) "
                    f"VALUES ({_PLACEHOLDERS}, ?, ?)", (*_mem_to_row(mem), now_ts(), reason))
                self.conn.execute("DELETE FROM memories WHERE id = ?", (id_,))
                n += 1
        return n

    def gc(self) -> int:
        """Archive then delete every expired row; returns how many."""
        with self.transaction():
            ids = [r[0] for r in self.conn.execute(
                "SELECT id FROM memories WHERE expires_at IS NOT NULL AND expires_at <= ?", (now_ts(),))]
            return self.archive(ids, reason="ttl")

    def archive_list(self, *, namespace: str | None = None, limit: int = 50, offset: int = 0) -> list[dict]:
        sql = f"SELECT {_COLS}, archived_at, archive_reason FROM archived_memories"
        params: list[Any] = []
        if namespace is not None:
            sql += " WHERE namespace = ?"
            params.append(namespace)
        sql += " ORDER BY archived_at DESC LIMIT ? OFFSET ?"
        with self._read() as rc:
            rows = rc.execute(sql, (*params, int(limit), int(offset))).fetchall()
        out = []
        for r in rows:
            mem = _row_to_mem(r[: len(COLUMNS)])
            mem["archived_at"], mem["archive_reason"] = r[len(COLUMNS)], r[len(COLUMNS) + 1]
            out.append(mem)
        return out

    def archive_restore(self, id: str) -> dict | None:
        """Move an archived row back (expiry cleared so it is visible again); None if not archived."""
        with self.transaction():
            row = self.conn.execute(f"SELECT {_COLS} FROM archived_memories WHERE id = ?", (id,)).fetchone()
            if row is None:
                return None
            mem = _row_to_mem(row)
            mem.pop("expires_at", None)
            mem["updated_at"] = now_ts()
            self.conn.execute("DELETE FROM archived_memories WHERE id = ?", (id,))
            self._store_locked(mem, "upsert")
            return mem

    def archive_purge(self, *, older_than: str | None = None) -> int:
        with self.transaction():
            if older_than is None:
                cur = self.conn.execute("DELETE FROM archived_memories")
            else:
                cur = self.conn.execute("DELETE FROM archived_memories WHERE archived_at < ?", (older_than,))
            return cur.rowcount

    def archive_stats(self) -> dict:
        with self._read() as rc:
            total = rc.execute("SELECT COUNT(*) FROM archived_memories").fetchone()[0]
            by_ns = rc.execute(
                "SELECT namespace, COUNT(*) n FROM archived_memories GROUP BY namespace ORDER BY n DESC").fetchall()
        return {"archived_total": total, "by_namespace": [{"namespace": a, "count": b} for a, b in by_ns]}


def _split_sql(script: str) -> list[str]:
    """Split the schema into statements, keeping trigger bodies (which contain ';') whole."""
    out: list[str] = []
    buf: list[str] = []
    in_trigger = False
    for line in script.strip().splitlines():
        buf.append(line)
        s = line.strip()
        if s.startswith("CREATE TRIGGER"):
            in_trigger = True
        if (in_trigger and s == "END;") or (not in_trigger and s.endswith(";")):
            out.append("\n".join(buf).rstrip(";"))
            buf = []
            in_trigger = False
    return out
