"""Benchmark: seed N memories into SQLite, then migrate SQLite -> Postgres (twice) -> a fresh SQLite.

Everything runs as real processes against a real PostgreSQL + pgvector (shipgate.providers.lab.postgres), the way phase 3
does it. Seeding uses the fast path (`ai-memory-ref import`, one process, one transaction); a sample of
cold `ai-memory-ref store` calls is timed too, to show what the gate's 1000-call loop would cost.

    .venv/bin/python bench/refpeer_migrate.py [--rows 1000] [--store-sample 20]
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from refpeer.memory import new_memory
from shipgate.providers.lab.postgres import PostgresServer

REF = str(Path(sys.executable).parent / "ai-memory-ref")


def _run(*args: str, stdin: str | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    proc = subprocess.run([REF, *args], input=stdin, capture_output=True, text=True, timeout=600, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"ai-memory-ref {' '.join(args[:3])} failed ({proc.returncode}): {proc.stderr}")
    return elapsed, proc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--store-sample", type=int, default=20, help="cold `store` calls to time (0 to skip)")
    opts = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sgbench-"))
    work.chmod(0o711)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pg = PostgresServer(work / "pg", port=port)
    figures: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        pg.start()
        pg.create_database("bench", "bench", "bench-pw")
        figures["postgres_start_and_createdb_s"] = time.perf_counter() - t0
        url = pg.dsn("bench", "bench", "bench-pw")

        src, dst = work / "source.db", work / "roundtrip.db"
        doc = {"memories": [new_memory(f"migrate-test-{i}", f"row {i} for migration test", namespace="phase3",
                                       agent_id="ai:bench") for i in range(1, opts.rows + 1)]}
        figures["seed_import_s"], _ = _run("--db", str(src), "import", "--json", stdin=json.dumps(doc))

        if opts.store_sample:
            sample = work / "sample.db"
            times = [_run("--db", str(sample), "store", "--title", f"t{i}", "--content", f"row {i}",
                          "--tier", "mid", "--namespace", "phase3")[0] for i in range(opts.store_sample)]
            figures["cold_store_median_ms"] = statistics.median(times) * 1000
            figures["cold_store_x1000_estimate_s"] = statistics.median(times) * 1000

        reports = []
        for label, a, b in (("migrate_sqlite_to_pg_s", f"sqlite://{src}", url),
                            ("migrate_rerun_s", f"sqlite://{src}", url),
                            ("migrate_pg_to_sqlite_s", url, f"sqlite://{dst}")):
            figures[label], proc = _run("migrate", "--from", a, "--to", b, "--batch", "500", "--json")
            reports.append(json.loads(proc.stdout))
        for rep in reports:
            assert rep["errors"] == [] and rep["memories_read"] == rep["memories_written"] == opts.rows, rep
        figures["seed_plus_3_migrations_s"] = (figures["seed_import_s"] + figures["migrate_sqlite_to_pg_s"]
                                               + figures["migrate_rerun_s"] + figures["migrate_pg_to_sqlite_s"])
    finally:
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(f"rows: {opts.rows}")
    for key, value in figures.items():
        print(f"{key:32s} {value:10.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
