"""`ai-memory-ref migrate --from URL --to URL`: copy memories between SQLite and Postgres (contract 2.8).

Algorithm of the real program: one `list` of the source (limit 1,000,000; expired rows excluded on SQLite),
dedup by id, then `store()` every row into the destination, which upserts on (title, namespace). `--batch` is
accepted and ignored (`batches` is always 1). With errors the report is printed and then the process exits 1;
a connect or schema failure exits 1 before any report.

Links are copied after the memories (as 0.7.0's "link-walk" does; 0.6.0-0.6.4 copied none): every link of the
source whose two ends the destination holds, relation kept, `created_at` stamped at the copy. The report keeps
0.6.3's keys (0.7.0 added none to the JSON).

Seeded defects (refpeer.defects): `migrate_truncate` silently cuts every written content to
`TRUNCATE_AT` characters (the counts still match); `migrate_duplicates` makes the Postgres destination insert
instead of upsert, so a re-run duplicates every row (the report still says written == read);
`migrate_page_cap_500` reads only the first page of `PAGE_CAP` rows of a SQLite source (the report counts what
it read); `migrate_drops_links` copies no link (0.6.0-0.6.4); `migrate_mangles_unicode` writes every character
outside the Basic Multilingual Plane (emoji) as U+FFFD, as a utf8mb3-style column would.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol

LIST_LIMIT = 1_000_000
TRUNCATE_AT = 16
PAGE_CAP = 500
_PAGE = 1000
Link = tuple[str, str, str]


class MigrateError(RuntimeError):
    """A store URL could not be opened; reported as `Error: …`, exit 1, no JSON."""


class Side(Protocol):
    def list_all(self, namespace: str | None) -> list[dict[str, Any]]: ...
    def store(self, mem: dict[str, Any]) -> str: ...
    def links(self) -> list[Link]: ...
    def has(self, id: str) -> bool: ...
    def link(self, link: Link) -> None: ...
    def transaction(self) -> AbstractContextManager[Any]: ...
    def close(self) -> None: ...


def sqlite_path(url: str) -> str:
    """`sqlite:///abs` and `sqlite:////abs` give `/abs`; `sqlite://rel.db` gives `rel.db`."""
    path = url[len("sqlite://"):]
    if not path:
        raise MigrateError(f"unrecognised store URL: {url} (expected sqlite:///path or postgres://...)")
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    return path


class SqliteSide:
    """The reference peer's own SQLite store (refpeer.store.Store)."""

    def __init__(self, url: str) -> None:
        from refpeer.store import Store

        self.path = sqlite_path(url)
        try:
            self.db = Store(self.path)
        except Exception as exc:
            raise MigrateError(f"open {url}: {exc}") from None

    def list_all(self, namespace: str | None) -> list[dict[str, Any]]:
        from refpeer import defects

        first_page_only = defects.enabled("migrate_page_cap_500")
        size = PAGE_CAP if first_page_only else _PAGE
        rows: list[dict[str, Any]] = []
        offset = 0
        while len(rows) < LIST_LIMIT:
            page = self.db.list(namespace=namespace, limit=size, offset=offset, include_expired=False)
            rows.extend(page)
            if len(page) < size or first_page_only:
                break
            offset += len(page)
        return rows

    def store(self, mem: dict[str, Any]) -> str:
        stored, _created = self.db.store(mem, on_conflict="upsert")
        return str(stored["id"])

    def links(self) -> list[Link]:
        cur = self.db.conn.execute("SELECT source_id, target_id, relation FROM memory_links")
        return [(str(a), str(b), str(r)) for a, b, r in cur.fetchall()]

    def has(self, id: str) -> bool:
        return self.db.get(id) is not None

    def link(self, link: Link) -> None:
        self.db.add_link(*link)

    def transaction(self) -> AbstractContextManager[Any]:
        return nullcontext()

    def close(self) -> None:
        self.db.close()


class PostgresSide:
    def __init__(self, url: str, *, duplicates_defect: bool) -> None:
        from refpeer.pgstore import PgStore, PgStoreError

        try:
            self.db = PgStore(url, duplicates_defect=duplicates_defect)
        except PgStoreError as exc:
            raise MigrateError(str(exc)) from None

    def list_all(self, namespace: str | None) -> list[dict[str, Any]]:
        return self.db.list(namespace=namespace, limit=LIST_LIMIT)

    def store(self, mem: dict[str, Any]) -> str:
        return self.db.store(mem)

    def links(self) -> list[Link]:
        return self.db.links()

    def has(self, id: str) -> bool:
        return self.db.get(id) is not None

    def link(self, link: Link) -> None:
        self.db.add_link(*link)

    def transaction(self) -> AbstractContextManager[Any]:
        return self.db.transaction()

    def close(self) -> None:
        self.db.close()


