"""Store semantics the CLI, HTTP server, MCP server and migrator all rely on (in-process, real SQLite files)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from refpeer import defects
from refpeer.errors import Conflict, RefPeerError
from refpeer.memory import new_memory, now_ts, parse_rfc3339, ts_in
from refpeer.store import Store


@pytest.fixture(params=[False, True], ids=["plain", "group-commit"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    s = Store(tmp_path / "s.db", synchronous="FULL", group_commit=request.param)
    request.addfinalizer(s.close)
    return s


def test_now_ts_is_chrono_style_and_strictly_increasing() -> None:
    stamps = [now_ts() for _ in range(1000)]
    assert stamps == sorted(stamps) and len(set(stamps)) == 1000
    assert all(len(t) == 35 and t.endswith("+00:00") and t[19] == "." for t in stamps[:5])
    assert parse_rfc3339(stamps[0]) is not None
    assert ts_in(60, "2026-01-01T00:00:00.123456789+00:00") == "2026-01-01T00:01:00.123456789+00:00"
    assert parse_rfc3339("2026-01-01T00:00:00Z") and parse_rfc3339("2026-01-01t00:00:00+05:30")
    assert parse_rfc3339("2026-01-01") is None and parse_rfc3339("2026-13-01T00:00:00Z") is None


def test_store_returns_wire_shape_and_created_flag(store: Store) -> None:
    mem = new_memory("t", "c", namespace="n", agent_id="a")
    stored, created = store.store(mem)
    assert created and stored == mem and store.get(mem["id"]) == mem
    assert "last_accessed_at" not in stored
    again, created = store.store(new_memory("t", "c2", namespace="n", agent_id="b"))
    assert not created and again["id"] == mem["id"] and again["metadata"]["agent_id"] == "a"
    with pytest.raises(Conflict) as exc:
        store.store(new_memory("t", "c3", namespace="n"), on_conflict="error")
    assert exc.value.existing_id == mem["id"]
    assert store.get(mem["id"])["content"] == "c2"  # the failed write left nothing behind


def test_insert_if_newer_classifies_and_merges(store: Store) -> None:
    base = new_memory("k", "v1", namespace="n", agent_id="origin")
    assert store.insert_if_newer(base) == "inserted"
    assert store.insert_if_newer(base) == "noop"
    newer = dict(base, id="other-id", content="v2", updated_at=ts_in(1, base["updated_at"]),
                 metadata={"agent_id": "x", "k": 1})
    assert store.insert_if_newer(newer) == "updated"
    got = store.get(base["id"])
    assert got["content"] == "v2" and got["metadata"] == {"agent_id": "origin", "k": 1}
    assert store.get("other-id") is None
    older_rename = new_memory("renamed", "c", namespace="n")
    older_rename["id"] = base["id"]
    assert store.insert_if_newer(older_rename) == "noop"
    rename = dict(older_rename, content="v3", updated_at=ts_in(2, base["updated_at"]))
    assert store.insert_if_newer(rename) == "updated"
    got = store.get(base["id"])
    assert (got["title"], got["content"], got["metadata"]["agent_id"]) == ("renamed", "v3", "origin")
    assert store.get_by_title("k", "n") is None


def test_defect_update_title_not_replicated_skips_a_rename(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    base = new_memory("k", "v1", namespace="n")
    store.insert_if_newer(base)
    monkeypatch.setenv("AI_MEMORY_REF_DEFECTS", "update_title_not_replicated")
    defects.reset()
    try:
        rename = dict(base, title="renamed", content="v2", updated_at=ts_in(1, base["updated_at"]))
        assert store.insert_if_newer(rename) == "skipped"
        assert store.get(base["id"])["title"] == "k"
    finally:
        monkeypatch.delenv("AI_MEMORY_REF_DEFECTS")
        defects.reset()


def test_recall_touch_extends_promotes_and_bumps_priority(store: Store) -> None:
    mem = new_memory("needle", "haystack", namespace="n", tier="short")
    store.store(mem)
    exp0 = store.get(mem["id"])["expires_at"]
    store.recall("needle")
    got = store.get(mem["id"])
    assert got["access_count"] == 1 and got["expires_at"] == exp0  # +1 h never shortens a 6 h TTL
    mid = new_memory("pin", "x", namespace="n")
    store.store(mid)
    for _ in range(10):
        store.recall("pin")
    got = store.get(mid["id"])
    assert got["tier"] == "long" and "expires_at" not in got and got["priority"] == 6 and got["access_count"] == 10
    assert store.recall("pin", touch=False)[0]["access_count"] == 10


def test_recall_or_search_and(store: Store) -> None:
    store.store(new_memory("a", "red apple", namespace="n"))
    store.store(new_memory("b", "green apple", namespace="n"))
    store.store(new_memory("c", "red car", namespace="m"))
    assert {m["title"] for m in store.recall("red apple", touch=False)} == {"a", "b", "c"}
    assert {m["title"] for m in store.search("red apple")} == {"a"}
    assert {m["title"] for m in store.recall("red", namespace="m", touch=False)} == {"c"}
    assert store.recall("AND OR NOT") == [] and store.recall('"') == []


def test_gc_archives_expired_rows_and_restore_brings_them_back(store: Store) -> None:
    old = new_memory("old", "c", namespace="n")
    old["expires_at"] = ts_in(-5)
    store.insert_if_newer(old)
    assert store.count() == 1 and store.list() == []
    assert store.gc() == 1 and store.count() == 0
    assert [m["id"] for m in store.archive_list()] == [old["id"]]
    assert store.archive_stats()["archived_total"] == 1
    restored = store.archive_restore(old["id"])
    assert restored is not None and store.list()[0]["id"] == old["id"]
    assert store.archive_purge() == 0


def test_links_and_stats(store: Store) -> None:
    a, b = new_memory("a", "c", namespace="n"), new_memory("b", "c", namespace="n")
    store.store(a)
    store.store(b)
    store.add_link(a["id"], b["id"], "supersedes")
    assert store.get_links(b["id"])[0]["relation"] == "supersedes"
    assert store.stats()["links_count"] == 1
    store.delete(a["id"])
    assert store.stats()["links_count"] == 0


def test_sync_cursor_only_moves_forward(store: Store) -> None:
    assert store.sync_cursor("me", "peer-0") is None
    store.set_sync_cursor("me", "peer-0", "2026-01-02T00:00:00.000000000+00:00")
    store.set_sync_cursor("me", "peer-0", "2026-01-01T00:00:00.000000000+00:00")
    assert store.sync_cursor("me", "peer-0") == "2026-01-02T00:00:00.000000000+00:00"


def test_concurrent_writers_all_commit_and_conflicts_stay_isolated(tmp_path: Path) -> None:
    s = Store(tmp_path / "g.db", synchronous="FULL", group_commit=True)
    errors: list[BaseException] = []
    conflicts = []

    def writer(k: int) -> None:
        try:
            for i in range(50):
                s.store(new_memory(f"w{k}-{i}", "c", namespace="g"))
                try:
                    s.store(new_memory("shared", f"from {k}", namespace="g"), on_conflict="error")
                except Conflict:
                    conflicts.append(k)
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s.close()
    assert errors == []
    assert len(conflicts) == 16 * 50 - 1
    with sqlite3.connect(tmp_path / "g.db") as c:  # what is on disk after close, from another connection
        assert c.execute("SELECT COUNT(*) FROM memories").fetchone()[0] == 16 * 50 + 1


def test_a_write_returns_only_after_it_is_visible_to_another_connection(tmp_path: Path) -> None:
    s = Store(tmp_path / "v.db", synchronous="FULL", group_commit=True)
    try:
        other = sqlite3.connect(tmp_path / "v.db")
        for i in range(20):
            mem = new_memory(f"v{i}", "c", namespace="v")
            s.store(mem)
            assert other.execute("SELECT 1 FROM memories WHERE id = ?", (mem["id"],)).fetchone() == (1,)
        other.close()
    finally:
        s.close()


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RefPeerError, match="database directory does not exist"):
        Store(tmp_path / "nope" / "x.db")


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(RefPeerError, match="cannot"):
        Store(bad)
