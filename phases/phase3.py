"""Phase 3: migration. SQLite -> Postgres, the same again (idempotent), Postgres -> a fresh SQLite,
then a record-by-record comparison of source and round trip (upstream compared counts only, so a
truncated column would have passed).

The Postgres DSN is a secret: it reaches the host on stdin, never on a command line, and every URL
in the report is redacted by the model.
"""

from __future__ import annotations

import contextlib
import json
import shlex
from typing import Any
from urllib.parse import quote

from phases.base import Checks, PhaseContext, Stopwatch, cli, host_unreachable
from shipgate.client import calls
from shipgate.evidence.models import ContentComparison, MigrateReport, Phase3Report
from shipgate.target import service
from shipgate.target.service import WORKDIR, ServeSpec, ServiceError

HOST = "node-a"
SRC = f"{WORKDIR}/phase3-source.db"
ROUNDTRIP = f"{WORKDIR}/phase3-roundtrip.db"
SEED_PORT_NAME = "phase3-seed"

# Empties every table the target's schema created, keeping the schema and the vector extension, so
# each campaign migrates into an empty store without needing superuser rights.
PG_RESET = (
    "DO $$DECLARE r record; BEGIN FOR r IN SELECT tablename FROM pg_tables "
    "WHERE schemaname = 'public' AND tableowner = current_user LOOP "
    "EXECUTE 'TRUNCATE TABLE public.' || quote_ident(r.tablename) || ' CASCADE'; END LOOP; END$$;"
)
PG_COUNT = "SELECT count(*) FROM memories"

COMPARE = r"""
import json, sqlite3, sys
FIELDS = ("id", "tier", "content", "tags", "priority", "confidence", "source")
def rows(path):
    c = sqlite3.connect("file:" + path + "?mode=ro", uri=True)
    c.row_factory = sqlite3.Row
    out = {}
    for r in c.execute("select * from memories where namespace = ?", (sys.argv[3],)):
        d = dict(r)
        try:
            d["tags"] = sorted(json.loads(d.get("tags") or "[]"))
        except ValueError:
            pass
        try:
            d["agent_id"] = json.loads(d.get("metadata") or "{}").get("agent_id")
        except ValueError:
            d["agent_id"] = None
        out[d["title"]] = d
    return out
a, b = rows(sys.argv[1]), rows(sys.argv[2])
mism = []
identical = rows = 0
for title, ra in a.items():
    rb = b.get(title)
    if rb is None:
        continue
    bad = [f for f in FIELDS + ("agent_id",) if ra.get(f) != rb.get(f)]
    if not bad:
        identical += 1
    else:
        rows += 1
    for f in bad:
        mism.append({"id": ra["id"], "field": f, "expected": ra.get(f), "observed": rb.get(f)})
print(json.dumps({"compared": len(a), "identical": identical,
                  "missing": sorted(a[t]["id"] for t in a if t not in b),
                  "unexpected": sorted(b[t]["id"] for t in b if t not in a),
                  "mismatched": mism[:50], "mismatched_rows": rows, "mismatched_fields": len(mism)}))
"""


def run(ctx: PhaseContext) -> Phase3Report:
    watch = Stopwatch()
    checks = Checks()
    facts: dict[str, Any] = {}
    caps = ctx.capabilities
    missing = caps.lacks("migrate") if caps is not None else None
    try:
        if missing:
            checks.error("migrate.available", "an `ai-memory migrate` subcommand (a build with --features "
                         "sal,sal-postgres)", f"{missing}: the migration cannot be tested; `invoke target.install "
                         "VERSION` builds a release with those features")
        else:
            _steps(ctx, checks, facts)
    except ServiceError as exc:
        checks.error(f"host.{exc.host}", "reachable", str(exc))
    finally:
        with contextlib.suppress(ServiceError):
            service.stop_serve(ctx.access, HOST, name=SEED_PORT_NAME)
    return Phase3Report.from_checks(checks.items, timing=watch.timing(), settings=ctx.settings.phase3.model_dump(mode="json"),
                                    target=ctx.target_ref(), **facts)


