"""`ai-memory-ref`: the command line of the reference peer (contract sections 1-2).

Imports are deliberately lazy: a cold `ai-memory-ref store` must finish in ~150 ms, so only argparse and
what the chosen subcommand needs are loaded. Output discipline: with `--json` stdout carries exactly one
JSON document; failures print `Error: <message>` on stderr and exit 1; usage errors exit 2 (argparse).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

DELEGATED = {"mcp": "refpeer.mcp", "migrate": "refpeer.migrate"}
_GLOBAL_VALUE_FLAGS = ("--db", "--agent-id", "--db-passphrase-file")


class CliError(Exception):
    """A subcommand failure: printed as `Error: <message>`, exit 1."""


def _version() -> str:
    from refpeer import VERSION

    return VERSION


def _global_parent() -> argparse.ArgumentParser:
    """Global flags, accepted before or after the subcommand (defaults suppressed on subparsers)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--db", default=argparse.SUPPRESS, help="SQLite file (env AI_MEMORY_DB; default ai-memory.db)")
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    p.add_argument("--agent-id", default=argparse.SUPPRESS, help="stamped into metadata.agent_id on CLI writes")
    p.add_argument("--db-passphrase-file", default=argparse.SUPPRESS, help="accepted for compatibility (no sqlcipher)")
    return p


