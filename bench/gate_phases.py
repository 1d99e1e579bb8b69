"""Benchmark: gate wall-clock per phase on the lab, from a real campaign's campaign-summary.json durations_s.

    .venv/bin/python bench/gate_phases.py [--phases 1,2,3] [--lab bgate] [--cycles 5 --writes 50] [--json-out FILE]

Runs `run_campaign` exactly as `invoke gate` does (builds its own lab, tears it down), against the clean
reference peer, and prints provision / install / each phase / validate / teardown / total. The verdict is
printed too: a figure from a red campaign is not a figure of the gate's normal path.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shipgate.run.settings import load_settings, parse_phases
from shipgate.tasks.wiring import CampaignOptions, run_campaign


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--phases", default="1,2,3")
    ap.add_argument("--lab", default="bgate", help="lab name (default bgate)")
    ap.add_argument("--cycles", type=int, help="phase 4 cycles per class (gate default 50)")
    ap.add_argument("--writes", type=int, help="phase 4 writes per cycle (gate default 100)")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args(argv)
    settings = load_settings(overrides={"phases": parse_phases(args.phases),
                                        "phase4": {"cycles": args.cycles, "writes": args.writes}})
    with tempfile.TemporaryDirectory(prefix="bench-gate-") as tmp:
        summary = run_campaign(CampaignOptions(settings=settings, lab_name=args.lab, runs_dir=Path(tmp),
                                               render=True),
                               progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    figures = {"phases": settings.phases, "verdict": summary.verdict, "total_s": summary.duration_s,
               "durations_s": summary.durations_s}
    print(f"campaign phases {args.phases}: verdict {summary.verdict}, total {summary.duration_s:.1f} s")
    for step, seconds in summary.durations_s.items():
        print(f"  {step:<10} {seconds:8.2f} s")
    if args.json_out:
        args.json_out.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if summary.verdict == "pass" else 1


if __name__ == "__main__":
    raise SystemExit(main())
