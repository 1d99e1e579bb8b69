"""Benchmark: wall time of `lab.up` and `lab.down` (five namespaces with sshd each, a bridge, Postgres).

    .venv/bin/python bench/lab_updown.py [--runs 3] [--lab blab] [--json-out FILE]

Each run builds the lab from nothing and removes it; the lab must not be up when the benchmark starts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shipgate import lab


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--lab", default="blab", help="lab name (default blab)")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args(argv)
    if lab.load(args.lab) is not None:
        raise SystemExit(f"lab {args.lab!r} is already up: `invoke lab.down --name {args.lab}` or pick --lab")
    ups: list[float] = []
    downs: list[float] = []
    try:
        for _ in range(args.runs):
            t = time.perf_counter()
            lab.up(args.lab)
            ups.append(time.perf_counter() - t)
            t = time.perf_counter()
            lab.down(args.lab)
            downs.append(time.perf_counter() - t)
    finally:
        lab.down(args.lab)
    figures = {"runs": args.runs, "up_s": [round(x, 3) for x in ups], "down_s": [round(x, 3) for x in downs],
               "up_median_s": round(statistics.median(ups), 3), "down_median_s": round(statistics.median(downs), 3),
               "load_1min": round(os.getloadavg()[0], 2)}
    print(f"lab up:   median {figures['up_median_s']:.2f} s  (runs: {', '.join(f'{x:.2f}' for x in ups)})")
    print(f"lab down: median {figures['down_median_s']:.2f} s  (runs: {', '.join(f'{x:.2f}' for x in downs)})")
    if args.json_out:
        args.json_out.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
