"""Seeded defects: switchable reproductions of ai-memory's historical bug classes.

`AI_MEMORY_REF_DEFECTS=name,name` turns them on (all off by default). An unknown name is a startup error
that lists the valid ones, so a typo never silently runs the clean peer. Each entry says what breaks and
which gate phase must catch it (refpeer/README.md has the same table).
"""

from __future__ import annotations

import os
from typing import NamedTuple

from refpeer.errors import DefectConfigError

ENV = "AI_MEMORY_REF_DEFECTS"


class Defect(NamedTuple):
    name: str
    breaks: str
    phase: str


DEFECTS: dict[str, Defect] = {d.name: d for d in (
    Defect("fanout_abort", "post-quorum fan-out cancelled (r14 / PR #309): each write reaches the leader and "
           "only one peer (a catch-up loop, when on, repairs the gap one interval later)", "2"),
    Defect("quorum_w1", "quorum silently counted as W=1: 201 right after the local commit, even with every "
           "peer down", "2"),
    Defect("quorum_hang", "no fast 503: with quorum unreachable the write keeps retrying the peers for 120 s "
           "instead of answering within the quorum timeout", "2"),
    Defect("quorum_timeout_ignored", "the quorum timeout bounds nothing: each peer attempt waits 10 s (a client "
           "default) and the write waits for every attempt and its retry, so silent peers (SIGSTOP, DROP) hold it "
           "about 20 s; refused peers still answer 503 in about 250 ms", "2"),
    Defect("list_ignores_limit", "GET /api/v1/memories returns at most 20 rows whatever `limit` says", "2"),
    Defect("no_catchup", "the pull catch-up loop never runs: a peer that missed writes never gets them", "2"),
    Defect("backup_no_manifest", "backup writes the snapshot but no manifest", "1"),
    Defect("backup_corrupt", "the manifest's sha256 is taken over the live DB, not the snapshot, so it does "
           "not match the snapshot", "1"),
    Defect("skew_cursor", "catch-up asks for rows since <local wall clock - interval> instead of its stored "
           "cursor, so a restarted or clock-skewed peer misses rows", "4"),
    Defect("ack_before_durable", "POST answers 201 (quorum_acks=W) from an in-memory write-behind buffer, "
           "before the local commit and before any fan-out; a SIGKILL of the leader loses acknowledged "
           "writes on every node", "4"),
    Defect("mcp_core_profile", "mcp advertises only the 6 core-family tools (store, recall, search, list, get, capabilities) instead of the 43 of 0.6.3", "1"),
    Defect("migrate_truncate", "migrate silently truncates content (counts still match)", "3"),
    Defect("migrate_duplicates", "a migrate re-run inserts duplicate rows instead of upserting", "3"),
    Defect("migrate_page_cap_500", "migrate reads only the first page (500 rows) of a paged SQLite source and "
           "reports what it read, with no error (the class of #298's migrate cursor data loss)", "3"),
    Defect("migrate_drops_links", "real 0.6.0-0.6.4: migrate copies the memories and none of their links "
           "(fixed by 0.7.0's link-walk, F6)", "3"),
    Defect("migrate_mangles_unicode", "migrate writes every character outside the Basic Multilingual Plane "
           "(emoji) as U+FFFD, as a utf8mb3-style column would; counts and ASCII rows unchanged", "3"),
    Defect("update_title_not_replicated", "real 0.6.3: a PUT that changes the title is acknowledged (200) but "
           "peers keep the old row (their insert_if_newer keys on the new title, collides on the id and skips "
           "it), by fan-out and by catch-up alike", "2"),
    Defect("bulk_tied_timestamps", "real 0.6.3: every row of one bulk request gets the same updated_at, so a "
           "catch-up page (<= 500 rows, cursor updated_at > last) that ends inside the tie loses the rest of "
           "the tied rows for good", "2"),
    Defect("update_not_fanned_out", "v0.6.0 (commit 9dc244a5, #319/#323): PUT /api/v1/memories/{id} commits "
           "locally and answers 200 but pushes nothing to the peers, which keep the old content and tags", "2"),
    Defect("delete_not_fanned_out", "v0.6.0 (same commit): DELETE /api/v1/memories/{id} deletes locally only; "
           "the peers keep serving the row", "2"),
    Defect("promote_not_fanned_out", "v0.6.0 (same commit): POST /api/v1/memories/{id}/promote changes the tier "
           "locally only; the peers keep the old tier", "2"),
    Defect("link_not_fanned_out", "v0.6.0-v0.6.1 (CHANGELOG v0.6.2 #325 create_link fanout): POST /api/v1/links "
           "links locally only; the peers never get the link", "2"),
    Defect("consolidate_not_fanned_out", "v0.6.0-v0.6.1 (CHANGELOG v0.6.2 #326 consolidate fanout): POST "
           "/api/v1/consolidate creates the merged row and deletes its sources locally only (201); the peers "
           "never get the new row and keep the sources", "2"),
    Defect("bulk_fanout_drops_row", "v0.6.1 (CHANGELOG v0.6.2 #368/#369, the '499/500 rows' case): one row of "
           "each bulk request is never pushed to one peer (its single fan-out failed, no retry, no terminal "
           "catch-up batch); quorum is still met through the other peer", "2"),
    Defect("fanout_no_retry", "v0.6.0-v0.6.1 (CHANGELOG v0.6.2 #368 'fanout retry'): a fan-out push that fails "
           "is only logged, never retried, so one refused attempt leaves the row missing on that peer for good "
           "(without catch-up)", "2"),
    Defect("list_cap_200", "v0.6.0-v0.6.1 (CHANGELOG v0.6.2 #363 'List cap 200 -> 1000'): GET /api/v1/memories "
           "clamps `limit` to 200 without saying so; a namespace of more rows needs offsets", "2"),
    Defect("pg_list_cap_1000", "real 0.6.3: the Postgres backend's list silently caps at 1000 rows, so "
           "migrate from Postgres reads and writes 1000 of more rows with no error, exit 0", "3"),
    Defect("recall_hangs_offline", "real 0.6.3: CLI recall at the default (semantic) tier never answers on a "
           "host without egress (deadlock after the model download fails); -T keyword works", "1"),
)}

_active: frozenset[str] | None = None


def parse(value: str | None) -> frozenset[str]:
    """The defect names in a comma list; raises DefectConfigError naming any unknown one."""
    names = frozenset(n.strip() for n in (value or "").split(",") if n.strip())
    unknown = sorted(names - DEFECTS.keys())
    if unknown:
        raise DefectConfigError(
            f"unknown defect(s) in {ENV}: {', '.join(unknown)} (valid: {', '.join(sorted(DEFECTS))})")
    return names


def active() -> frozenset[str]:
    """The defects switched on for this process (read once from the environment)."""
    global _active
    if _active is None:
        _active = parse(os.environ.get(ENV))
    return _active


def enabled(name: str) -> bool:
    """Whether defect `name` is on. Asking for a name that is not in the registry is a programming error."""
    if name not in DEFECTS:
        raise KeyError(f"not a seeded defect: {name}")
    return name in active()


def reset() -> None:
    """Forget the cached set (tests that change the environment in-process)."""
    global _active
    _active = None
