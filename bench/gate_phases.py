"""Benchmark: gate wall-clock per phase on the lab, from a real campaign's campaign-summary.json durations_s.

    .venv/bin/python bench/gate_phases.py [--phases 1,2,3] [--lab bgate] [--cycles 5 --writes 50]
        [--phase3-rows N --phase3-links N] [--json-out FILE]

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
from shipgate.run.campaign import CampaignOptions, run_campaign
from shipgate.run.settings import load_settings, parse_phases


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
    figures = {"phases": settings.phases, "verdict": summary.verdict, "total_s": summary.duration_s,
               "durations_s": summary.durations_s}
    print(f"campaign phases {args.phases}: verdict {summary.verdict}, total {summary.duration_s:.1f} s")
    for step, seconds in summary.durations_s.items():
        print(f"  {step:<10} {seconds:8.2f} s")
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
