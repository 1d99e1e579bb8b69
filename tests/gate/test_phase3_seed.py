"""Phase 3's seed plan and comparison as pure functions: the shape that can see truncation, deterministic from
its seed, and a comparison that names what differs (the lab and Postgres tests run them for real)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from shipgate.client import hostagent, migrationdiff
from shipgate.run.settings import SettingsError, load_settings

CAPS = (20, 200, 500, 1000)


def test_the_default_seed_crosses_every_cap_in_total_and_in_one_namespace() -> None:
    s = load_settings().phase3
    plan = hostagent.seed_plan(11, s.rows, s.namespace, s.links)
    per_ns: dict[str, int] = {}
    for r in plan["rows"]:
        per_ns[r["namespace"]] = per_ns.get(r["namespace"], 0) + 1
    assert s.rows >= 2 * max(CAPS) and per_ns[s.namespace] > max(CAPS) and s.links > max(CAPS)
    assert len(plan["links"]) == s.links and len(set(plan["links"])) == s.links
    assert {r["tier"] for r in plan["rows"]} == {"short", "mid", "long"}
    assert len({r["priority"] for r in plan["rows"]}) == 10 and len(per_ns) == 4
    texts = [r["content"] for r in plan["rows"]]
    assert max(len(t.encode()) for t in texts) == 65_000  # under the product's 65,536-byte cap
    for probe in ("\U0001f642", "\u6f22", "e\u0301", '"', "\n", "\\"):
        assert any(probe in t for t in texts), probe
    assert len({(r["namespace"], r["title"]) for r in plan["rows"]}) == s.rows


def test_the_plan_is_a_pure_function_of_its_seed() -> None:
    assert hostagent.seed_plan(3, 400, "p", 100) == hostagent.seed_plan(3, 400, "p", 100)
    assert hostagent.seed_plan(3, 400, "p", 100) != hostagent.seed_plan(4, 400, "p", 100)


def test_too_many_links_for_the_rows_is_refused_at_load() -> None:
    with pytest.raises(SettingsError, match="links need more rows"):
        load_settings(overrides={"phase3": {"rows": 16, "links": 50}})


def test_bulk_chunks_respect_rows_and_bytes() -> None:
    rows = [{"content": "x" * 1000}] * 30
    chunks = hostagent._chunks(rows, 8, 5000)
    assert sum(map(len, chunks)) == 30 and all(len(c) <= 8 for c in chunks)
    assert all(len(json.dumps(c)) <= 5000 + len(c) for c in chunks)


def _db(path: Path, rows: list[tuple[str, str, str]], links: list[tuple[str, str, str]]) -> str:
    db = sqlite3.connect(path)
    db.execute("create table memories (id, title, namespace, tier, content, tags, priority, confidence, source, "
               "access_count, metadata, created_at, updated_at, expires_at, last_accessed_at)")
    db.execute("create table memory_links (source_id, target_id, relation)")
    db.executemany("insert into memories values (?, ?, 'ns', 'mid', ?, '[\"b\",\"a\"]', 5, 1.0, 'api', 0, "
                   "'{\"k\": 1}', ?, ?, null, null)", [(i, i, c, t, t) for i, c, t in rows])
    db.executemany("insert into memory_links values (?, ?, ?)", links)
    db.commit()
    db.close()
    return f"sqlite:{path}"


def test_comparison_counts_rows_fields_and_links_and_ignores_sub_microsecond_time(tmp_path: Path) -> None:
    ns, us = "2026-12-01T19:50:17.128224515+00:00", "2026-12-01T19:50:17.128224+00:00"
    long = "\u6f22" * 5000
    a = _db(tmp_path / "a.db", [("1", "one", ns), ("2", long, ns), ("3", "three", ns)],
            [("1", "2", "related_to"), ("2", "3", "supersedes")])
    b = _db(tmp_path / "b.db", [("1", "one", us), ("2", long[:4000] + "x", us), ("4", "four", us)],
            [("1", "2", "related_to"), ("3", "1", "related_to")])
    (er, el), (orows, ol) = migrationdiff.load(a), migrationdiff.load(b)
    rows, links = migrationdiff.compare_rows(er, orows), migrationdiff.compare_links(el, ol)
    assert (rows["compared"], rows["identical"], rows["missing"], rows["unexpected"]) == (3, 1, ["3"], ["4"])
    [diff] = rows["mismatched"]
    assert diff["field"] == "content" and diff["expected"]["first_difference_at"] == 4000
    assert diff["expected"]["bytes"] == 15_000 and diff["observed"]["around"].endswith("x")
    assert (links["identical"], links["missing_count"], links["unexpected_count"]) == (1, 1, 1)
    shape = migrationdiff.shape(er, el)
    assert (shape["rows"], shape["links"], shape["max_content_bytes"], shape["non_ascii"]) == (3, 2, 15_000, 1)
