"""`curator --once` (contract 2.6): the cycle report of a curator that has no LLM client.

The reference peer emulates the default `semantic` tier, which has no LLM, so no operation is ever
attempted and the report carries exactly "no LLM client configured" -- plus the real program's
truncation note when a tier holds >= 4 x max_ops candidates (a latent gate failure on non-fresh DBs).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from refpeer.memory import now_ts
from refpeer.store import Store

NO_LLM = "no LLM client configured"


def cycle(store: Store, *, max_ops: int, dry_run: bool, include: list[str], exclude: list[str]) -> dict:
    started = now_ts()
    t0 = time.monotonic()
    cap = max_ops * 4
    candidates: list[dict] = []
    truncated = False
    for tier in ("mid", "long"):
        batch = store.list(tier=tier, limit=cap)
        truncated = truncated or len(batch) >= cap
        candidates.extend(batch)
    if include:
        candidates = [m for m in candidates if m["namespace"] in include]
    if exclude:
        candidates = [m for m in candidates if m["namespace"] not in exclude]
    eligible = [m for m in candidates
                if not m["namespace"].startswith("_") and len(m["content"].encode()) >= 50
                and "auto_tags" not in m["metadata"]]
    errors = [NO_LLM]
    if truncated:
        errors.append(f"collect_candidates truncated at cap={cap} per tier; consider raising max_ops_per_cycle "
                      "or paginating across cycles")
    return {
        "started_at": started, "completed_at": now_ts(), "cycle_duration_ms": int((time.monotonic() - t0) * 1000),
        "memories_scanned": len(candidates), "memories_eligible": len(eligible), "auto_tagged": 0,
        "contradictions_found": 0, "operations_attempted": 0, "operations_skipped_cap": 0,
        "autonomy": {"clusters_formed": 0, "memories_consolidated": 0, "memories_forgotten": 0,
                     "priority_adjustments": 0, "rollback_entries_written": 0, "errors": []},
        "errors": errors, "dry_run": dry_run,
    }


def run_curator(store: Store, args: argparse.Namespace, *, emit_json: bool) -> None:
    """--once prints one report; --daemon repeats every --interval-secs (clamped to 60..86400)."""
    while True:
        report = cycle(store, max_ops=args.max_ops, dry_run=args.dry_run, include=args.include_namespace,
                       exclude=args.exclude_namespace)
        if emit_json or args.once:
            sys.stdout.write(json.dumps(report, indent=2) + "\n")
        else:
            sys.stdout.write(f"curator: scanned {report['memories_scanned']}, eligible "
                             f"{report['memories_eligible']}, errors: {'; '.join(report['errors'])}\n")
        sys.stdout.flush()
        if not args.daemon:
            return
        time.sleep(min(max(args.interval_secs, 60), 86_400))
