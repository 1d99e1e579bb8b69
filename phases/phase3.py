"""Phase 3: migration. SQLite -> Postgres, the same again (idempotent), Postgres -> a fresh SQLite; after
every leg a row-by-row, field-by-field comparison of the two stores, links included (upstream compared
counts only, so a truncated column would have passed).

The seed is what can see truncation: rows well above every page, batch and cap on the path (list pages of
20, the 200 and 1000 list caps, 500-row catch-up pages and bulk chunks, Postgres' silent 1000-row list),
the base namespace alone above 1000, mixed tiers, priorities, sources, tags and metadata, long (~64 KB) and
non-ASCII contents (emoji, CJK, combining marks, quotes, newlines), and links -- all a pure function of a
seed recorded in the report (`shipgate.client.hostagent.seed_plan`).

The Postgres DSN is a secret: it reaches the host on stdin, never on a command line, and every URL
in the report is redacted by the model.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import quote

from phases.base import Checks, PhaseContext, Stopwatch, cli, host_unreachable
from shipgate.evidence.models import ContentComparison, MigrateReport, Phase3Report
from shipgate.evidence.models.phases import LinkComparison, SeedShape
from shipgate.target import service, startup
from shipgate.target.service import WORKDIR, ServeSpec, ServiceError

HOST = "node-a"
SRC = f"{WORKDIR}/phase3-source.db"
ROUNDTRIP = f"{WORKDIR}/phase3-roundtrip.db"
DUMPS = f"{WORKDIR}/phase3-pg"
SEED_PORT_NAME = "phase3-seed"

# Empties every table the target's schema created, keeping the schema and the vector extension, so
# each campaign migrates into an empty store without needing superuser rights.
PG_RESET = (
    "DO $$DECLARE r record; BEGIN FOR r IN SELECT tablename FROM pg_tables "
    "WHERE schemaname = 'public' AND tableowner = current_user LOOP "
    "EXECUTE 'TRUNCATE TABLE public.' || quote_ident(r.tablename) || ' CASCADE'; END LOOP; END$$;"
)
PG_COUNT = "SELECT count(*) FROM memories"
PG_DUMP_MEMORIES = "SELECT row_to_json(m) FROM memories m"
PG_DUMP_LINKS = "SELECT row_to_json(l) FROM memory_links l"

# The comparison runs on the host that holds the stores (stdlib only), sent with each call.
DIFF = (Path(__file__).resolve().parents[1] / "shipgate" / "client" / "migrationdiff.py").read_text()


def run(ctx: PhaseContext) -> Phase3Report:
    watch = Stopwatch()
    checks = Checks()
    facts: dict[str, Any] = {}
    caps = ctx.capabilities
    missing = caps.lacks("migrate") if caps is not None else None
    s = ctx.settings.phase3
    seed = s.seed if s.seed is not None else secrets.randbits(31)
    try:
        if missing:
            checks.error("migrate.available", "an `ai-memory migrate` subcommand (a build with --features "
                         "sal,sal-postgres)", f"{missing}: the migration cannot be tested; `invoke target.install "
                         "VERSION` builds a release with those features")
        else:
            _steps(ctx, checks, facts, seed)
    except ServiceError as exc:
        checks.error(f"host.{exc.host}", "reachable", str(exc))
    finally:
        with contextlib.suppress(ServiceError):
            service.stop_serve(ctx.access, HOST, name=SEED_PORT_NAME)
    return Phase3Report.from_checks(checks.items, timing=watch.timing(), settings={**s.model_dump(mode="json"),
                                    "seed": seed}, target=ctx.target_ref(), **facts)


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


def _steps(ctx: PhaseContext, checks: Checks, facts: dict[str, Any], seed: int) -> None:
    s = ctx.settings.phase3
    _run(ctx, f"mkdir -p {WORKDIR} && rm -rf {SRC}* {ROUNDTRIP}* {DUMPS}")
    ctx.progress("phase 3: emptying the Postgres store")
    res = _run(ctx, f'psql "$DSN" -X -q -v ON_ERROR_STOP=1 -c {shlex.quote(PG_RESET)}', secret_stdin=True, timeout=60)
    if not res.ok:
        checks.error("postgres.reachable", "psql connects and empties the store",
                     (res.error or res.stderr.strip())[-300:].replace(ctx.inventory.postgres.password.get_secret_value(), "***"))
        return

    ctx.progress(f"phase 3: seeding {s.rows} memories and {s.links} links in SQLite ({s.seed_method}, seed {seed})")
    if not _seed(ctx, checks, facts, seed):
        return

    legs = [("forward", "report_forward", f"sqlite://$HOME/{SRC}", '"$DSN"'),
            ("idempotent", "report_idempotent", f"sqlite://$HOME/{SRC}", '"$DSN"'),
            ("reverse", "report_reverse", '"$DSN"', f"sqlite://$HOME/{ROUNDTRIP}")]
    for leg, field, src, dst in legs:
        ctx.progress(f"phase 3: migrate {leg}")
        res = _run(ctx, f"ai-memory migrate --from {src} --to {dst} --batch {s.batch} --json", secret_stdin=True,
                   timeout=s.migrate_timeout_s)
        report = _migrate_report(res)
        if report is None:
            secret = ctx.inventory.postgres.password.get_secret_value()
            checks.error(f"migrate.{leg}", "a JSON migration report",
                         f"exit {res.exit_code}: {(res.error or res.stderr.strip() or res.stdout.strip())[-300:]}".replace(secret, "***"))
            return
        facts[field] = report
        checks.add(f"migrate.{leg}.read", s.rows, report.memories_read, report.memories_read == s.rows)
        checks.add(f"migrate.{leg}.written", s.rows, report.memories_written, report.memories_written == s.rows)
        checks.add(f"migrate.{leg}.errors", [], report.errors[:20], not report.errors,
                   f"{len(report.errors)} errors, the first 20 shown" if len(report.errors) > 20 else None)
        checks.add(f"migrate.{leg}.exit", 0, res.exit_code, res.exit_code == 0)
        if leg in ("forward", "idempotent"):
            res = _run(ctx, f'psql "$DSN" -X -A -t -v ON_ERROR_STOP=1 -c {shlex.quote(PG_COUNT)}', secret_stdin=True)
            count = int(res.stdout.strip()) if res.ok and res.stdout.strip().isdigit() else None
            if count is None:
                checks.error(f"postgres.rows_after_{leg}", s.rows, f"cannot count rows: {res.stderr.strip()[-200:]}")
            else:
                checks.add(f"postgres.rows_after_{leg}", s.rows, count, count == s.rows,
                           "a re-run must upsert, not duplicate" if leg == "idempotent" and count != s.rows else None)
            dump = _dump_postgres(ctx, checks, leg)
            if dump is not None:
                _compare(ctx, checks, facts, leg, f"sqlite:{SRC}", dump, "the source", "Postgres")
        else:
            pg = f"pg:{DUMPS}/idempotent"
            if "idempotent" in facts.get("content", {}):
                _compare(ctx, checks, facts, "reverse", pg, f"sqlite:{ROUNDTRIP}", "Postgres", "the round trip")

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
    _compare(ctx, checks, facts, "roundtrip", f"sqlite:{SRC}", f"sqlite:{ROUNDTRIP}", "the source", "the round trip")


def _dump_postgres(ctx: PhaseContext, checks: Checks, leg: str) -> str | None:
    """Postgres' memories and links as JSON lines on the host (one row a line: JSON escapes newlines)."""
    where = f"{DUMPS}/{leg}"
    psql = 'PGCLIENTENCODING=UTF8 psql "$DSN" -X -A -t -q -v ON_ERROR_STOP=1 -c'
    res = _run(ctx, f"mkdir -p {where} && {psql} {shlex.quote(PG_DUMP_MEMORIES)} > {where}/memories.jsonl && "
                    f"{psql} {shlex.quote(PG_DUMP_LINKS)} > {where}/links.jsonl", secret_stdin=True, timeout=120)
    if not res.ok:
        checks.error(f"content.{leg}", "Postgres' rows and links, dumped for the comparison",
                     f"psql: {(res.error or res.stderr.strip())[-300:]}")
        return None
    return f"pg:{where}"


