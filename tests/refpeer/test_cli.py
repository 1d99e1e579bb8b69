"""The `ai-memory-ref` CLI against contract sections 1-2: flags, output discipline, exit codes, backup, curator."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
import uuid
from pathlib import Path

import pytest

from refpeer import cli
from refpeer.testing import run_cli


def store(db: Path, *extra: str, title: str = "t", content: str = "hello world") -> dict:
    r = run_cli(["store", "--title", title, "--content", content, *extra, "--json"], db=db)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_version_prints_ai_memory_and_semver() -> None:
    r = run_cli(["--version"])
    assert (r.returncode, r.stdout) == (0, "ai-memory 0.6.3\n")


def test_help_lists_subcommands() -> None:
    r = run_cli(["--help"])
    assert r.returncode == 0
    for name in ("serve", "store", "recall", "stats", "backup", "restore", "curator", "import", "mcp", "migrate"):
        assert name in r.stdout


def test_store_plain_and_json_output(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    r = run_cli(["store", "-T", "phase1-node-a", "-c", "functional check", "--tier", "mid", "-n", "ship-gate-phase1"],
                db=db)
    assert r.returncode == 0
    assert r.stdout.startswith("stored: ") and r.stdout.rstrip().endswith("[mid] (ns=ship-gate-phase1)")
    mem = store(db, "--namespace", "n2", "--tags", " a, ,b ", "--priority", "7", "--source", "user")
    assert mem["tags"] == ["a", "b"] and mem["priority"] == 7 and mem["source"] == "user"
    assert mem["metadata"]["agent_id"].startswith("host:") and ":pid-" in mem["metadata"]["agent_id"]


def test_json_flag_is_accepted_anywhere_and_stdout_is_one_document(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    store(db, "-n", "x")
    for argv in (["--json", "stats"], ["stats", "--json"], ["--db", str(db), "stats", "--json"],
                 ["stats", "--db", str(db), "--json"]):
        r = run_cli(argv, db=db)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["total"] == 1


def test_db_flag_beats_env_and_default_is_cwd_relative(tmp_path: Path) -> None:
    env_db, flag_db = tmp_path / "env.db", tmp_path / "flag.db"
    r = run_cli(["--db", str(flag_db), "store", "-T", "t", "-c", "c", "-n", "n"], db=env_db)
    assert r.returncode == 0 and flag_db.exists() and not env_db.exists()
    r = run_cli(["store", "-T", "t", "-c", "c", "-n", "n"], cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "ai-memory.db").exists()


def test_agent_id_flag_and_env(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    assert store(db, "--agent-id", "ai:me", "-n", "n", title="a")["metadata"]["agent_id"] == "ai:me"
    r = run_cli(["store", "-T", "b", "-c", "c", "-n", "n", "--json"], db=db, env={"AI_MEMORY_AGENT_ID": "env-agent"})
    assert json.loads(r.stdout)["metadata"]["agent_id"] == "env-agent"


def test_default_namespace_is_git_origin_repo_then_cwd_name(tmp_path: Path) -> None:
    repo = tmp_path / "work dir"
    (repo / ".git").mkdir(parents=True)
    (repo / ".git" / "config").write_text('[core]\n\tbare = false\n[remote "origin"]\n\turl = git@github.com:acme/widgets.git\n')
    (repo / "sub").mkdir()
    r = run_cli(["store", "-T", "t", "-c", "c", "--json"], db=tmp_path / "a.db", cwd=repo / "sub")
    assert json.loads(r.stdout)["namespace"] == "widgets"
    plain = tmp_path / "plainproj"
    plain.mkdir()
    r = run_cli(["store", "-T", "t", "-c", "c", "--json"], db=tmp_path / "a.db", cwd=plain)
    assert json.loads(r.stdout)["namespace"] == "plainproj"


def test_store_upserts_silently_on_title_and_namespace(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    first = store(db, "-n", "n", "--priority", "8", "--agent-id", "first", content="one")
    second = store(db, "-n", "n", "--priority", "3", "--tier", "long", "--agent-id", "second", content="two")
    assert second["id"] == first["id"] and second["content"] == "two"
    assert second["priority"] == 8 and second["tier"] == "long" and second["metadata"]["agent_id"] == "first"
    third = store(db, "-n", "n", "--tier", "short", content="three")
    assert third["tier"] == "long"
    stats = json.loads(run_cli(["stats", "--json"], db=db).stdout)
    assert stats["total"] == 1


def test_store_content_dash_reads_stdin(tmp_path: Path) -> None:
    r = run_cli(["store", "-T", "t", "-c", "-", "-n", "n", "--json"], db=tmp_path / "a.db", stdin="from stdin\n")
    assert json.loads(r.stdout)["content"] == "from stdin\n"


@pytest.mark.parametrize(("args", "message"), [
    (["--tier", "huge"], "Error: invalid tier: huge (use short, mid, long)"),
    (["--priority", "11"], "Error: priority must be between 1 and 10 (got 11)"),
    (["--namespace", "a b"], "Error: namespace cannot contain spaces (use hyphens or underscores)"),
    (["--source", "ship-gate"], "Error: invalid source 'ship-gate'"),
    (["--confidence", "2"], "Error: confidence must be between 0.0 and 1.0 (got 2)"),
    (["--expires-at", "2000-01-01T00:00:00Z"], "Error: expires_at is in the past"),
    (["--ttl-secs", "-5"], "Error: ttl_secs must be positive (got -5)"),
    (["--agent-id", "bad id"], "Error: invalid agent_id: agent_id contains invalid character ' '"),
])
def test_store_validation_failures_exit_1_with_error_on_stderr(tmp_path: Path, args: list[str], message: str) -> None:
    r = run_cli(["store", "-T", "t", "-c", "c", *args, "--json"], db=tmp_path / "a.db")
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.startswith(message)


def test_usage_errors_exit_2() -> None:
    assert run_cli(["store", "--title", "only"]).returncode == 2
    assert run_cli(["frobnicate"]).returncode == 2
    assert run_cli(["recall", "q", "--limit", "many"]).returncode == 2


def test_recall_json_or_match_limit_and_touch(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    store(db, "-n", "n", title="alpha", content="functional check on node-a")
    store(db, "-n", "n", title="beta", content="unrelated words")
    store(db, "-n", "n", title="gamma", content="another functional thing")
    r = run_cli(["recall", "functional check on host-x", "--limit", "5", "--json"], db=db)
    out = json.loads(r.stdout)
    assert set(out) == {"count", "memories", "mode", "tokens_used"}
    assert out["count"] == 2 == len(out["memories"]) and out["mode"] == "keyword"
    assert {m["title"] for m in out["memories"]} == {"alpha", "gamma"}
    assert all(isinstance(m["score"], float) for m in out["memories"])
    assert out["memories"][0]["title"] == "alpha"  # more matching tokens rank first
    one = json.loads(run_cli(["recall", "functional", "--limit", "1", "--json"], db=db).stdout)
    assert one["count"] == 1
    none = json.loads(run_cli(["recall", "zebra", "--json"], db=db).stdout)
    assert none == {"count": 0, "memories": [], "mode": "keyword", "tokens_used": 0}
    for _ in range(4):
        run_cli(["recall", "alpha", "--json"], db=db)
    got = json.loads(run_cli(["list", "-n", "n", "--json"], db=db).stdout)["memories"]
    alpha = next(m for m in got if m["title"] == "alpha")
    assert alpha["access_count"] >= 5 and alpha["tier"] == "long" and "expires_at" not in alpha
    assert "last_accessed_at" in alpha


def test_recall_excludes_expired_rows(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    store(db, "-n", "n", "--ttl-secs", "1", title="soon", content="ephemeral token")
    deadline = time.time() + 5
    while time.time() < deadline:  # poll with `list` (recall would touch the row and extend its TTL)
        if json.loads(run_cli(["list", "-n", "n", "--json"], db=db).stdout)["count"] == 0:
            break
        time.sleep(0.2)
    out = json.loads(run_cli(["recall", "ephemeral", "--json"], db=db).stdout)
    assert out["count"] == 0
    assert json.loads(run_cli(["stats", "--json"], db=db).stdout)["total"] == 1


def test_stats_and_namespaces_json(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    store(db, "-n", "a", title="1")
    store(db, "-n", "a", title="2")
    store(db, "-n", "b", "--tier", "long", title="3")
    st = json.loads(run_cli(["stats", "--json"], db=db).stdout)
    assert st["total"] == 3
    assert st["by_tier"] == [{"tier": "mid", "count": 2}, {"tier": "long", "count": 1}]
    assert st["by_namespace"] == [{"namespace": "a", "count": 2}, {"namespace": "b", "count": 1}]
    assert st["db_size_bytes"] == os.path.getsize(db)
    nss = json.loads(run_cli(["namespaces", "--json"], db=db).stdout)
    assert nss == {"namespaces": [{"namespace": "a", "count": 2}, {"namespace": "b", "count": 1}]}


def test_backup_snapshot_manifest_rotation_and_restore(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    store(db, "-n", "n", title="keep-me")
    bk = tmp_path / "bk"
    r = run_cli(["backup", "--to", str(bk), "--keep", "1", "--json"], db=db)
    assert r.returncode == 0, r.stderr
    man = json.loads(r.stdout)
    assert set(man) == {"snapshot", "sha256", "bytes", "source_db", "version", "created_at"}
    snap = bk / man["snapshot"]
    assert snap.name.startswith("ai-memory-") and snap.suffix == ".db"
    assert man["sha256"] == hashlib.sha256(snap.read_bytes()).hexdigest() and man["bytes"] == snap.stat().st_size
    assert json.loads((bk / (snap.stem + ".manifest.json")).read_text()) == man
    assert not (bk / (snap.name + "-wal")).exists()
    with sqlite3.connect(snap) as c:
        assert c.execute("SELECT title FROM memories").fetchall() == [("keep-me",)]
    again = run_cli(["backup", "--to", str(bk), "--keep", "1", "--json"], db=db)
    assert again.returncode in (0, 1)  # same second: the real program refuses a clashing name
    if again.returncode == 1:
        assert "already exists" in again.stderr
        deadline = time.time() + 3
        while again.returncode != 0 and time.time() < deadline:
            time.sleep(0.1)
            again = run_cli(["backup", "--to", str(bk), "--keep", "1", "--json"], db=db)
    assert again.returncode == 0
    assert len(list(bk.glob("ai-memory-*.db"))) == 1 and len(list(bk.glob("ai-memory-*.manifest.json"))) == 1
    store(db, "-n", "n", title="after-backup")
    latest = bk / json.loads(again.stdout)["snapshot"]
    r = run_cli(["restore", "--from", str(bk), "--json"], db=db)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["restored_from"] == str(latest) and rep["verified"] is True and Path(rep["pre_restore"]).exists()
    titles = [m["title"] for m in json.loads(run_cli(["list", "-n", "n", "--json"], db=db).stdout)["memories"]]
    assert titles == ["keep-me"]


def test_restore_refuses_a_snapshot_that_does_not_match_its_manifest(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    store(db, "-n", "n")
    bk = tmp_path / "bk"
    man = json.loads(run_cli(["backup", "--to", str(bk), "--json"], db=db).stdout)
    with open(bk / man["snapshot"], "ab") as f:
        f.write(b"tampered")
    r = run_cli(["restore", "--from", str(bk / man["snapshot"])], db=db)
    assert r.returncode == 1 and "sha256 mismatch" in r.stderr


def test_curator_reports_exactly_the_no_llm_error(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    store(db, "-n", "n", content="x" * 60)
    store(db, "-n", "_internal", title="i", content="x" * 60)
    store(db, "-n", "n", title="short", content="tiny")
    r = run_cli(["curator", "--once", "--dry-run", "--max-ops", "10", "--json"], db=db)
    assert r.returncode == 0
    rep = json.loads(r.stdout)
    assert rep["errors"] == ["no LLM client configured"] and rep["dry_run"] is True
    assert rep["memories_scanned"] == 3 and rep["memories_eligible"] == 1
    assert set(rep["autonomy"]) == {"clusters_formed", "memories_consolidated", "memories_forgotten",
                                    "priority_adjustments", "rollback_entries_written", "errors"}


def test_curator_truncation_error_at_four_times_max_ops(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    payload = {"memories": [_full(f"m{i}") for i in range(40)]}
    r = run_cli(["import", "--json"], db=db, stdin=json.dumps(payload))
    assert json.loads(r.stdout)["imported"] == 40
    rep = json.loads(run_cli(["curator", "--once", "--dry-run", "--max-ops", "10", "--json"], db=db).stdout)
    assert rep["errors"][0] == "no LLM client configured"
    assert rep["errors"][1].startswith("collect_candidates truncated at cap=40 per tier")
    assert len(rep["errors"]) == 2
    rep = json.loads(run_cli(["curator", "--once", "--dry-run", "--max-ops", "11", "--json"], db=db).stdout)
    assert rep["errors"] == ["no LLM client configured"]


def test_curator_without_mode_fails() -> None:
    r = run_cli(["curator", "--dry-run"])
    assert r.returncode == 1
    assert "curator requires --once, --daemon, --rollback <id>, or --rollback-last N" in r.stderr


def _full(title: str, ns: str = "imp") -> dict:
    ts = "2026-01-01T00:00:00.000000000+00:00"
    return {"id": str(uuid.uuid4()), "title": title, "content": f"row {title} for migration test", "namespace": ns,
            "tier": "long", "tags": [], "priority": 5, "confidence": 1.0, "source": "import", "access_count": 0,
            "created_at": ts, "updated_at": ts, "metadata": {"agent_id": "orig"}}


def test_import_1000_rows_in_one_process_and_export_round_trip(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    rows = [_full(f"migrate-test-{i}") for i in range(1000)]
    bad = dict(_full("bad"), priority=0)
    src = tmp_path / "in.json"
    src.write_text(json.dumps({"memories": [*rows, bad]}))
    r = run_cli(["import", "--file", str(src), "--json", "--agent-id", "seeder"], db=db)
    out = json.loads(r.stdout)
    assert out["imported"] == 1000 and out["restamped"] == 1000 and out["trusted_source"] is False
    assert len(out["errors"]) == 1 and "priority must be between 1 and 10" in out["errors"][0]
    exp = json.loads(run_cli(["export"], db=db).stdout)
    assert exp["count"] == 1000
    mem = next(m for m in exp["memories"] if m["id"] == rows[0]["id"])
    assert mem["metadata"] == {"agent_id": "seeder", "imported_from_agent_id": "orig"}
    r = run_cli(["import", "--trust-source", "--json"], db=tmp_path / "b.db", stdin=json.dumps(exp))
    assert json.loads(r.stdout)["imported"] == 1000
    again = json.loads(run_cli(["import", "--json"], db=tmp_path / "b.db", stdin=json.dumps(exp)).stdout)
    assert again["imported"] == 1000
    assert json.loads(run_cli(["stats", "--json"], db=tmp_path / "b.db").stdout)["total"] == 1000


def test_unknown_defect_is_a_startup_error_naming_it(tmp_path: Path) -> None:
    r = run_cli(["stats", "--json"], db=tmp_path / "a.db", env={"AI_MEMORY_REF_DEFECTS": "fanout_abort,typo_defect"})
    assert r.returncode == 1 and r.stdout == ""
    assert "typo_defect" in r.stderr and "fanout_abort" in r.stderr and "skew_cursor" in r.stderr


def test_delegated_subcommand_reports_a_missing_module(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(cli.DELEGATED, "mcp", "refpeer.no_such_module_for_test")
    with pytest.raises(SystemExit) as exc:
        cli.main(["mcp", "--profile", "full"])
    assert exc.value.code == 1
    assert "refpeer.no_such_module_for_test" in capsys.readouterr().err


def test_delegated_subcommand_gets_its_argv_and_the_db_in_the_env(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    import sys
    import types

    seen: dict = {}
    fake = types.ModuleType("refpeer_fake_migrate")
    fake.main = lambda argv: seen.update(argv=argv, db=os.environ.get("AI_MEMORY_DB")) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "refpeer_fake_migrate", fake)
    monkeypatch.setitem(cli.DELEGATED, "migrate", "refpeer_fake_migrate")
    monkeypatch.delenv("AI_MEMORY_DB", raising=False)
    assert cli.main(["--json", "--db", str(tmp_path / "x.db"), "migrate", "--from", "sqlite:///a", "--batch", "5"]) == 0
    assert seen == {"argv": ["--from", "sqlite:///a", "--batch", "5", "--json"], "db": str(tmp_path / "x.db")}


def test_update_promote_link_consolidate_exist_as_at_063(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    a, b, c = (store(db, "-n", "w", "--tags", f"t{i}", title=f"w{i}") for i in range(3))
    r = run_cli(["update", a["id"], "-c", "changed", "--tags", "x,y", "-p", "7", "--json"], db=db)
    assert r.returncode == 0, r.stderr
    upd = json.loads(r.stdout)
    assert (upd["id"], upd["content"], upd["tags"], upd["priority"]) == (a["id"], "changed", ["x", "y"], 7)
    assert run_cli(["update", str(uuid.uuid4()), "-c", "x"], db=db).returncode == 1
    r = run_cli(["promote", a["id"], "--json"], db=db)
    assert (r.returncode, json.loads(r.stdout)) == (0, {"id": a["id"], "promoted": True, "tier": "long"})
    r = run_cli(["link", a["id"], b["id"], "-r", "supersedes", "--json"], db=db)
    assert (r.returncode, json.loads(r.stdout)) == (0, {"linked": True})
    bad = run_cli(["link", a["id"], b["id"], "-r", "bogus"], db=db)
    assert bad.returncode == 1 and "invalid relation 'bogus'" in bad.stderr
    r = run_cli(["consolidate", f"{b['id']},{c['id']}", "-T", "merged", "-s", "summary", "-n", "w", "--json"], db=db)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {"consolidated", "id"} and out["consolidated"] == 2
    got = json.loads(run_cli(["get", out["id"], "--json"], db=db).stdout)
    assert (got["content"], got["tier"], sorted(got["tags"])) == ("summary", "long", ["t1", "t2"])
    assert run_cli(["get", b["id"]], db=db).returncode == 1
    assert json.loads(run_cli(["stats", "--json"], db=db).stdout)["links_count"] == 0  # b was consolidated away
