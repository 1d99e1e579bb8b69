"""Benchmark: wall time of a cold `ai-memory-ref store` (a new process per call, as the gate runs it).

Runs the console script N times against one SQLite file (the first call also creates the schema), plus
`--version`, `stats --json` and `recall --json` for comparison, and `import` of 1000 rows (the fast seeding
path). Prints min / median / p90 / max in milliseconds.

    .venv/bin/python bench/refpeer_cli_start.py [--runs 30]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def exe() -> list[str]:
    script = Path(sys.executable).with_name("ai-memory-ref")
    if script.exists():
        return [str(script)]
    found = shutil.which("ai-memory-ref")
    return [found] if found else [sys.executable, "-m", "refpeer"]


def timed(cmd: list[str], env: dict[str, str], stdin: str | None = None) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, input=stdin, capture_output=True, text=True, timeout=60)
    dt = (time.perf_counter() - t0) * 1000
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {r.stderr}")
    return dt


def summary(name: str, xs: list[float]) -> str:
    xs = sorted(xs)
    p90 = xs[min(len(xs) - 1, int(0.9 * len(xs)))]
    return (f"{name:<22} n={len(xs):<3} min {xs[0]:6.1f}  median {statistics.median(xs):6.1f}  "
            f"p90 {p90:6.1f}  max {xs[-1]:6.1f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    a = ap.parse_args()
    cmd = exe()
    with tempfile.TemporaryDirectory(prefix="refpeer-cli-") as tmp:
        env = {**os.environ, "AI_MEMORY_DB": str(Path(tmp) / "bench.db"), "AI_MEMORY_REF_DEFECTS": ""}
        version = [timed([*cmd, "--version"], env) for _ in range(a.runs)]
        store = [timed([*cmd, "store", "--title", f"migrate-test-{i}", "--content", f"row {i} for migration test",
                        "--tier", "mid", "--namespace", "phase3"], env) for i in range(a.runs)]
        stats = [timed([*cmd, "stats", "--json"], env) for _ in range(a.runs)]
        recall = [timed([*cmd, "recall", "migration test", "--limit", "5", "--json"], env) for _ in range(a.runs)]
        ts = "2026-01-01T00:00:00.000000000+00:00"
        rows = [{"id": str(uuid.uuid4()), "title": f"seed-{i}", "content": f"row {i} for migration test",
                 "namespace": "phase3-import", "tier": "mid", "tags": [], "priority": 5, "confidence": 1.0,
                 "source": "import", "access_count": 0, "created_at": ts, "updated_at": ts, "metadata": {}}
                for i in range(1000)]
        imp = [timed([*cmd, "import", "--json"], env, json.dumps({"memories": rows}))]
        healthy = []
        for _ in range(5):
            from refpeer.testing import PeerProc, free_ports

            node = PeerProc(free_ports(1)[0], Path(tmp) / "serve.db", Path(tmp) / "serve.log")
            t0 = time.perf_counter()
            node.start(wait=False)
            try:
                node.wait_healthy(10)
                healthy.append((time.perf_counter() - t0) * 1000)
            finally:
                node.kill()
        print(f"machine: {platform.node()} cpus={os.cpu_count()} python={platform.python_version()} "
              f"load={os.getloadavg()[0]:.1f}; command: {' '.join(cmd)}")
        for name, xs in (("--version", version), ("store (cold process)", store), ("stats --json", stats),
                         ("recall --json", recall), ("import 1000 rows", imp), ("serve start->healthy", healthy)):
            print(summary(name, xs))
        print(f"1000 cold `store` processes would take ~{statistics.median(store) * 1000 / 1000:.0f} s; "
              f"`import` seeds 1000 rows in {imp[0] / 1000:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
