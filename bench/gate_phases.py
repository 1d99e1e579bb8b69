"""Benchmark: gate wall-clock per phase on the lab, from a real campaign's campaign-summary.json durations_s.

    .venv/bin/python bench/gate_phases.py [--phases 1,2,3] [--lab bgate] [--cycles 5 --writes 50]
        [--phase3-rows N --phase3-links N] [--json-out FILE]
    .venv/bin/python bench/gate_phases.py --phases 2     # phase 2 alone: its wall time against the 30 s target

When phase 2 ran, its figures follow: wall time (target < 30 s at the default shape, issue 17), the mixed
workload's wall time, and per operation kind the time to converge on each node (a poll's resolution, 0.25 s).

Runs `run_campaign` exactly as `invoke gate` does (builds its own lab, tears it down), against the clean
reference peer, and prints provision / install / each phase / validate / teardown / total. The verdict is
printed too: a figure from a red campaign is not a figure of the gate's normal path. With phase 3 it also prints
phase 3's own line: its wall time with the rows and links it migrated and the seed of their shape.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shipgate.evidence.models import Phase3Report
from shipgate.run.settings import load_settings, parse_phases
from shipgate.tasks.wiring import CampaignOptions, run_campaign

PHASE2_TARGET_S = 30.0


def _phase2_figures(path: Path) -> dict | None:
    """Phase 2's wall time and per-kind convergence from its report (None when phase 2 did not run)."""
    if not path.is_file():
        return None
    doc = json.loads(path.read_text())
    rep = doc.get("replication") or {}
    return {"wall_s": (doc.get("timing") or {}).get("duration_s"), "workload_s": rep.get("duration_s"),
            "kinds": {k: {"status": v["status"], "effects": v.get("effects", 0), "ttc": v.get("time_to_converge_s", {})}
                      for k, v in (rep.get("kinds") or {}).items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--phases", default="1,2,3")
    ap.add_argument("--lab", default="bgate", help="lab name (default bgate)")
    ap.add_argument("--cycles", type=int, help="phase 4 cycles per class (gate default 50)")
    ap.add_argument("--writes", type=int, help="phase 4 writes per cycle (gate default 100)")
    ap.add_argument("--phase3-rows", type=int, help="phase 3 seeded rows (gate default in settings)")
    ap.add_argument("--phase3-links", type=int, help="phase 3 seeded links (gate default in settings)")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args(argv)
    settings = load_settings(overrides={"phases": parse_phases(args.phases),
                                        "phase4": {"cycles": args.cycles, "writes": args.writes},
                                        "phase3": {"rows": args.phase3_rows, "links": args.phase3_links}})
    with tempfile.TemporaryDirectory(prefix="bench-gate-") as tmp:
        summary = run_campaign(CampaignOptions(settings=settings, lab_name=args.lab, runs_dir=Path(tmp),
                                               render=True),
                               progress=lambda msg: print(msg, file=sys.stderr, flush=True))
        phase2 = _phase2_figures(Path(tmp) / summary.campaign_id / "phase2.json")
    figures = {"phases": settings.phases, "verdict": summary.verdict, "total_s": summary.duration_s,
               "durations_s": summary.durations_s, "phase2": phase2}
    print(f"campaign phases {args.phases}: verdict {summary.verdict}, total {summary.duration_s:.1f} s")
    for step, seconds in summary.durations_s.items():
        print(f"  {step:<10} {seconds:8.2f} s")
    if phase2:
        wall = phase2["wall_s"]
        print(f"phase 2 wall {wall:.1f} s (target < {PHASE2_TARGET_S:.0f} s: {'met' if wall < PHASE2_TARGET_S else 'MISSED'});"
              f" workload {phase2['workload_s']} s")
        for kind, row in phase2["kinds"].items():
            ttc = ", ".join(f"{n} {'never' if t is None else f'{t:.2f} s'}" for n, t in row["ttc"].items())
            print(f"  {kind:<13} {row['status']:<7} {row['effects']:>4} effects  converged: {ttc}")
    p3 = next((r for r in summary.phases if isinstance(r, Phase3Report)), None)
    if p3 is not None:
        figures["phase3"] = {"status": p3.status, "seconds": summary.durations_s.get("phase3"),
                             "rows": p3.seeded, "links": p3.seeded_links, "seed": p3.settings.get("seed"),
                             "migrated_reverse": p3.report_reverse.memories_written if p3.report_reverse else None}
        f = figures["phase3"]
        print(f"phase 3: {f['status']} in {f['seconds']} s, {f['rows']} rows and {f['links']} links seeded "
              f"(seed {f['seed']}), {f['migrated_reverse']} rows came back")
    if args.json_out:
        args.json_out.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if summary.verdict == "pass" else 1


if __name__ == "__main__":
    raise SystemExit(main())