def _run(ctx: PhaseContext, command: str, *, timeout: float = 120, secret_stdin: bool = False):
    """Run on node-a; with `secret_stdin` the DSN arrives as the first line of stdin as $DSN."""
    if secret_stdin:
        command = "IFS= read -r DSN; " + command
        stdin = ctx.inventory.postgres.dsn().get_secret_value() + "\n"
    else:
        stdin = None
    res = ctx.access.run(HOST, command, timeout=timeout, stdin=stdin)
    if secret_stdin:
        # The target holds the DSN now and may print it anywhere (errors, its JSON report, stderr).
        password = ctx.inventory.postgres.password.get_secret_value()
        for secret in {password, quote(password, safe="")}:
            res.stdout, res.stderr = res.stdout.replace(secret, "***"), res.stderr.replace(secret, "***")
            res.error = res.error.replace(secret, "***") if res.error else res.error
    if host_unreachable(res):
        raise ServiceError(HOST, res.error or "unreachable")
    return res


def _steps(ctx: PhaseContext, checks: Checks, facts: dict[str, Any]) -> None:
    s = ctx.settings.phase3
    _run(ctx, f"mkdir -p {WORKDIR} && rm -f {SRC}* {ROUNDTRIP}*")
    ctx.progress("phase 3: emptying the Postgres store")
    res = _run(ctx, f'psql "$DSN" -X -q -v ON_ERROR_STOP=1 -c {shlex.quote(PG_RESET)}', secret_stdin=True, timeout=60)
    if not res.ok:
        checks.error("postgres.reachable", "psql connects and empties the store",
                     (res.error or res.stderr.strip())[-300:].replace(ctx.inventory.postgres.password.get_secret_value(), "***"))
        return

    ctx.progress(f"phase 3: seeding {s.rows} memories in SQLite ({s.seed_method})")
    seeded = _seed(ctx, checks, s.rows, s.seed_method, s.namespace)
    facts["seeded"] = seeded
    if seeded != s.rows:
        return

    legs = [("forward", "report_forward", f"sqlite://$HOME/{SRC}", '"$DSN"'),
            ("idempotent", "report_idempotent", f"sqlite://$HOME/{SRC}", '"$DSN"'),
            ("reverse", "report_reverse", '"$DSN"', f"sqlite://$HOME/{ROUNDTRIP}")]
    for leg, field, src, dst in legs:
        ctx.progress(f"phase 3: migrate {leg}")
        res = _run(ctx, f"ai-memory migrate --from {src} --to {dst} --batch {s.batch} --json", secret_stdin=True,
                   timeout=300)
        report = _migrate_report(res)
        if report is None:
            secret = ctx.inventory.postgres.password.get_secret_value()
            checks.error(f"migrate.{leg}", "a JSON migration report",
                         f"exit {res.exit_code}: {(res.error or res.stderr.strip() or res.stdout.strip())[-300:]}".replace(secret, "***"))
            return
        facts[field] = report
        checks.add(f"migrate.{leg}.read", s.rows, report.memories_read, report.memories_read == s.rows)
        checks.add(f"migrate.{leg}.written", s.rows, report.memories_written, report.memories_written == s.rows)
        checks.add(f"migrate.{leg}.errors", [], report.errors, not report.errors)
        checks.add(f"migrate.{leg}.exit", 0, res.exit_code, res.exit_code == 0)
        if leg in ("forward", "idempotent"):
            res = _run(ctx, f'psql "$DSN" -X -A -t -v ON_ERROR_STOP=1 -c {shlex.quote(PG_COUNT)}', secret_stdin=True)
            count = int(res.stdout.strip()) if res.ok and res.stdout.strip().isdigit() else None
            if count is None:
                checks.error(f"postgres.rows_after_{leg}", s.rows, f"cannot count rows: {res.stderr.strip()[-200:]}")
            else:
                checks.add(f"postgres.rows_after_{leg}", s.rows, count, count == s.rows,
                           "a re-run must upsert, not duplicate" if leg == "idempotent" and count != s.rows else None)

    counts = {}
    for name, path in (("src_count", SRC), ("dst_count", ROUNDTRIP)):
        res = _run(ctx, cli(path, "stats", "--json"))
        try:
            counts[name] = int(json.loads(res.stdout)["total"])
        except (ValueError, KeyError, TypeError):
            checks.error(f"stats.{name}", s.rows, f"stats --json unreadable: {(res.stderr or res.stdout).strip()[-200:]}")
    facts.update(counts)
    if len(counts) == 2:
        checks.add("counts.src_equals_dst", counts["src_count"], counts["dst_count"],
                   counts["src_count"] == counts["dst_count"] == s.rows)

    res = _run(ctx, f"python3 -c {shlex.quote(COMPARE)} {SRC} {ROUNDTRIP} {shlex.quote(s.namespace)}")
    try:
        cmp = ContentComparison.model_validate(json.loads(res.stdout))
    except (ValueError, KeyError, TypeError) as exc:
        checks.error("content.roundtrip", "identical rows", f"cannot compare: {exc}; {res.stderr.strip()[-300:]}")
        return
    facts["content"] = {"roundtrip": cmp}
    checks.add("content.roundtrip.identical", cmp.compared, cmp.identical,
               cmp.identical == cmp.compared == s.rows and not cmp.unexpected,
               None if cmp.identical == cmp.compared else
               f"{len(cmp.missing)} missing, {len(cmp.unexpected)} unexpected, {cmp.rows_differing} rows differ in "
               f"{cmp.mismatched_fields} fields"
               + (f", e.g. {cmp.mismatched[0].field} of {cmp.mismatched[0].id}" if cmp.mismatched else ""))


