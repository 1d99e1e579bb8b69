#!/usr/bin/env python3
"""Row-by-row, field-by-field comparison of two memory stores, run on the host that holds them (stdlib only).

A store is a SQLite file (`sqlite:PATH`, the product's own schema) or a Postgres dump (`pg:DIR`: the
`memories.jsonl` and `links.jsonl` that `psql -A -t -c "SELECT row_to_json(m) FROM memories m"` writes).
Lines are split on "\n" only: JSON escapes it, but not U+2028 and other separators str.splitlines() knows.
Rows are matched on (namespace, title), the key `migrate` upserts on; every field of a memory is compared,
and the links as (source_id, target_id, relation). Timestamps are compared as instants to the microsecond:
Postgres' TIMESTAMPTZ keeps microseconds, the SQLite store nanoseconds, so a finer difference is the
destination's resolution, not a lost write. A link's `created_at` is not compared (0.7.0's migrate stamps
the time of the copy).

    migrationdiff.py compare EXPECTED OBSERVED   -> {"rows": {...}, "links": {...}}
    migrationdiff.py shape STORE                 -> what the store holds (namespaces, tiers, links, texts)
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
import unicodedata
from datetime import datetime
from pathlib import Path
from typing import Any

FIELDS = ("id", "tier", "content", "tags", "priority", "confidence", "source", "access_count", "metadata")
INSTANTS = ("created_at", "updated_at", "expires_at", "last_accessed_at")
SAMPLE = 50
IDS = 200
RESOLUTION_NS = 1000
_TS = re.compile(r"^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d(?::?\d\d)?)?$")


def instant_ns(value: Any) -> int | str | None:
    """RFC 3339 text -> nanoseconds since the epoch; None stays None; anything unparsable is returned as is."""
    if value is None:
        return None
    m = _TS.match(str(value).strip())
    if not m:
        return str(value)
    day, clock, frac, zone = m.groups()
    if zone in (None, "Z"):
        zone = "+00:00"
    elif ":" not in zone:
        zone = f"{zone[:3]}:{zone[3:] or '00'}"
    base = datetime.fromisoformat(f"{day}T{clock}{zone}")
    return int(base.timestamp()) * 1_000_000_000 + int((frac or "0").ljust(9, "0"))


def _json(value: Any, default: Any) -> Any:
    if value is None:
        return default
    if isinstance(value, (bytes, str)):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def normalise(row: dict) -> dict:
    out = {k: row.get(k) for k in ("namespace", "title", *FIELDS)}
    tags = _json(row.get("tags"), [])
    out["tags"] = sorted(tags, key=str) if isinstance(tags, list) else tags
    out["metadata"] = _json(row.get("metadata"), {})
    for key in INSTANTS:
        out[key] = instant_ns(row.get(key))
        out[f"raw_{key}"] = row.get(key)
    return out


def load(spec: str) -> tuple[list[dict], list[tuple[str, str, str]]]:
    """All memories (normalised) and links of a store given as sqlite:PATH or pg:DIR."""
    kind, _, where = spec.partition(":")
    if kind == "sqlite":
        conn = sqlite3.connect(f"file:{where}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        try:
            rows = [normalise(dict(r)) for r in conn.execute("SELECT * FROM memories")]
            links = [(r["source_id"], r["target_id"], r["relation"])
                     for r in conn.execute("SELECT source_id, target_id, relation FROM memory_links")]
        finally:
            conn.close()
        return rows, links
    if kind == "pg":
        base = Path(where)
        rows = [normalise(json.loads(line)) for line in (base / "memories.jsonl").read_text(encoding="utf-8").split("\n") if line]
        links = []
        for line in (base / "links.jsonl").read_text(encoding="utf-8").split("\n"):
            if line:
                d = json.loads(line)
                links.append((d["source_id"], d["target_id"], d["relation"]))
        return rows, links
    raise SystemExit(f"migrationdiff: a store is sqlite:PATH or pg:DIR (got {spec!r})")


def _same(field: str, a: Any, b: Any) -> bool:
    if field in INSTANTS and isinstance(a, int) and isinstance(b, int):
        return abs(a - b) < RESOLUTION_NS
    return a == b


def _clip(a: Any, b: Any) -> tuple[Any, Any]:
    """Long strings in the sample: their sizes and the text around the first difference, not 64 KB twice."""
    if not (isinstance(a, str) and isinstance(b, str)) or max(len(a), len(b)) <= 240:
        return a, b
    at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))

    def view(s: str) -> dict:
        return {"chars": len(s), "bytes": len(s.encode("utf-8", "surrogatepass")), "first_difference_at": at,
                "around": s[max(0, at - 60):at + 60]}

    return view(a), view(b)


def compare_rows(expected: list[dict], observed: list[dict]) -> dict:
    exp = {(r["namespace"], r["title"]): r for r in expected}
    obs: dict[tuple[str, str], dict] = {}
    duplicates = 0
    for r in observed:
        key = (r["namespace"], r["title"])
        duplicates += key in obs
        obs.setdefault(key, r)
    sample: list[dict] = []
    identical = differing = fields = 0
    for key, ra in exp.items():
        rb = obs.get(key)
        if rb is None:
            continue
        bad = [f for f in (*FIELDS, *INSTANTS) if not _same(f, ra.get(f), rb.get(f))]
        if not bad:
            identical += 1
            continue
        differing += 1
        fields += len(bad)
        for f in bad:
            if len(sample) < SAMPLE:
                shown = f"raw_{f}" if f in INSTANTS else f
                e, o = _clip(ra.get(shown), rb.get(shown))
                sample.append({"id": str(ra.get("id")), "field": f, "expected": e, "observed": o})
    missing = sorted(str(exp[k].get("id")) for k in exp if k not in obs)
    unexpected = sorted(str(obs[k].get("id")) for k in obs if k not in exp)
    return {"compared": len(exp), "identical": identical, "observed_rows": len(observed),
            "duplicate_keys": duplicates, "missing": missing[:IDS], "missing_count": len(missing),
            "unexpected": unexpected[:IDS], "unexpected_count": len(unexpected), "mismatched": sample,
            "mismatched_rows": differing, "mismatched_fields": fields}


def compare_links(expected: list[tuple[str, str, str]], observed: list[tuple[str, str, str]]) -> dict:
    exp, obs = set(expected), set(observed)

    def as_dicts(links: set) -> list[dict]:
        return [{"source_id": s, "target_id": t, "relation": r} for s, t, r in sorted(links)[:SAMPLE]]

    return {"compared": len(exp), "identical": len(exp & obs), "observed_links": len(observed),
            "missing_count": len(exp - obs), "unexpected_count": len(obs - exp),
            "missing": as_dicts(exp - obs), "unexpected": as_dicts(obs - exp)}


def shape(rows: list[dict], links: list) -> dict:
    """What a seeded store holds, so a reader sees the seed crossed the caps with the texts that break."""
    def count(key: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in rows:
            out[str(r.get(key))] = out.get(str(r.get(key)), 0) + 1
        return dict(sorted(out.items()))

    texts = [str(r.get("content") or "") for r in rows]
    return {"rows": len(rows), "links": len(set(links)), "namespaces": count("namespace"), "tiers": count("tier"),
            "priorities": len({r.get("priority") for r in rows}), "sources": len({r.get("source") for r in rows}),
            "with_tags": sum(bool(r.get("tags")) for r in rows),
            "with_metadata": sum(bool(set(r.get("metadata") or {}) - {"agent_id", "scope"}) for r in rows),
            "non_ascii": sum(not t.isascii() for t in texts),
            "non_bmp": sum(any(ord(c) > 0xFFFF for c in t) for t in texts),
            "combining": sum(any(unicodedata.combining(c) for c in t) for t in texts),
            "multi_line": sum("\n" in t for t in texts),
            "max_content_bytes": max((len(t.encode()) for t in texts), default=0),
            "over_8_kib": sum(len(t.encode()) > 8192 for t in texts)}


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "compare":
        (er, el), (orows, ol) = load(argv[1]), load(argv[2])
        doc = {"rows": compare_rows(er, orows), "links": compare_links(el, ol)}
    elif len(argv) == 2 and argv[0] == "shape":
        doc = shape(*load(argv[1]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    json.dump(doc, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
