"""Benchmark: render runs/index.html over 100 campaigns (target <= 5 s), and one gate-sized campaign page.

Usage: .venv/bin/python bench/report_index.py [--campaigns 100] [--cycles 50] [--writes 100] [--keep DIR]

The campaigns are built through the artifact models (tests/report/runbuilder.py): a third each passing,
failing and erroring, each with its histories. Only rendering is timed. Prints the figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "report"))
sys.path.insert(0, str(ROOT))

from runbuilder import build_campaign  # noqa: E402

from shipgate.evidence.report import render_campaign, render_index  # noqa: E402

TARGET_S = 5.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--campaigns", type=int, default=100, help="campaigns in the index (default 100)")
    ap.add_argument("--cycles", type=int, default=50, help="chaos cycles per fault of the big page (default 50)")
    ap.add_argument("--writes", type=int, default=100, help="writes per chaos cycle of the big page (default 100)")
    ap.add_argument("--keep", type=Path, help="build in this folder and leave it (default: a temp folder, removed)")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="shipgate-bench-report-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        base = datetime(2026, 11, 1, tzinfo=UTC)
        kinds = ("pass", "fail", "error")
        for i in range(args.campaigns):
            build_campaign(root, f"bench-{i:03d}", kinds[i % 3], seed=i, cycles=2, writes=8, writes_per_agent=3,
                           completed_at=base + timedelta(hours=i))
        built = time.perf_counter() - t0
        render_index(root)  # warm-up: template compilation and imports are not the figure
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            page = render_index(root)
            runs.append(time.perf_counter() - t)
        best = min(runs)
        print(f"built {args.campaigns} campaigns in {built:.1f} s (not timed)")
        print(f"render_index over {args.campaigns} campaigns: best {best:.3f} s, runs "
              f"{', '.join(f'{r:.3f}' for r in runs)} s; target <= {TARGET_S:.0f} s: "
              f"{'OK' if best <= TARGET_S else 'MISSED'}  ({page.stat().st_size / 1024:.0f} KiB)")

        big = root / "big"
        big.mkdir()
        t = time.perf_counter()
        b = build_campaign(big, "gate-big", "fail", seed=99, cycles=args.cycles, writes=args.writes,
                           writes_per_agent=50)
        built_big = time.perf_counter() - t
        t = time.perf_counter()
        page = render_campaign(b.run_dir)
        took = time.perf_counter() - t
        print(f"render_campaign, {args.cycles} cycles x {args.writes} writes x 4 faults "
              f"({b.total_completions} operations; built in {built_big:.1f} s): {took:.2f} s, "
              f"page {page.stat().st_size / 1024 / 1024:.1f} MiB")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