def _seed(ctx: PhaseContext, checks: Checks, rows: int, method: str, namespace: str) -> int:
    """Seed the source database; returns the row count it then holds (0 when seeding failed)."""
    if method == "bulk":
        spec = ServeSpec(host=HOST, db=SRC, name=SEED_PORT_NAME, flags=ctx.serve_flags)
        service.start_serve(ctx.access, spec)
        bad = service.wait_healthy(ctx.access, ctx.inventory, [HOST], deadline_s=30)
        if bad[HOST]:
            checks.error("seed", rows, f"serve for seeding not healthy: {bad[HOST]}")
            return 0
        doc = service.agent_json(ctx.access, "chaos", calls.bulk(ctx.inventory.peer_url(HOST), namespace, rows),
                                 timeout=300)
        service.stop_serve(ctx.access, HOST, name=SEED_PORT_NAME, signal="INT")
        statuses = [r.get("status") for r in doc.get("responses", [])]
        if doc.get("error") or any(st not in (200, 201) for st in statuses):
            checks.error("seed", rows, f"bulk seeding failed: {doc.get('error') or doc.get('responses')}")
            return 0
    else:
        script = (f"for i in $(seq 1 {rows}); do env AI_MEMORY_DB={SRC} ai-memory store --title migrate-test-$i "
                  f"--content \"row $i for migration test\" --tier mid --namespace {shlex.quote(namespace)} "
                  ">/dev/null || exit 1; done")
        res = _run(ctx, script, timeout=max(120, rows * 1.0))
        if not res.ok:
            checks.error("seed", rows, f"store loop failed: {(res.error or res.stderr.strip())[-300:]}")
            return 0
    res = _run(ctx, cli(SRC, "stats", "--json"))
    try:
        total = int(json.loads(res.stdout)["total"])
    except (ValueError, KeyError, TypeError):
        checks.error("seed", rows, f"stats --json unreadable after seeding: {res.stderr.strip()[-200:]}")
        return 0
    checks.add("seed.rows", rows, total, total == rows)
    return total


def _migrate_report(res: Any) -> MigrateReport | None:
    """migrate prints its JSON report (pretty) even when it exits 1 because of errors."""
    if res.error:
        return None
    text = res.stdout.strip()
    start = text.find("{")
    if start < 0:
        return None
    try:
        return MigrateReport.model_validate(json.loads(text[start:]))
    except ValueError:
        return None
