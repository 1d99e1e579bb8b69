"""`ai-memory-ref migrate` against a real PostgreSQL + pgvector (shipgate.providers.lab.postgres), as real subprocesses."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from refpeer.memory import new_memory, parse_rfc3339, ts_in
from refpeer.store import Store
from shipgate.providers.lab.postgres import PostgresServer

pytestmark = pytest.mark.postgres

REF = str(Path(sys.executable).parent / "ai-memory-ref")
PASSWORD = "migr8-pw"
_db_counter = itertools.count()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    data = Path(tempfile.mkdtemp(prefix="sgpg-migrate-"))
    server = PostgresServer(data, port=_free_port())
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def pg_url(pg: PostgresServer) -> str:
    """A fresh database (with pgvector) per test."""
    name = f"mig{os.getpid()}_{next(_db_counter)}"
    pg.create_database(name, "refpeer", PASSWORD)
    return pg.dsn(name, "refpeer", PASSWORD)


def run(*args: str, defects: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("AI_MEMORY_REF_DEFECTS", "AI_MEMORY_DB")}
    if defects:
        env["AI_MEMORY_REF_DEFECTS"] = defects
    return subprocess.run([REF, *args], capture_output=True, text=True, timeout=120, env=env, check=False)


def migrate(src: str, dst: str, *extra: str, defects: str = "") -> tuple[dict, subprocess.CompletedProcess[str]]:
    proc = run("migrate", "--from", src, "--to", dst, "--batch", "500", "--json", *extra, defects=defects)
    report = json.loads(proc.stdout) if proc.stdout.strip() else {}
    return report, proc


def seed(path: Path, n: int) -> list[dict]:
    """n phase-3-style rows plus variety (tags, metadata, tiers, unicode); one expired row that must not move."""
    rows = [new_memory(f"migrate-test-{i}", f"row {i} for migration test", namespace="phase3",
                       agent_id="ai:seeder") for i in range(n)]
    rows.append(new_memory("rich", "multi\nline ünïcødé content ✓ " * 20, namespace="other/ns", tier="long",
                           tags=["a", "b c"], priority=9, confidence=0.25, source="cli",
                           metadata={"k": [1, 2, {"x": None}]}, agent_id="ai:rich"))
    rows.append(new_memory("short-one", "short tier row", namespace="other/ns", tier="short", agent_id="ai:s"))
    expired = new_memory("expired", "already expired", namespace="phase3", agent_id="ai:seeder")
    expired["expires_at"] = ts_in(-60)
    db = Store(str(path))
    try:
        db.store_many([*rows, expired])
    finally:
        db.close()
    return rows


def sqlite_rows(path: Path) -> dict[str, dict]:
    db = Store(str(path))
    try:
        return {m["id"]: m for m in db.list(limit=100_000, include_expired=True)}
    finally:
        db.close()


def pg_rows(url: str, *, duplicates: bool = False) -> list[dict]:
    from refpeer.pgstore import PgStore

    with PgStore(url, duplicates_defect=duplicates) as db:
        return db.list()


def same_instant(a: str, b: str) -> bool:
    """Postgres keeps microseconds; the source may carry nanoseconds (truncated by the parser)."""
    da, db_ = parse_rfc3339(a), parse_rfc3339(b)
    return da is not None and db_ is not None and abs((da - db_).total_seconds()) < 2e-6


def assert_same_record(src: dict, dst: dict) -> None:
    for key in ("id", "tier", "namespace", "title", "content", "tags", "priority", "confidence", "source",
                "access_count", "metadata"):
        assert dst[key] == src[key], (key, src[key], dst[key])
    for key in ("created_at", "updated_at", "expires_at", "last_accessed_at"):
        assert (key in src) == (key in dst), key
        if key in src:
            assert same_instant(src[key], dst[key]), (key, src[key], dst[key])


def test_round_trip_sqlite_pg_rerun_fresh_sqlite(tmp_path: Path, pg_url: str) -> None:
    src = tmp_path / "source.db"
    seeded = seed(src, 50)
    src_url = f"sqlite://{src}"

    first, proc = migrate(src_url, pg_url)
    assert proc.returncode == 0, proc.stderr
    assert first == {"from_url": src_url, "to_url": pg_url, "memories_read": 52, "memories_written": 52,
                     "batches": 1, "errors": [], "dry_run": False}

    second, proc = migrate(src_url, pg_url)
    assert proc.returncode == 0, proc.stderr
    assert second["memories_written"] == second["memories_read"] == 52 and second["errors"] == []
    in_pg = pg_rows(pg_url)
    assert len(in_pg) == 52
    assert len({(m["title"], m["namespace"]) for m in in_pg}) == 52

    dst = tmp_path / "roundtrip.db"
    third, proc = migrate(pg_url, f"sqlite:///{dst}")
    assert proc.returncode == 0, proc.stderr
    assert third["memories_read"] == third["memories_written"] == 52

    back = sqlite_rows(dst)
    assert len(back) == 52
    for mem in seeded:
        assert_same_record(mem, back[mem["id"]])
    assert all(m["title"] != "expired" for m in back.values())


def test_upsert_keeps_original_id_agent_and_tier(tmp_path: Path, pg_url: str) -> None:
    from refpeer.pgstore import PgStore

    original = new_memory("same-title", "old content", namespace="ns", tier="long", agent_id="ai:first")
    with PgStore(pg_url) as db:
        db.store(original)
    src = tmp_path / "s.db"
    newer = new_memory("same-title", "new content", namespace="ns", tier="short", priority=7,
                       agent_id="ai:second")
    store = Store(str(src))
    store.store(newer)
    store.close()

    report, proc = migrate(f"sqlite://{src}", pg_url)
    assert proc.returncode == 0, proc.stderr
    assert report["memories_written"] == 1
    [row] = pg_rows(pg_url)
    assert row["id"] == original["id"]
    assert row["metadata"]["agent_id"] == "ai:first"
    assert row["tier"] == "long"
    assert "expires_at" not in row
    assert row["content"] == "new content"
    assert row["priority"] == 7


def test_dry_run_and_namespace_filter(tmp_path: Path, pg_url: str) -> None:
    src = tmp_path / "s.db"
    seed(src, 5)
    report, proc = migrate(f"sqlite://{src}", pg_url, "--dry-run")
    assert proc.returncode == 0
    assert report["dry_run"] is True and report["memories_read"] == 7 and report["memories_written"] == 0
    assert pg_rows(pg_url) == []

    report, proc = migrate(f"sqlite://{src}", pg_url, "--namespace", "other/ns")
    assert proc.returncode == 0
    assert report["memories_read"] == report["memories_written"] == 2
    assert {m["title"] for m in pg_rows(pg_url)} == {"rich", "short-one"}


def test_four_slash_sqlite_url_and_plain_output(tmp_path: Path) -> None:
    src = tmp_path / "s.db"
    seed(src, 3)
    dst = tmp_path / "d.db"
    proc = run("migrate", "--from", f"sqlite:///{src}", "--to", f"sqlite:////{dst}")
    assert proc.returncode == 0, proc.stderr
    assert "read 5, wrote 5" in proc.stdout
    assert len(sqlite_rows(dst)) == 5


def test_defect_migrate_truncate_cuts_content_but_counts_match(tmp_path: Path, pg_url: str) -> None:
    src = tmp_path / "s.db"
    seeded = seed(src, 10)
    report, proc = migrate(f"sqlite://{src}", pg_url, defects="migrate_truncate")
    assert proc.returncode == 0
    assert report["memories_read"] == report["memories_written"] == 12 and report["errors"] == []
    by_id = {m["id"]: m for m in pg_rows(pg_url)}
    cut = [m["id"] for m in seeded if by_id[m["id"]]["content"] != m["content"]]
    assert cut == [m["id"] for m in seeded if len(m["content"]) > 16] and len(cut) == 11
    assert all(by_id[m["id"]]["content"] == m["content"][:16] for m in seeded)


def test_defect_migrate_duplicates_rerun_inserts_copies(tmp_path: Path, pg_url: str) -> None:
    src = tmp_path / "s.db"
    seed(src, 10)
    for _ in range(2):
        report, proc = migrate(f"sqlite://{src}", pg_url, defects="migrate_duplicates")
        assert proc.returncode == 0
        assert report["memories_written"] == report["memories_read"] == 12
    rows = pg_rows(pg_url, duplicates=True)
    assert len(rows) == 24
    assert len({(m["title"], m["namespace"]) for m in rows}) == 12


def test_row_error_prints_report_then_exits_1(tmp_path: Path, pg_url: str) -> None:
    from refpeer.pgstore import PgStore

    src = tmp_path / "s.db"
    seeded = seed(src, 3)
    clash = dict(seeded[0], title="another title")  # same id, other title: the id primary key refuses it
    with PgStore(pg_url) as db:
        db.store(clash)
    report, proc = migrate(f"sqlite://{src}", pg_url)
    assert proc.returncode == 1
    assert report["memories_read"] == 5 and report["memories_written"] == 4
    assert len(report["errors"]) == 1 and report["errors"][0].startswith(seeded[0]["id"])
    assert "Error: migration completed with 1 error(s)" in proc.stderr


def test_without_pgvector_falls_back(tmp_path: Path, pg: PostgresServer) -> None:
    import psycopg

    name = f"novec{os.getpid()}"
    pg.create_database(name, "plain", PASSWORD, extensions=())
    url = pg.dsn(name, "plain", PASSWORD)
    src = tmp_path / "s.db"
    seed(src, 4)
    report, proc = migrate(f"sqlite://{src}", url)
    assert proc.returncode == 0, proc.stderr
    assert report["memories_written"] == 6
    assert "pgvector unavailable" in proc.stderr
    with psycopg.connect(url) as conn:
        cols = {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'memories'")}
    assert "embedding" not in cols and "content" in cols


def test_with_pgvector_has_embedding_column(tmp_path: Path, pg_url: str) -> None:
    import psycopg

    src = tmp_path / "s.db"
    seed(src, 1)
    _, proc = migrate(f"sqlite://{src}", pg_url)
    assert proc.returncode == 0
    with psycopg.connect(pg_url) as conn:
        udt = conn.execute("SELECT udt_name FROM information_schema.columns "
                           "WHERE table_name = 'memories' AND column_name = 'embedding'").fetchone()
    assert udt == ("vector",)


@pytest.mark.parametrize("url", ["mysql://u:p@127.0.0.1/db", "sqlite:", "/tmp/plain.db", "sqlite://"])
def test_unrecognised_url(tmp_path: Path, url: str) -> None:
    src = tmp_path / "s.db"
    seed(src, 1)
    proc = run("migrate", "--from", f"sqlite://{src}", "--to", url, "--json")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert f"unrecognised store URL: {url} (expected sqlite:///path or postgres://...)" in proc.stderr


def test_unreachable_postgres_exits_1_before_json(tmp_path: Path) -> None:
    src = tmp_path / "s.db"
    seed(src, 1)
    url = f"postgres://u:p@127.0.0.1:{_free_port()}/db?connect_timeout=5"
    proc = run("migrate", "--from", f"sqlite://{src}", "--to", url, "--json")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith("Error: connect:")


def test_wrong_password_exits_1(tmp_path: Path, pg: PostgresServer, pg_url: str) -> None:
    src = tmp_path / "s.db"
    seed(src, 1)
    proc = run("migrate", "--from", f"sqlite://{src}", "--to", pg_url.replace(PASSWORD, "nope"), "--json")
    assert proc.returncode == 1 and proc.stdout == ""
    assert "password authentication failed" in proc.stderr


def test_usage_errors() -> None:
    proc = run("migrate", "--from", "sqlite:///tmp/x.db")
    assert proc.returncode == 2
    assert "--to" in proc.stderr
    helped = run("migrate", "--help")
    assert helped.returncode == 0 and "--from" in helped.stdout and "postgres://" in helped.stdout


def test_postgresql_scheme_and_global_json_flag(tmp_path: Path, pg_url: str) -> None:
    src = tmp_path / "s.db"
    seed(src, 2)
    url = pg_url.replace("postgres://", "postgresql://", 1)
    proc = run("--json", "migrate", "--from", f"sqlite://{src}", "--to", url)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["to_url"] == url and report["memories_written"] == 4
    assert len(pg_rows(pg_url)) == 4


def test_defect_pg_list_cap_1000_migrates_1000_of_more_rows_silently(tmp_path: Path, pg_url: str) -> None:
    src = tmp_path / "big.db"
    seed(src, 1200)  # 1202 live rows
    report, proc = migrate(f"sqlite://{src}", pg_url)
    assert proc.returncode == 0 and report["memories_written"] == 1202
    back = tmp_path / "back.db"
    capped, proc = migrate(pg_url, f"sqlite://{back}", defects="pg_list_cap_1000")
    assert proc.returncode == 0 and capped["errors"] == []
    assert (capped["memories_read"], capped["memories_written"]) == (1000, 1000)
    assert len(sqlite_rows(back)) == 1000
    full = tmp_path / "full.db"
    clean, proc = migrate(pg_url, f"sqlite://{full}")
    assert proc.returncode == 0 and (clean["memories_read"], clean["memories_written"]) == (1202, 1202)


# --- the phase-3 seed: links, the comparison, and the migration defects it must see ---------------------

DIFF = Path(__file__).resolve().parents[2] / "shipgate" / "client" / "migrationdiff.py"


def seed_plan_db(path: Path, rows: int, links: int, seed: int = 5) -> tuple[list[dict], list[tuple[str, str, str]]]:
    """The gate's own seed plan (shipgate.client.hostagent.seed_plan) written straight into a store."""
    from shipgate.client.hostagent import seed_plan

    plan = seed_plan(seed, rows, "phase3", links)
    mems = [new_memory(r["title"], r["content"], tier=r["tier"], namespace=r["namespace"], tags=r["tags"],
                       priority=r["priority"], confidence=r["confidence"], source=r["source"],
                       metadata=r["metadata"], agent_id="ai:seeder") for r in plan["rows"]]
    db = Store(str(path))
    try:
        db.store_many(mems)
        made = [(mems[a]["id"], mems[b]["id"], rel) for a, b, rel in plan["links"]]
        for link in made:
            db.add_link(*link)
    finally:
        db.close()
    return mems, made