def build_parser() -> argparse.ArgumentParser:
    g = _global_parent()
    p = argparse.ArgumentParser(
        prog="ai-memory", parents=[g],
        description="Reference peer for ai-memory: the CLI, HTTP API, federation and MCP surface the ship-gate "
                    "exercises. Seeded defects: AI_MEMORY_REF_DEFECTS=name,name (see refpeer/README.md).")
    p.add_argument("--version", action="store_true", help="print `ai-memory <version>` and exit")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")

    s = sub.add_parser("serve", parents=[g], help="run the HTTP API (and federation when W>=1 and peers are set)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=9077)
    s.add_argument("--quorum-writes", type=int, default=0, metavar="W", help="0 disables federation")
    s.add_argument("--quorum-peers", action="append", default=[], metavar="URL,URL",
                   help="peer base URLs, comma-separated (repeatable)")
    s.add_argument("--quorum-timeout-ms", type=int, default=2000)
    s.add_argument("--catchup-interval-secs", type=int, default=30,
                   help="pull catch-up period in whole seconds (as 0.6.3's u64); 0 disables")
    s.add_argument("--shutdown-grace-secs", type=float, default=30.0)
    for flag in ("--quorum-client-cert", "--quorum-client-key", "--quorum-ca-cert", "--tls-cert", "--tls-key",
                 "--mtls-allowlist"):
        s.add_argument(flag, help="not supported by the reference peer (TLS is out of scope)")

    st = sub.add_parser("store", parents=[g], help="store a memory (upserts on title+namespace)")
    st.add_argument("-T", "--title", required=True)
    st.add_argument("-c", "--content", required=True, help="`-` reads stdin")
    st.add_argument("-t", "--tier", default="mid")
    st.add_argument("-n", "--namespace")
    st.add_argument("--tags", default="")
    st.add_argument("-p", "--priority", type=int, default=5)
    st.add_argument("--confidence", type=float, default=1.0)
    st.add_argument("-S", "--source", default="cli")
    st.add_argument("--expires-at")
    st.add_argument("--ttl-secs", type=int)
    st.add_argument("--scope")

    r = sub.add_parser("recall", parents=[g], help="ranked any-token recall (touches returned rows)")
    r.add_argument("query")
    r.add_argument("--limit", type=int, default=10)
    r.add_argument("-n", "--namespace")
    r.add_argument("--tags")
    r.add_argument("--since")
    r.add_argument("--until")
    r.add_argument("-T", "--tier", choices=("keyword", "semantic", "smart", "autonomous"), default="semantic")
    r.add_argument("--as-agent")
    r.add_argument("--budget-tokens", type=int)

    se = sub.add_parser("search", parents=[g], help="all-token keyword search")
    se.add_argument("query")
    se.add_argument("--limit", type=int, default=20)
    se.add_argument("-n", "--namespace")

    ls = sub.add_parser("list", parents=[g], help="list memories (priority desc, updated desc)")
    ls.add_argument("-n", "--namespace")
    ls.add_argument("-t", "--tier")
    ls.add_argument("--limit", type=int, default=20)
    ls.add_argument("--offset", type=int, default=0)

    ge = sub.add_parser("get", parents=[g], help="get one memory by id")
    ge.add_argument("id")
    de = sub.add_parser("delete", parents=[g], help="delete one memory by id")
    de.add_argument("id")

    up = sub.add_parser("update", parents=[g], help="update an existing memory by id")
    up.add_argument("id")
    up.add_argument("-T", "--title")
    up.add_argument("-c", "--content")
    up.add_argument("-t", "--tier")
    up.add_argument("-n", "--namespace")
    up.add_argument("--tags")
    up.add_argument("-p", "--priority", type=int)
    up.add_argument("--confidence", type=float)
    up.add_argument("--expires-at", help="RFC3339, or an empty string to clear")
    pr = sub.add_parser("promote", parents=[g], help="promote a memory to long-term")
    pr.add_argument("id")
    lk = sub.add_parser("link", parents=[g], help="link two memories")
    lk.add_argument("source_id")
    lk.add_argument("target_id")
    lk.add_argument("-r", "--relation", default="related_to")
    co = sub.add_parser("consolidate", parents=[g], help="consolidate several memories into one")
    co.add_argument("ids", help="comma-separated memory ids")
    co.add_argument("-T", "--title", required=True)
    co.add_argument("-s", "--summary", required=True)
    co.add_argument("-n", "--namespace")

    sub.add_parser("stats", parents=[g], help="store statistics")
    sub.add_parser("namespaces", parents=[g], help="namespaces with live-row counts")
    sub.add_parser("gc", parents=[g], help="archive and delete expired rows")

    b = sub.add_parser("backup", parents=[g], help="VACUUM INTO snapshot + sha256 manifest, rotated by --keep")
    b.add_argument("--to", default="./backups")
    b.add_argument("--keep", type=int, default=48, help="snapshots to keep (0 disables rotation)")

    rs = sub.add_parser("restore", parents=[g], help="verify a snapshot against its manifest and restore it")
    rs.add_argument("--from", dest="src", required=True, help="snapshot file, or a directory (newest snapshot)")
    rs.add_argument("--skip-verify", action="store_true")

    c = sub.add_parser("curator", parents=[g], help="curator cycle report (no LLM: reports the error)")
    c.add_argument("--once", action="store_true")
    c.add_argument("--daemon", action="store_true")
    c.add_argument("--rollback")
    c.add_argument("--rollback-last", type=int)
    c.add_argument("--dry-run", action="store_true")
    c.add_argument("--max-ops", type=int, default=100)
    c.add_argument("--interval-secs", type=int, default=3600)
    c.add_argument("--include-namespace", action="append", default=[])
    c.add_argument("--exclude-namespace", action="append", default=[])

    im = sub.add_parser("import", parents=[g],
                        help="import {\"memories\":[Memory...]} JSON (stdin, or --file) in one transaction")
    im.add_argument("--file", help="read this file instead of stdin (reference-peer extension)")
    im.add_argument("--trust-source", action="store_true", help="keep metadata.agent_id from the JSON")
    im.add_argument("--on-conflict", choices=("merge", "error", "version"), default="merge")

    sub.add_parser("export", parents=[g], help="export every memory and link as JSON")

    sub.add_parser("mcp", add_help=False, help="MCP stdio server (refpeer.mcp)")
    sub.add_parser("migrate", add_help=False, help="SQLite <-> Postgres migration (refpeer.migrate)")
    return p


def die(msg: str) -> NoReturn:
    sys.stdout.flush()
    print(f"Error: {msg}", file=sys.stderr)
    raise SystemExit(1)


def emit(obj: Any, *, pretty: bool = False) -> None:
    import json

    sys.stdout.write(json.dumps(obj, indent=2 if pretty else None, ensure_ascii=False) + "\n")


def db_path(args: argparse.Namespace) -> str:
    return getattr(args, "db", None) or os.environ.get("AI_MEMORY_DB") or "ai-memory.db"


def cli_agent_id(args: argparse.Namespace) -> str:
    """--agent-id, else AI_MEMORY_AGENT_ID, else `host:<hostname>:pid-<pid>-<8 hex>` (validated)."""
    from refpeer.memory import validate_agent_id

    aid = getattr(args, "agent_id", None) or os.environ.get("AI_MEMORY_AGENT_ID")
    if aid:
        validate_agent_id(aid)
        return aid
    import socket
    import uuid

    host = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in socket.gethostname()) or "localhost"
    return f"host:{host}:pid-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def default_namespace() -> str:
    """The repo name of `git remote get-url origin` (read from .git/config), else the CWD's basename, else global."""
    try:
        cwd = os.getcwd()
    except OSError:
        return "global"
    d = cwd
    while True:
        cfg = os.path.join(d, ".git", "config")
        if os.path.isfile(cfg):
            url = _origin_url(cfg)
            if url:
                name = url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
                name = name[:-4] if name.endswith(".git") else name
                if name:
                    return name
            break
        parent = os.path.dirname(d)
        if parent == d:
            break
        d = parent
    base = os.path.basename(cwd.rstrip("/"))
    return base.replace(" ", "-") if base else "global"


