"""Run every benchmark under bench/ and write the figures with the machine's description.

    .venv/bin/python bench/run_all.py [--quick] [--only a,b] [--list] [--out bench/results]
    .venv/bin/invoke bench            (the same)

Each benchmark runs as its own process (a crash or a hang of one never takes the others down; each has a
time limit), its printed lines are kept verbatim, and the headline figures are extracted into
bench/results/<date>.json (BenchResults) and <date>.md. Benchmarks print figures; nothing here asserts a
speed. The machine is shared on CI and dev boxes, so the load average before and after is recorded too.
`--quick` runs smaller shapes: a smoke test of the harness, written as <date>-quick.*.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shipgate.evidence.atomic import write_text  # noqa: E402

RESULTS = ROOT / "bench" / "results"


class Machine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hostname: str
    nproc: int = Field(description="CPUs this process may run on (sched_getaffinity)")
    cpu_count: int | None = None
    cpu_model: str | None = None
    memory_gib: float | None = None
    kernel: str
    os: str | None = None
    python: str
    git_commit: str | None = None
    load_before: list[float] = Field(default_factory=list, description="1, 5, 15 min load averages")
    load_after: list[float] = Field(default_factory=list)


class BenchRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    what: str
    argv: list[str]
    exit_code: int | None = Field(None, description="null: killed at its time limit")
    duration_s: float
    figures: dict[str, JsonValue] = Field(default_factory=dict, description="headline figures (parsed)")
    output: list[str] = Field(default_factory=list, description="stdout, verbatim")
    stderr_tail: str | None = None


class BenchResults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date: str
    started_at: datetime
    completed_at: datetime | None = None
    quick: bool = False
    machine: Machine
    benches: list[BenchRun] = Field(default_factory=list)


# --- figures from printed lines (benchmarks written by others print text only) -----------------------------


def _chaos(lines: list[str]) -> dict[str, Any]:
    classes = {}
    projected = None
    for line in lines:
        m = re.match(r"^(\w+)\s+(pass|fail|error|skipped)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+(\S+)$", line.strip())
        if m:
            classes[m[1]] = {"status": m[2], "cycles": int(m[3]), "elapsed_s": float(m[4]),
                             "cycles_per_min": float(m[5]), "bound": None if m[6] == "None" else float(m[6])}
        m = re.search(r"projected gate default .*: ([\d.]+) min", line)
        if m:
            projected = float(m[1])
    return {"classes": classes, "projected_gate_default_min": projected}


def _cluster(lines: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for line in lines:
        if m := re.search(r"->\s*(\d+) acked writes/s", line):
            out["acked_writes_per_s"] = int(m[1])
        if m := re.search(r"p50 ([\d.]+)\s+p90 ([\d.]+)\s+p99 ([\d.]+)", line):
            out["latency_ms"] = {"p50": float(m[1]), "p90": float(m[2]), "p99": float(m[3])}
        if m := re.search(r"every acked write on both peers: (\w+)", line):
            out["converged"] = m[1] == "True"
    return out


def _cli(lines: list[str]) -> dict[str, Any]:
    out = {}
    for line in lines:
        m = re.match(r"^(.+?)\s+n=(\d+)\s+min\s+([\d.]+)\s+median\s+([\d.]+)\s+p90\s+([\d.]+)\s+max\s+([\d.]+) ms",
                     line)
        if m:
            out[m[1].strip()] = {"n": int(m[2]), "median_ms": float(m[4]), "p90_ms": float(m[5])}
    return out


def _keyvalues(lines: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for line in lines:
        m = re.match(r"^(\w+)\s+(-?[\d.]+)$", line.strip())
        if m:
            out[m[1]] = float(m[2])
    return out


def _report(lines: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for line in lines:
        if m := re.search(r"render_index over (\d+) campaigns: best ([\d.]+) s", line):
            out["index_campaigns"], out["render_index_s"] = int(m[1]), float(m[2])
        if m := re.search(r"render_campaign.*: ([\d.]+) s, page ([\d.]+) MiB", line):
            out["render_campaign_s"], out["campaign_page_mib"] = float(m[1]), float(m[2])
    return out


@dataclass(frozen=True)
class Bench:
    name: str
    what: str
    script: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    timeout_s: float
    parse: Callable[[list[str]], dict[str, Any]] | None = None  # None: the script writes --json-out


BENCHES: tuple[Bench, ...] = (
    Bench("lab_up_down", "lab up / down wall time", "lab_up_down.py", ("--rounds", "5"), ("--rounds", "1"), 600),
    Bench("lab_ssh", "SSH command latency on the lab (HostAccess)", "lab_ssh.py", ("--commands", "100"),
          ("--commands", "20"), 600),
    Bench("gate_phases", "gate wall-clock per phase (phases 1-3 campaign on the lab, clean reference peer)",
          "gate_phases.py", ("--phases", "1,2,3"), ("--phases", "1,2,3"), 1200),
    Bench("chaos_cycles", "phase 4 cycles per minute per fault class (lab)", "chaos_cycles.py",
          ("--cycles", "10", "--writes", "100"), ("--cycles", "3", "--writes", "50"), 2400, _chaos),
    Bench("burst_agent", "burst agent max writes/s: trivial server vs reference peer (loopback)",
          "burst_agent.py", ("--agents", "4,16,64", "--writes", "3000"), ("--agents", "4,16", "--writes", "800"),
          900),
    Bench("refpeer_cluster", "reference peer: acked writes/s of a 3-node W=2 cluster", "refpeer_cluster.py",
          ("--seconds", "10"), ("--seconds", "3", "--clients", "8", "--procs", "2"), 600, _cluster),
    Bench("refpeer_cli_start", "reference peer: cold CLI process latency", "refpeer_cli_start.py",
          ("--runs", "30"), ("--runs", "5"), 900, _cli),
    Bench("refpeer_migrate", "reference peer: seed + SQLite -> Postgres -> SQLite migration", "refpeer_migrate.py",
          (), ("--rows", "200", "--store-sample", "5"), 900, _keyvalues),
    Bench("report_index", "report: runs index over 100 campaigns, one gate-sized campaign page", "report_index.py",
          (), ("--campaigns", "20", "--cycles", "5", "--writes", "20"), 900, _report),
)


def describe_machine() -> Machine:
    def read(path: str) -> str:
        try:
            return Path(path).read_text()
        except OSError:
            return ""

    cpu = re.search(r"^model name\s*:\s*(.+)$", read("/proc/cpuinfo"), re.M)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", read("/proc/meminfo"), re.M)
    osr = re.search(r'^PRETTY_NAME="?([^"\n]+)', read("/etc/os-release"), re.M)
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        commit = None
    return Machine(hostname=platform.node(), nproc=len(os.sched_getaffinity(0)), cpu_count=os.cpu_count(),
                   cpu_model=cpu[1].strip() if cpu else None,
                   memory_gib=round(int(mem[1]) / 1024 / 1024, 1) if mem else None,
                   kernel=f"{platform.system()} {platform.release()} {platform.machine()}",
                   os=osr[1] if osr else None, python=platform.python_version(), git_commit=commit,
                   load_before=[round(x, 2) for x in os.getloadavg()])


def run_one(bench: Bench, quick: bool, say: Callable[[str], None]) -> BenchRun:
    args = list(bench.quick if quick else bench.full)
    with tempfile.TemporaryDirectory(prefix="bench-json-") as tmp:
        json_out = Path(tmp) / "figures.json"
        argv = [sys.executable, str(ROOT / "bench" / bench.script), *args]
        if bench.parse is None:
            argv += ["--json-out", str(json_out)]
        say(f"{bench.name}: {' '.join(argv[1:])}")
        t0 = time.monotonic()
        try:
            proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=bench.timeout_s,
                                  check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
            code: int | None = proc.returncode
            stdout, stderr = proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as exc:
            code = None
            stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            stderr = (exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")) \
                + f"\nkilled after {bench.timeout_s:.0f} s"
        duration = round(time.monotonic() - t0, 1)
        lines = stdout.splitlines()
        figures: dict[str, Any] = {}
        try:
            if bench.parse is not None:
                figures = bench.parse(lines)
            elif json_out.exists():
                figures = json.loads(json_out.read_text())
        except (ValueError, OSError) as exc:
            figures = {"parse_error": f"{type(exc).__name__}: {exc}"}
    for line in lines:
        say(f"  {line}")
    say(f"{bench.name}: exit {code} in {duration:.0f} s")
    shown = [Path(argv[1]).name, *args]  # the temporary --json-out path is not part of the record
    return BenchRun(name=bench.name, what=bench.what, argv=shown, exit_code=code,
                    duration_s=duration, figures=figures, output=lines,
                    stderr_tail=stderr.strip()[-2000:] if code != 0 and stderr.strip() else None)


def headline(results: BenchResults) -> list[str]:
    """The figures the closing note quotes, one line each."""
    by = {b.name: b.figures for b in results.benches}
    out = []
    if f := by.get("gate_phases"):
        d = f.get("durations_s") or {}
        out.append(f"gate (phases 1-3, {f.get('verdict')}): total {f.get('total_s')} s -- "
                   + ", ".join(f"{k} {v:.1f} s" for k, v in d.items()))
    if f := by.get("chaos_cycles"):
        out.append("phase 4 cycles/min: " + ", ".join(f"{k} {v['cycles_per_min']} ({v['status']}, {v['cycles']} cycles)"
                                                     for k, v in (f.get("classes") or {}).items())
                   + f"; projected gate default {f.get('projected_gate_default_min')} min")
    if f := by.get("burst_agent"):
        per = "; ".join(f"{t} " + ", ".join(f"{r['agents']} writers {r['writes_per_s']}" for r in f.get(t) or [])
                        for t in ("trivial", "refpeer"))
        out.append(f"burst agent max writes/s: trivial server {f.get('max_writes_per_s_trivial')}, "
                   f"reference peer {f.get('max_writes_per_s_refpeer')} (headroom x{f.get('headroom_ratio')}) -- {per}")
    if f := by.get("lab_up_down"):
        out.append(f"lab up {(f.get('up_s') or {}).get('median')} s, down {(f.get('down_s') or {}).get('median')} s "
                   "(median)")
    if f := by.get("lab_ssh"):
        out.append(f"SSH per command {f.get('per_command_ms_nodelay')} ms (TCP_NODELAY; "
                   f"{f.get('per_command_ms_nagle')} ms without), fresh connect + command "
                   f"{f.get('connect_plus_command_ms_median')} ms")
    if f := by.get("refpeer_cluster"):
        out.append(f"refpeer 3-node W=2 cluster: {f.get('acked_writes_per_s')} acked writes/s, "
                   f"latency {f.get('latency_ms')}")
    if f := by.get("refpeer_migrate"):
        out.append(f"refpeer migrate: seed + 3 migrations {f.get('seed_plus_3_migrations_s')} s")
    if f := by.get("report_index"):
        out.append(f"report: index over {f.get('index_campaigns')} campaigns {f.get('render_index_s')} s, "
                   f"gate-sized page {f.get('render_campaign_s')} s")
    return out


def markdown(results: BenchResults) -> str:
    m = results.machine
    out = [f"# Benchmarks {results.date}{' (quick)' if results.quick else ''}", "",
           "| machine | |", "|---|---|",
           f"| host | {m.hostname} |", f"| CPUs (usable / total) | {m.nproc} / {m.cpu_count} ({m.cpu_model}) |",
           f"| memory | {m.memory_gib} GiB |", f"| kernel | {m.kernel} |", f"| OS | {m.os} |",
           f"| Python | {m.python} |", f"| commit | {m.git_commit} |",
           f"| load before / after | {m.load_before} / {m.load_after} |", "",
           "## Headline", "", *[f"- {line}" for line in headline(results)], ""]
    for b in results.benches:
        out += [f"## {b.name}: {b.what}", "",
                f"`{' '.join(b.argv)}` -- exit {b.exit_code}, {b.duration_s:.0f} s", "", "```", *b.output]
        if b.stderr_tail:
            out += ["--- stderr (tail) ---", *b.stderr_tail.splitlines()[-15:]]
        out += ["```", ""]
    return "\n".join(out)


def _out_stem(out: Path, date: str, quick: bool) -> Path:
    stem = f"{date}-quick" if quick else date
    path, n = out / stem, 2
    while path.with_suffix(".json").exists():
        path, n = out / f"{stem}-{n}", n + 1
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller shapes (a smoke run, not figures to quote)")
    ap.add_argument("--only", help="comma list of benchmark names (default all)")
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results folder (default bench/results)")
    args = ap.parse_args(argv)
    if args.list:
        for b in BENCHES:
            print(f"{b.name:<18} {b.what}")
        return 0
    names = [n.strip() for n in (args.only or "").split(",") if n.strip()]
    unknown = [n for n in names if n not in {b.name for b in BENCHES}]
    if unknown:
        ap.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(b.name for b in BENCHES)}")
    chosen = [b for b in BENCHES if not names or b.name in names]
    t0 = time.monotonic()

    def say(msg: str) -> None:
        print(f"[{time.monotonic() - t0:7.1f}s] {msg}", file=sys.stderr, flush=True)

    started = datetime.now(UTC)
    results = BenchResults(date=f"{started:%Y-%m-%d}", started_at=started, quick=args.quick,
                           machine=describe_machine())
    args.out.mkdir(parents=True, exist_ok=True)
    stem = _out_stem(args.out, results.date, args.quick)
    for bench in chosen:
        results.benches.append(run_one(bench, args.quick, say))
        results.machine.load_after = [round(x, 2) for x in os.getloadavg()]
        results.completed_at = datetime.now(UTC)
        write_text(stem.with_suffix(".json"), results.model_dump_json(indent=2) + "\n")
        write_text(stem.with_suffix(".md"), markdown(results))
    print("\n".join(headline(results)))
    print(f"written: {stem.with_suffix('.json')}, {stem.with_suffix('.md')}")
    failed = [b.name for b in results.benches if b.exit_code != 0]
    if failed:
        print(f"benchmarks that did not finish cleanly: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