def open_side(url: str) -> Side:
    """Open a store URL, or raise MigrateError with the real program's message for an unknown scheme."""
    from refpeer import defects

    if url.startswith("sqlite://"):
        return SqliteSide(url)
    if url.startswith(("postgres://", "postgresql://")):
        return PostgresSide(url, duplicates_defect=defects.enabled("migrate_duplicates"))
    raise MigrateError(f"unrecognised store URL: {url} (expected sqlite:///path or postgres://...)")


def _dedup(rows: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    seen: set[str] = set()
    for row in rows:
        if row["id"] not in seen:
            seen.add(row["id"])
            yield row


def _no_astral(text: Any) -> Any:
    if isinstance(text, str):
        return "".join("\ufffd" if ord(c) > 0xFFFF else c for c in text)
    if isinstance(text, list):
        return [_no_astral(t) for t in text]
    return text


def migrate(from_url: str, to_url: str, *, namespace: str | None = None, dry_run: bool = False) -> dict[str, Any]:
    """Run one migration and return the report of contract 2.8. Raises MigrateError on connect failures."""
    from refpeer import defects

    truncate = defects.enabled("migrate_truncate")
    mangle = defects.enabled("migrate_mangles_unicode")
    with_links = not defects.enabled("migrate_drops_links")
    report: dict[str, Any] = {"from_url": from_url, "to_url": to_url, "memories_read": 0,
                              "memories_written": 0, "batches": 1, "errors": [], "dry_run": dry_run}
    src = open_side(from_url)
    try:
        dst = open_side(to_url)
        try:
            try:
                rows = src.list_all(namespace)
            except Exception as exc:
                raise MigrateError(f"list source: {exc}") from None
            if len(rows) >= LIST_LIMIT:
                report["errors"].append(
                    f"source has at least {LIST_LIMIT} memories; refusing a partial migration")
                return report
            rows = list(_dedup(rows))
            report["memories_read"] = len(rows)
            if dry_run:
                return report
            with dst.transaction():
                for row in rows:
                    mem = dict(row)
                    if truncate:
                        mem["content"] = mem["content"][:TRUNCATE_AT]
                    if mangle:
                        for key in ("title", "content", "tags"):
                            mem[key] = _no_astral(mem.get(key))
                    try:
                        dst.store(mem)
                    except Exception as exc:
                        report["errors"].append(f"{row['id']}: {str(exc).strip()}")
                    else:
                        report["memories_written"] += 1
                if with_links:
                    _copy_links(src, dst, namespace, {row["id"] for row in rows}, report)
        finally:
            dst.close()
    finally:
        src.close()
    return report


def _copy_links(src: Side, dst: Side, namespace: str | None, moved: set[str], report: dict[str, Any]) -> None:
    """Every source link whose two ends the destination holds; with --namespace only links of moved rows."""
    try:
        links = src.links()
    except Exception as exc:
        report["errors"].append(f"list source links: {str(exc).strip()}")
        return
    for link in links:
        if namespace is not None and not (link[0] in moved or link[1] in moved):
            continue
        try:
            if dst.has(link[0]) and dst.has(link[1]):
                dst.link(link)
        except Exception as exc:
            report["errors"].append(f"link {link[0]} -> {link[1]}: {str(exc).strip()}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ai-memory migrate",
        description="Copy memories between stores. URLs: sqlite:///abs/path.db (or sqlite://rel.db) and "
                    "postgres://user:pass@host:port/db (or postgresql://...). Rows are upserted on "
                    "(title, namespace), so a re-run is idempotent.")
    p.add_argument("--from", dest="from_url", required=True, metavar="URL", help="source store URL")
    p.add_argument("--to", dest="to_url", required=True, metavar="URL", help="destination store URL")
    p.add_argument("--batch", type=int, default=1000, metavar="N",
                   help="accepted for compatibility and ignored, as in ai-memory (batches is always 1)")
    p.add_argument("--namespace", metavar="NS", help="only migrate memories of this namespace")
    p.add_argument("--dry-run", action="store_true", help="read and count, write nothing")
    p.add_argument("--json", action="store_true", help="print the report as JSON (the only stdout output)")
    p.add_argument("--db", help=argparse.SUPPRESS)
    return p


def main(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.batch < 1:
        print(f"Error: --batch must be at least 1 (got {args.batch})", file=sys.stderr)
        return 1
    try:
        report = migrate(args.from_url, args.to_url, namespace=args.namespace, dry_run=args.dry_run)
    except MigrateError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"migrate: read {report['memories_read']}, wrote {report['memories_written']} "
              f"({report['batches']} batch, {len(report['errors'])} error(s)"
              f"{', dry run' if report['dry_run'] else ''}) {args.from_url} -> {args.to_url}")
        for err in report["errors"]:
            print(f"  error: {err}", file=sys.stderr)
    sys.stdout.flush()
    if report["errors"]:
        print(f"Error: migration completed with {len(report['errors'])} error(s)", file=sys.stderr)
        return 1
    return 0