def _origin_url(cfg_path: str) -> str | None:
    section = None
    try:
        with open(cfg_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                s = line.strip()
                if s.startswith("["):
                    section = s
                elif section == '[remote "origin"]' and s.startswith("url"):
                    return s.split("=", 1)[1].strip()
    except OSError:
        return None
    return None


def open_store(args: argparse.Namespace):  # -> Store (lazy import keeps startup fast)
    from refpeer.store import Store

    return Store(db_path(args))


# ---- subcommands ------------------------------------------------------------------------------


def cmd_store(args: argparse.Namespace) -> None:
    from refpeer.memory import new_memory

    content = sys.stdin.read() if args.content == "-" else args.content
    tags = [t.strip() for t in args.tags.split(",") if t.strip()]
    mem = new_memory(
        args.title, content, tier=args.tier, namespace=args.namespace or default_namespace(), tags=tags,
        priority=args.priority, confidence=args.confidence, source=args.source, expires_at=args.expires_at,
        ttl_secs=args.ttl_secs, agent_id=cli_agent_id(args), scope=args.scope,
    )
    store = open_store(args)
    try:
        stored, _created = store.store(mem, on_conflict="upsert")
        similar = store.similar_ids(stored["title"], stored["namespace"], stored["id"])
    finally:
        store.close()
    if similar:
        print(f"warning: {len(similar)} similar memor{'y' if len(similar) == 1 else 'ies'} already in namespace "
              f"'{stored['namespace']}': {', '.join(similar)}", file=sys.stderr)
    if getattr(args, "json", False):
        emit(stored)
    else:
        print(f"stored: {stored['id']} [{stored['tier']}] (ns={stored['namespace']})")


def cmd_recall(args: argparse.Namespace) -> None:
    import threading

    from refpeer import defects

    if args.tier != "keyword" and defects.enabled("recall_hangs_offline"):
        threading.Event().wait()  # 0.6.3 deadlocks building the embedder when the model download fails
    store = open_store(args)
    try:
        limit = max(1, min(args.limit, 50))
        mems = store.recall(args.query, limit=limit, namespace=args.namespace)
    finally:
        store.close()
    if args.tags:
        mems = [m for m in mems if args.tags in m["tags"]]
    tokens = sum((len(m["title"]) + len(m["content"])) // 4 + 1 for m in mems)
    if args.budget_tokens is not None:
        kept, used = [], 0
        for m in mems:
            cost = (len(m["title"]) + len(m["content"])) // 4 + 1
            if used + cost > args.budget_tokens:
                break
            kept.append(m)
            used += cost
        mems, tokens = kept, used
    out: dict[str, Any] = {"count": len(mems), "memories": mems, "mode": "keyword", "tokens_used": tokens}
    if args.budget_tokens is not None:
        out["budget_tokens"] = args.budget_tokens
    if getattr(args, "json", False):
        emit(out)
        return
    if not mems:
        print("no memories found")
    for m in mems:
        print(f"[{m['tier']}] {m['title']} (ns={m['namespace']}, score={m['score']})\n  {m['content'][:200]}")


def _print_mems(args: argparse.Namespace, mems: list[dict]) -> None:
    if getattr(args, "json", False):
        emit({"count": len(mems), "memories": mems})
        return
    for m in mems:
        print(f"{m['id']} [{m['tier']}] {m['title']} (ns={m['namespace']}, p={m['priority']})")
    if not mems:
        print("no memories found")


def cmd_search(args: argparse.Namespace) -> None:
    store = open_store(args)
    try:
        mems = store.search(args.query, limit=args.limit, namespace=args.namespace)
    finally:
        store.close()
    _print_mems(args, mems)


def cmd_list(args: argparse.Namespace) -> None:
    store = open_store(args)
    try:
        mems = store.list(namespace=args.namespace, tier=args.tier, limit=min(args.limit, 1000), offset=args.offset)
    finally:
        store.close()
    _print_mems(args, mems)


def _on_memory(args: argparse.Namespace, op: Callable[[Any], Any]) -> Any:
    """`op(store)` for the memory `args.id`; a None or False answer is the CLI's 'memory not found'."""
    store = open_store(args)
    try:
        result = op(store)
    finally:
        store.close()
    if result is None or result is False:
        raise CliError(f"memory not found: {args.id}")
    return result


def cmd_get(args: argparse.Namespace) -> None:
    mem = _on_memory(args, lambda store: store.get(args.id))
    if getattr(args, "json", False):
        emit(mem)
    else:
        print(f"{mem['id']} [{mem['tier']}] {mem['title']} (ns={mem['namespace']})\n{mem['content']}")


def cmd_delete(args: argparse.Namespace) -> None:
    _on_memory(args, lambda store: store.delete(args.id))
    if getattr(args, "json", False):
        emit({"deleted": True, "id": args.id})
    else:
        print(f"deleted: {args.id}")


def cmd_update(args: argparse.Namespace) -> None:
    from refpeer.errors import ValidationError
    from refpeer.memory import parse_update

    body: dict = {k: getattr(args, k) for k in ("title", "content", "tier", "namespace", "priority", "confidence")
                  if getattr(args, k) is not None}
    if args.tags is not None:
        body["tags"] = [t for t in args.tags.split(",") if t.strip()]
    if args.expires_at is not None:
        body["expires_at"] = args.expires_at or None
    try:
        fields = parse_update(body)
    except ValidationError as e:
        raise CliError(e.message) from e
    if args.expires_at == "":
        fields["expires_at"] = None
    mem = _on_memory(args, lambda store: store.update(args.id, fields))
    if getattr(args, "json", False):
        emit(mem)
    else:
        print(f"updated: {mem['id']} [{mem['tier']}] {mem['title']} (ns={mem['namespace']})")


def cmd_promote(args: argparse.Namespace) -> None:
    _on_memory(args, lambda store: store.update(args.id, {"tier": "long", "expires_at": None}))
    if getattr(args, "json", False):
        emit({"id": args.id, "promoted": True, "tier": "long"})
    else:
        print(f"promoted: {args.id} -> long")


def cmd_link(args: argparse.Namespace) -> None:
    from refpeer.server import RELATIONS

    if args.relation not in RELATIONS:
        raise CliError(f"invalid relation '{args.relation}' — must be one of: {', '.join(RELATIONS)}")
    store = open_store(args)
    try:
        for id_ in (args.source_id, args.target_id):
            if store.get(id_) is None:
                raise CliError(f"memory not found: {id_}")
        store.add_link(args.source_id, args.target_id, args.relation)
    finally:
        store.close()
    if getattr(args, "json", False):
        emit({"linked": True})
    else:
        print(f"linked: {args.source_id} --{args.relation}--> {args.target_id}")


def cmd_consolidate(args: argparse.Namespace) -> None:
    from refpeer.errors import ValidationError
    from refpeer.memory import new_memory

    ids = list(dict.fromkeys(i.strip() for i in args.ids.split(",") if i.strip()))
    if not 2 <= len(ids) <= 100:
        raise CliError("consolidate requires between 2 and 100 ids")
    store = open_store(args)
    try:
        sources = []
        for id_ in ids:
            mem = store.get(id_)
            if mem is None:
                raise CliError(f"memory not found: {id_}")
            sources.append(mem)
        try:
            new = new_memory(args.title, args.summary, tier="long", namespace=args.namespace or default_namespace(),
                             tags=list(dict.fromkeys(t for m in sources for t in m["tags"]))[:50],
                             priority=max(m["priority"] for m in sources), source="consolidation",
                             metadata={"consolidated_from": ids}, agent_id=cli_agent_id(args))
        except ValidationError as e:
            raise CliError(e.message) from e
        with store.transaction():
            stored, _ = store.store(new, on_conflict="merge")
            for m in sources:
                if m["id"] != stored["id"]:
                    store.delete(m["id"])
    finally:
        store.close()
    if getattr(args, "json", False):
        emit({"consolidated": len(sources), "id": stored["id"]})
    else:
        print(f"consolidated {len(sources)} memories into {stored['id']}")


def cmd_stats(args: argparse.Namespace) -> None:
    store = open_store(args)
    try:
        st = store.stats()
    finally:
        store.close()
    if getattr(args, "json", False):
        emit(st)
        return
    print(f"total: {st['total']}\nexpiring soon: {st['expiring_soon']}\nlinks: {st['links_count']}\n"
          f"db size: {st['db_size_bytes']} bytes")
    for t in st["by_tier"]:
        print(f"  tier {t['tier']}: {t['count']}")
    for n in st["by_namespace"]:
        print(f"  ns {n['namespace']}: {n['count']}")


def cmd_namespaces(args: argparse.Namespace) -> None:
    store = open_store(args)
    try:
        nss = store.namespaces()
    finally:
        store.close()
    if getattr(args, "json", False):
        emit({"namespaces": nss})
    else:
        for n in nss:
            print(f"{n['namespace']}: {n['count']}")


def cmd_gc(args: argparse.Namespace) -> None:
    store = open_store(args)
    try:
        n = store.gc()
    finally:
        store.close()
    if getattr(args, "json", False):
        emit({"archived": n, "deleted": n})
    else:
        print(f"gc: archived and deleted {n} expired memories")


def cmd_backup(args: argparse.Namespace) -> None:
    from refpeer.backup import backup

    manifest, snap, man = backup(db_path(args), args.to, keep=args.keep)
    if getattr(args, "json", False):
        emit(manifest)
    else:
        print(f"Snapshot: {snap}")
        if man:
            print(f"Manifest: {man}")
        print(f"SHA-256 : {manifest['sha256']}\nBytes   : {manifest['bytes']}")


def cmd_restore(args: argparse.Namespace) -> None:
    from refpeer.backup import restore

    report = restore(db_path(args), args.src, skip_verify=args.skip_verify)
    if getattr(args, "json", False):
        emit(report)
    else:
        print(f"Restored: {report['restored_from']} -> {report['db']}")
        if report.get("pre_restore"):
            print(f"Previous DB kept at: {report['pre_restore']}")


def cmd_curator(args: argparse.Namespace) -> None:
    from refpeer.curator import run_curator

    modes = sum(bool(x) for x in (args.once, args.daemon, args.rollback, args.rollback_last is not None))
    if modes == 0:
        raise CliError("curator requires --once, --daemon, --rollback <id>, or --rollback-last N")
    if args.rollback or args.rollback_last is not None:
        raise CliError("no curator rollback entries found (the reference peer never applies curator operations)")
    store = open_store(args)
    try:
        run_curator(store, args, emit_json=getattr(args, "json", False))
    finally:
        store.close()


def cmd_import(args: argparse.Namespace) -> None:
    import json

    from refpeer.errors import Conflict, RefPeerError, ValidationError
    from refpeer.memory import parse_memory

    try:
        if args.file:
            with open(args.file, encoding="utf-8") as f:
                data = json.load(f)
        else:
            data = json.load(sys.stdin)
    except (OSError, ValueError) as e:
        raise CliError(f"cannot read import JSON: {e}") from e
    if not isinstance(data, dict) or not isinstance(data.get("memories", []), list):
        raise CliError("import JSON must be an object with a \"memories\" array")
    caller = cli_agent_id(args)
    good: list[dict] = []
    errors: list[str] = []
    restamped = 0
    for raw in data.get("memories", []):
        try:
            mem = parse_memory(raw)
        except ValidationError as e:
            errors.append(f"{raw.get('id', '?') if isinstance(raw, dict) else '?'}: {e.message}")
            continue
        if not args.trust_source:
            orig = mem["metadata"].get("agent_id")
            mem["metadata"]["agent_id"] = caller
            if orig is not None and orig != caller:
                mem["metadata"]["imported_from_agent_id"] = orig
                restamped += 1
        good.append(mem)
    store = open_store(args)
    imported = 0
    try:
        if args.on_conflict == "merge":
            try:
                store.store_many(good, on_conflict="upsert")
                imported = len(good)
            except RefPeerError:
                good_slow = good
            else:
                good_slow = []
        else:
            good_slow = good
        for mem in good_slow:
            try:
                store.store(mem, on_conflict="upsert" if args.on_conflict == "merge" else args.on_conflict)
                imported += 1
            except (Conflict, RefPeerError) as e:
                errors.append(f"{mem['id']}: {e}")
        for link in data.get("links") or []:
            if isinstance(link, dict) and link.get("source_id") and link.get("target_id"):
                store.add_link(link["source_id"], link["target_id"], link.get("relation", "related_to"))
    finally:
        store.close()
    if getattr(args, "json", False):
        emit({"imported": imported, "restamped": restamped, "trusted_source": args.trust_source, "errors": errors})
    else:
        print(f"imported: {imported} (restamped agent_id on {restamped})")
        for e in errors:
            print(f"  {e}", file=sys.stderr)


def cmd_export(args: argparse.Namespace) -> None:
    from refpeer.memory import now_ts

    store = open_store(args)
    try:
        mems = store.list(limit=10**9, include_expired=True)
        links = [dict(zip(("source_id", "target_id", "relation", "created_at"), r, strict=True))
                 for r in store.query("SELECT source_id, target_id, relation, created_at FROM memory_links")]
    finally:
        store.close()
    emit({"memories": mems, "links": links, "count": len(mems), "exported_at": now_ts()}, pretty=True)


def cmd_serve(args: argparse.Namespace) -> None:
    from refpeer.server import serve_main

    unsupported = [f for f in ("quorum_client_cert", "quorum_client_key", "quorum_ca_cert", "tls_cert", "tls_key",
                               "mtls_allowlist") if getattr(args, f)]
    if unsupported:
        raise CliError(f"TLS options are not supported by the reference peer: --{unsupported[0].replace('_', '-')}")
    serve_main(args, db_path(args))


COMMANDS = {
    "serve": cmd_serve, "store": cmd_store, "recall": cmd_recall, "search": cmd_search, "list": cmd_list,
    "get": cmd_get, "delete": cmd_delete, "update": cmd_update, "promote": cmd_promote, "link": cmd_link,
    "consolidate": cmd_consolidate, "stats": cmd_stats, "namespaces": cmd_namespaces, "gc": cmd_gc,
    "backup": cmd_backup, "restore": cmd_restore, "curator": cmd_curator, "import": cmd_import,
    "export": cmd_export,
}


def _delegated(argv: list[str]) -> tuple[str, list[str]] | None:
    """If the subcommand is mcp or migrate: (name, its argv) with --db/--agent-id exported to the env."""
    i = 0
    env: dict[str, str] = {}
    while i < len(argv):
        a = argv[i]
        if a in _GLOBAL_VALUE_FLAGS and i + 1 < len(argv):
            env[a] = argv[i + 1]
            i += 2
            continue
        if a.startswith("-"):
            i += 1
            continue
        if a not in DELEGATED:
            return None
        rest: list[str] = []
        j = i + 1
        while j < len(argv):
            b = argv[j]
            key = b.split("=", 1)[0]
            if key in _GLOBAL_VALUE_FLAGS:
                if "=" in b:
                    env[key] = b.split("=", 1)[1]
                    j += 1
                elif j + 1 < len(argv):
                    env[key] = argv[j + 1]
                    j += 2
                else:
                    j += 1
                continue
            rest.append(b)
            j += 1
        if "--json" in argv[:i]:
            rest.append("--json")
        if "--db" in env:
            os.environ["AI_MEMORY_DB"] = env["--db"]
        if "--agent-id" in env:
            os.environ["AI_MEMORY_AGENT_ID"] = env["--agent-id"]
        return a, rest
    return None


def _wants_version(argv: list[str]) -> bool:
    """--version / -V before the subcommand (a value such as `--content -V` must not trigger it)."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--version", "-V"):
            return True
        if a in _GLOBAL_VALUE_FLAGS:
            i += 2
            continue
        if not a.startswith("-"):
            return False
        i += 1
    return False


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if _wants_version(argv):
        print(f"ai-memory {_version()}")
        return 0
    from refpeer.errors import RefPeerError, ValidationError

    try:
        from refpeer import defects

        defects.active()
    except RefPeerError as e:
        die(str(e))
    delegated = _delegated(argv)
    if delegated:
        name, rest = delegated
        import importlib

        try:
            mod = importlib.import_module(DELEGATED[name])
        except ModuleNotFoundError as e:
            if e.name == DELEGATED[name]:
                die(f"`{name}` is not available in this build ({DELEGATED[name]} is missing)")
            raise
        return int(mod.main(rest) or 0)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.cmd:
        parser.print_help(sys.stderr)
        return 2
    try:
        COMMANDS[args.cmd](args)
    except ValidationError as e:
        die(e.message)
    except (CliError, RefPeerError) as e:
        die(str(e))
    except BrokenPipeError:
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
