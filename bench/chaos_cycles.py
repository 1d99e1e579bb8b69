"""Chaos-cycle throughput on the lab: cycles per minute per fault class (target >= 20), and the projected
time of the gate default shape (4 classes x 50 cycles x 100 writes, target <= 10 minutes).

    .venv/bin/python bench/chaos_cycles.py [--cycles 10] [--writes 100] [--lab bchaos] [--fault CLASS ...]

Builds its own lab (torn down at the end), runs phase 4 exactly as the gate does, prints one line per class.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from phases import phase4
from phases.base import PhaseContext
from shipgate.hosts.ssh import HostAccess
from shipgate.providers import lab
from shipgate.run.settings import FAULT_CLASSES, load_settings


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cycles", type=int, default=10, help="cycles per class (default 10)")
    p.add_argument("--writes", type=int, default=100, help="writes per cycle (default 100)")
    p.add_argument("--lab", default="bchaos", help="lab name (default bchaos)")
    p.add_argument("--fault", action="append", choices=FAULT_CLASSES, help="a class (repeatable; default all)")
    args = p.parse_args(argv)
    faults = args.fault or list(FAULT_CLASSES)
    inv = lab.up(args.lab)
    try:
        settings = load_settings(overrides={"phases": [4], "phase4": {"faults": faults, "cycles": args.cycles,
                                                                       "writes": args.writes}})
        with tempfile.TemporaryDirectory() as tmp, HostAccess(inv) as access:
            ctx = PhaseContext(inventory=inv, access=access, settings=settings, run_dir=Path(tmp))
            t0 = time.monotonic()
            report = phase4.run(ctx)
            total = time.monotonic() - t0
        print(f"{'class':<24} {'status':<6} {'cycles':>6} {'elapsed_s':>9} {'cycles/min':>10} {'bound':>6}")
        projected = 0.0
        for fault in faults:
            extra = report.details["classes"][fault]
            result = report.faults[fault]
            print(f"{fault:<24} {result.status:<6} {result.cycles_run:>6} {extra['elapsed_s']:>9.1f} "
                  f"{extra['cycles_per_min']:>10.1f} {result.convergence_bound!s:>6}")
            for reason in [c.reason() for c in report.checks
                           if c.id.startswith(f"{fault}.") and c.status != "pass"][:3]:
                print(f"    {reason[:300]}")
            if extra["cycles_per_min"]:
                projected += 50 / extra["cycles_per_min"] * 60 + extra.get("startup_s", 0)
        print(f"phase 4 total: {total:.1f}s for {len(faults)} x {args.cycles} x {args.writes}; "
              f"projected gate default (50 cycles x {args.writes} writes per class): {projected / 60:.1f} min")
    finally:
        lab.down(args.lab)
    return 0


if __name__ == "__main__":
    sys.exit(main())