def _compare(ctx: PhaseContext, checks: Checks, facts: dict[str, Any], leg: str, expected: str, observed: str,
             exp_name: str, obs_name: str) -> None:
    """content.<leg>.identical and links.<leg>.identical: every row and link of `expected` in `observed`,
    field by field, and nothing else."""
    res = _run(ctx, f"python3 -c {shlex.quote(DIFF)} compare {shlex.quote(expected)} {shlex.quote(observed)}",
               timeout=120)
    try:
        doc = json.loads(res.stdout)
        cmp = ContentComparison.model_validate(doc["rows"])
        links = LinkComparison.model_validate(doc["links"])
    except (ValueError, KeyError, TypeError) as exc:
        checks.error(f"content.{leg}", "identical rows", f"cannot compare: {exc}; {res.stderr.strip()[-300:]}")
        return
    facts.setdefault("content", {})[leg] = cmp
    facts.setdefault("links", {})[leg] = links
    problems = []
    if cmp.n_missing or cmp.n_unexpected:
        problems.append(f"{cmp.n_missing} of {exp_name}'s rows missing from {obs_name}, {cmp.n_unexpected} unexpected")
    if cmp.duplicate_keys:
        problems.append(f"{cmp.duplicate_keys} duplicated (namespace, title) in {obs_name}")
    if cmp.rows_differing:
        first = cmp.mismatched[0] if cmp.mismatched else None
        problems.append(f"{cmp.rows_differing} rows differ in {cmp.mismatched_fields} fields"
                        + (f", first: {first.field} of {first.id}" if first else ""))
    checks.add(f"content.{leg}.identical", cmp.compared, cmp.identical, cmp.clean and cmp.compared > 0,
               "; ".join(problems) or (f"{exp_name} holds no rows" if not cmp.compared else None))
    detail = None
    if links.missing_count or links.unexpected_count:
        first = links.missing[0] if links.missing else links.unexpected[0]
        detail = (f"{links.missing_count} of {exp_name}'s {links.compared} links missing from {obs_name}, "
                  f"{links.unexpected_count} unexpected; first: {first.source_id} -{first.relation}-> {first.target_id}")
    elif not links.compared:
        detail = f"{exp_name} holds no links to carry"
    checks.add(f"links.{leg}.identical", links.compared, links.identical,
               links.identical == links.compared and not links.unexpected_count, detail)


