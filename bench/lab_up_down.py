"""Lab build and teardown times (targets: `lab.up` <= 5 s, `lab.down` <= 3 s on this machine).

Each round builds a fresh lab (five hosts with sshd, firewalls, Postgres with pgvector, the reference peer
installed and its version read over SSH) and removes it again. A first `down` removes any leftovers.

    .venv/bin/python bench/lab_up_down.py [--rounds 5] [--name t4bench] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shipgate.providers import lab


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--name", default="t4bench", help="lab name (1-8 lowercase letters/digits)")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")

    lab.down(args.name)
    ups: list[float] = []
    downs: list[float] = []
    again: list[float] = []
    try:
        for i in range(args.rounds):
            t = time.monotonic()
            lab.up(args.name)
            ups.append(time.monotonic() - t)
            t = time.monotonic()
            lab.up(args.name)  # already up: must be harmless and cheap
            again.append(time.monotonic() - t)
            t = time.monotonic()
            report = lab.down(args.name)
            downs.append(time.monotonic() - t)
            if not report.clean:
                print(f"round {i + 1}: teardown left {report.leftovers}", file=sys.stderr)
                return 2
            print(f"round {i + 1}: up {ups[-1]:.2f}s  up-again {again[-1]:.3f}s  down {downs[-1]:.2f}s", flush=True)
    finally:
        lab.down(args.name)

    def stats(xs: list[float]) -> dict[str, float]:
        return {"min": round(min(xs), 3), "median": round(statistics.median(xs), 3), "max": round(max(xs), 3)}

    result = {"benchmark": "lab_up_down", "rounds": args.rounds, "up_s": stats(ups), "up_again_s": stats(again),
              "down_s": stats(downs), "targets": {"up_s": 5.0, "down_s": 3.0}}
    print(f"lab.up   median {result['up_s']['median']:.2f}s (min {result['up_s']['min']:.2f}, "
          f"max {result['up_s']['max']:.2f}; target <= 5 s)")
    print(f"lab.down median {result['down_s']['median']:.2f}s (min {result['down_s']['min']:.2f}, "
          f"max {result['down_s']['max']:.2f}; target <= 3 s)")
    print(f"lab.up on a running lab: median {result['up_again_s']['median'] * 1000:.0f} ms")
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
