"""`ai-memory-ref migrate --from URL --to URL`: copy memories between SQLite and Postgres (contract 2.8).

Algorithm of the real program: one `list` of the source (limit 1,000,000; expired rows excluded on SQLite),
dedup by id, then `store()` every row into the destination, which upserts on (title, namespace). `--batch` is
accepted and ignored (`batches` is always 1). With errors the report is printed and then the process exits 1;
a connect or schema failure exits 1 before any report.

Seeded defects (refpeer.defects): `migrate_truncate` silently cuts every written content to
`TRUNCATE_AT` characters (the counts still match); `migrate_duplicates` makes the Postgres destination insert
instead of upsert, so a re-run duplicates every row (the report still says written == read).
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
_PAGE = 1000


class MigrateError(RuntimeError):
    """A store URL could not be opened; reported as `Error: …`, exit 1, no JSON."""


class Side(Protocol):
    def list_all(self, namespace: str | None) -> list[dict[str, Any]]: ...
    def store(self, mem: dict[str, Any]) -> str: ...
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
        rows: list[dict[str, Any]] = []
        offset = 0
        while len(rows) < LIST_LIMIT:
            page = self.db.list(namespace=namespace, limit=_PAGE, offset=offset, include_expired=False)
            rows.extend(page)
            if len(page) < _PAGE:
                break
            offset += len(page)
        return rows

    def store(self, mem: dict[str, Any]) -> str:
        stored, _created = self.db.store(mem, on_conflict="upsert")
        return str(stored["id"])

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


def migrate(from_url: str, to_url: str, *, namespace: str | None = None, dry_run: bool = False) -> dict[str, Any]:
    """Run one migration and return the report of contract 2.8. Raises MigrateError on connect failures."""
    from refpeer import defects

    truncate = defects.enabled("migrate_truncate")
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
                    try:
                        dst.store(mem)
                    except Exception as exc:
                        report["errors"].append(f"{row['id']}: {str(exc).strip()}")
                    else:
                        report["memories_written"] += 1
        finally:
            dst.close()
    finally:
        src.close()
    return report


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