def _seed(ctx: PhaseContext, checks: Checks, facts: dict[str, Any], seed: int) -> bool:
    """Seed the source database from the plan; True when it then holds every planned row and link."""
    s = ctx.settings.phase3
    plan = ["seed", "--namespace", s.namespace, "--count", str(s.rows), "--links", str(s.links), "--seed", str(seed)]
    if s.seed_method == "bulk":
        spec = ServeSpec(host=HOST, db=SRC, name=SEED_PORT_NAME, **startup.serve_options(ctx))
        service.start_serve(ctx.access, spec)
        bad = service.wait_healthy(ctx.access, ctx.inventory, [HOST], deadline_s=30)
        if bad[HOST]:
            checks.error("seed", s.rows, f"serve for seeding not healthy: {bad[HOST]}")
            return False
        doc = service.agent_json(ctx.access, "chaos", [*plan, "--url", ctx.inventory.peer_url(HOST)],
                                 timeout=s.seed_timeout_s)
        try:
            # SIGINT: the product checkpoints its WAL and exits; under load that took real 0.6.3 over 15 s once.
            service.stop_serve(ctx.access, HOST, name=SEED_PORT_NAME, signal="INT", timeout=60)
        except ServiceError as exc:
            tail = service.serve_log_tail(ctx.access, HOST, name=SEED_PORT_NAME, lines=5).strip()[-400:]
            checks.error("seed", s.rows, f"{exc}; seeding serve log: {tail or '(empty)'}")
            return False
    else:
        doc = service.agent_json(ctx.access, HOST, [*plan, "--cli-db", SRC], timeout=s.seed_timeout_s)
    if doc.get("error"):
        checks.error("seed", s.rows, f"seeding failed: {doc['error']}; {doc.get('errors')}")
        return False
    res = _run(ctx, cli(SRC, "stats", "--json"))
    try:
        stats = json.loads(res.stdout)
        total, links = int(stats["total"]), int(stats["links_count"])
    except (ValueError, KeyError, TypeError):
        checks.error("seed", s.rows, f"stats --json unreadable after seeding: {res.stderr.strip()[-200:]}")
        return False
    facts["seeded"], facts["seeded_links"] = total, links
    problems = "; ".join(doc.get("errors") or [])[:600] or None
    ok = checks.add("seed.rows", s.rows, total, total == s.rows, problems if total != s.rows else None)
    ok = checks.add("seed.links", s.links, links, links == s.links, problems if links != s.links else None) and ok
    res = _run(ctx, f"python3 -c {shlex.quote(DIFF)} shape {shlex.quote(f'sqlite:{SRC}')}", timeout=120)
    with contextlib.suppress(ValueError, TypeError):
        facts["seed_shape"] = SeedShape.model_validate(json.loads(res.stdout))
    return ok


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