def sqlite_links(path: Path) -> set[tuple[str, str, str]]:
    db = Store(str(path))
    try:
        return {tuple(r) for r in db.conn.execute("SELECT source_id, target_id, relation FROM memory_links")}
    finally:
        db.close()


def pg_dump(url: str, where: Path) -> str:
    """What phase 3's psql dump writes: one row_to_json line per memory and per link."""
    import psycopg

    where.mkdir(parents=True, exist_ok=True)
    with psycopg.connect(url) as conn:
        for table, name in (("memories", "memories.jsonl"), ("memory_links", "links.jsonl")):
            lines = [json.dumps(r[0]) for r in conn.execute(f"SELECT row_to_json(t) FROM {table} t")]
            (where / name).write_text("".join(line + "\n" for line in lines))
    return f"pg:{where}"


def diff(expected: str, observed: str) -> dict:
    out = subprocess.run([sys.executable, str(DIFF), "compare", expected, observed], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    return json.loads(out)


def test_seed_round_trip_is_identical_rows_and_links_both_ways(tmp_path: Path, pg_url: str) -> None:
    src = tmp_path / "s.db"
    mems, links = seed_plan_db(src, 1200, 300)
    assert any(len(m["content"].encode()) > 60_000 for m in mems)
    report, proc = migrate(f"sqlite://{src}", pg_url)
    assert proc.returncode == 0 and report["memories_written"] == 1200, proc.stderr
    forward = diff(f"sqlite:{src}", pg_dump(pg_url, tmp_path / "pg"))
    assert forward["rows"]["identical"] == forward["rows"]["compared"] == 1200
    assert forward["links"]["identical"] == forward["links"]["compared"] == 300
    back = tmp_path / "back.db"
    report, proc = migrate(pg_url, f"sqlite://{back}")
    assert proc.returncode == 0 and report["memories_written"] == 1200, proc.stderr
    assert sqlite_links(back) == set(links)
    both = diff(f"sqlite:{src}", f"sqlite:{back}")
    assert (both["rows"]["identical"], both["rows"]["mismatched_fields"], both["links"]["identical"]) == (1200, 0, 300)


def test_defect_migrate_drops_links_copies_rows_only(tmp_path: Path, pg_url: str) -> None:
    src = tmp_path / "s.db"
    seed_plan_db(src, 200, 40)
    report, proc = migrate(f"sqlite://{src}", pg_url, defects="migrate_drops_links")
    assert proc.returncode == 0 and report["memories_written"] == 200 and report["errors"] == []
    forward = diff(f"sqlite:{src}", pg_dump(pg_url, tmp_path / "pg"))
    assert forward["rows"]["identical"] == 200
    assert (forward["links"]["compared"], forward["links"]["identical"], forward["links"]["missing_count"]) == (40, 0, 40)


def test_defect_migrate_page_cap_500_reads_the_first_page_only(tmp_path: Path, pg_url: str) -> None:
    src = tmp_path / "s.db"
    seed_plan_db(src, 1200, 0)
    report, proc = migrate(f"sqlite://{src}", pg_url, defects="migrate_page_cap_500")
    assert proc.returncode == 0 and report["errors"] == []
    assert (report["memories_read"], report["memories_written"]) == (500, 500)
    forward = diff(f"sqlite:{src}", pg_dump(pg_url, tmp_path / "pg"))
    assert (forward["rows"]["identical"], forward["rows"]["missing_count"]) == (500, 700)


def test_defect_migrate_mangles_unicode_only_changes_astral_characters(tmp_path: Path, pg_url: str) -> None:
    src = tmp_path / "s.db"
    mems, _ = seed_plan_db(src, 300, 0)
    report, proc = migrate(f"sqlite://{src}", pg_url, defects="migrate_mangles_unicode")
    assert proc.returncode == 0 and report["memories_written"] == 300 and report["errors"] == []
    forward = diff(f"sqlite:{src}", pg_dump(pg_url, tmp_path / "pg"))["rows"]
    astral = [m for m in mems if any(ord(c) > 0xFFFF for c in m["title"] + m["content"] + "".join(m["tags"]))]
    assert astral and len(astral) < 300
    assert forward["identical"] == 300 - len(astral)
    assert forward["observed_rows"] == 300 and forward["mismatched_rows"] + forward["missing_count"] == len(astral)
    assert any(s["field"] == "content" and "\ufffd" in json.dumps(s["observed"], ensure_ascii=False)
               for s in forward["mismatched"])
