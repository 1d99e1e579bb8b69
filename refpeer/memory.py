"""The memory record: timestamps, defaults and validation with the real program's exact messages.

Everything here is pure (no I/O) so the CLI, the HTTP server, the MCP server and the migrator agree on one
set of rules (contract 3.4, 5.1-5.4). Validation raises `ValidationError(status, message)`: 400 for a rule
violation, 422 for a value of the wrong JSON shape (axum's deserialization rejection).
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from refpeer.errors import ValidationError

TIERS: tuple[str, ...] = ("short", "mid", "long")
TIER_RANK: dict[str, int] = {"short": 0, "mid": 1, "long": 2}
TIER_TTL_SECS: dict[str, int | None] = {"short": 21_600, "mid": 604_800, "long": None}
TOUCH_EXTEND_SECS: dict[str, int | None] = {"short": 3_600, "mid": 86_400, "long": None}
VALID_SOURCES: tuple[str, ...] = (
    "user", "claude", "hook", "api", "cli", "import", "consolidation", "system", "chaos", "notify",
)
VALID_SCOPES: tuple[str, ...] = ("private", "team", "unit", "org", "collective")
ON_CONFLICT: tuple[str, ...] = ("error", "merge", "version")

MAX_TITLE_LEN = 512
MAX_CONTENT_BYTES = 65_536
MAX_NAMESPACE_LEN = 512
MAX_NAMESPACE_DEPTH = 8
MAX_SOURCE_LEN = 64
MAX_TAG_LEN = 128
MAX_TAGS = 50
MAX_ID_LEN = 128
MAX_AGENT_ID_LEN = 128
MAX_METADATA_BYTES = 65_536
MAX_METADATA_DEPTH = 32
MAX_TTL_SECS = 365 * 86_400
I32_MIN, I32_MAX = -(2**31), 2**31 - 1
I64_MIN, I64_MAX = -(2**63), 2**63 - 1

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$"
)
_AGENT_ID_CHARS = re.compile(r"^[A-Za-z0-9_\-:@./]+$")
_ID_CHARS = re.compile(r"^[A-Za-z0-9_:.@\-]+$")

_last_ns = 0
_clock_lock = threading.Lock()


def _fmt_ns(epoch_ns: int) -> str:
    secs, frac = divmod(epoch_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}+00:00"


def _next_ns() -> int:
    global _last_ns
    with _clock_lock:
        ns = time.time_ns()
        if ns <= _last_ns:
            ns = _last_ns + 1
        _last_ns = ns
        return ns


def now_ts() -> str:
    """Now in chrono's RFC3339 style ('...T16:37:48.081200143+00:00'), strictly increasing in-process.

    A strictly increasing clock keeps the catch-up cursor ('updated_at > since', string compare) from
    skipping two rows written in the same nanosecond.
    """
    return _fmt_ns(_next_ns())


def ts_in(seconds: float, base: str | None = None) -> str:
    """The timestamp `seconds` after `base` (default now), same style as now_ts()."""
    if base is None:
        base_ns = time.time_ns()
    else:
        dt = parse_rfc3339(base)
        if dt is None:
            raise ValueError(f"not an RFC3339 timestamp: {base}")
        base_ns = to_epoch_ns(dt, base)
    return _fmt_ns(base_ns + int(seconds * 1_000_000_000))


def to_epoch_ns(dt: datetime, original: str | None = None) -> int:
    """Nanoseconds since the epoch, keeping digits past the microsecond from the original string."""
    whole = int(dt.replace(microsecond=0).timestamp()) * 1_000_000_000
    frac = dt.microsecond * 1000
    if original:
        m = _RFC3339.match(original)
        if m and m.group(7):
            frac = int(m.group(7).ljust(9, "0"))
    return whole + frac


def parse_rfc3339(value: str) -> datetime | None:
    """Parse like chrono's parse_from_rfc3339 (fractions up to 9 digits, Z or +hh:mm); None if invalid."""
    if not isinstance(value, str):
        return None
    m = _RFC3339.match(value)
    if not m:
        return None
    year, month, day, hour, minute, sec = (int(m.group(i)) for i in range(1, 7))
    frac = (m.group(7) or "0").ljust(6, "0")[:6]
    off = m.group(8)
    try:
        if off in ("Z", "z"):
            tz = UTC
        else:
            sign = 1 if off[0] == "+" else -1
            oh, om = int(off[1:3]), int(off[4:6])
            if oh > 23 or om > 59:
                return None
            from datetime import timezone

            tz = timezone(sign * timedelta(hours=oh, minutes=om))
        return datetime(year, month, day, hour, minute, min(sec, 59), int(frac), tzinfo=tz)
    except ValueError:
        return None


def canonical_ts(value: str) -> str:
    """Re-render a valid RFC3339 string in UTC chrono style (what the server stores for expires_at)."""
    dt = parse_rfc3339(value)
    if dt is None:
        raise ValidationError(400, f"expires_at is not valid RFC3339: '{value}'")
    return _fmt_ns(to_epoch_ns(dt.astimezone(UTC), value))


def is_expired(mem: dict, now: str | None = None) -> bool:
    exp = mem.get("expires_at")
    return bool(exp) and exp <= (now or now_ts())


_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _clean(s: str) -> bool:
    """No control characters other than newline and tab (Rust's char::is_control)."""
    return _CONTROL.search(s) is None


def _bad(msg: str) -> ValidationError:
    return ValidationError(400, msg)


# ---- rule checks (400) -------------------------------------------------------------------------


def validate_title(title: str) -> None:
    t = title.strip()
    if not t:
        raise _bad("title cannot be empty")
    if len(t) > MAX_TITLE_LEN:
        raise _bad(f"title exceeds max length of {MAX_TITLE_LEN} characters")
    if not _clean(t):
        raise _bad("title contains invalid characters")


def validate_content(content: str) -> None:
    if not content.strip():
        raise _bad("content cannot be empty")
    if len(content.encode()) > MAX_CONTENT_BYTES:
        raise _bad(f"content exceeds max size of {MAX_CONTENT_BYTES} bytes")
    if not _clean(content):
        raise _bad("content contains invalid characters")


def validate_namespace(ns: str) -> None:
    t = ns.strip()
    if not t:
        raise _bad("namespace cannot be empty")
    if len(t) > MAX_NAMESPACE_LEN:
        raise _bad(f"namespace exceeds max length of {MAX_NAMESPACE_LEN} characters")
    if "\\" in t or "\0" in t:
        raise _bad("namespace cannot contain backslashes or null bytes")
    if " " in t:
        raise _bad("namespace cannot contain spaces (use hyphens or underscores)")
    if not _clean(t) or "\n" in t or "\t" in t:
        raise _bad("namespace contains invalid control characters")
    if t.startswith("/"):
        raise _bad("namespace cannot start with '/' (normalize input first)")
    if t.endswith("/"):
        raise _bad("namespace cannot end with '/' (normalize input first)")
    segs = t.split("/")
    if any(not s for s in segs):
        raise _bad("namespace cannot contain empty segments (e.g. '//')")
    if any(s in (".", "..") for s in segs):
        raise _bad("namespace segments '.' and '..' are not allowed")
    if len(segs) > MAX_NAMESPACE_DEPTH:
        raise _bad(f"namespace depth {len(segs)} exceeds max of {MAX_NAMESPACE_DEPTH}")


def validate_source(source: str) -> None:
    if not source.strip():
        raise _bad("source cannot be empty")
    if len(source.encode()) > MAX_SOURCE_LEN:
        raise _bad(f"source exceeds max length of {MAX_SOURCE_LEN} bytes")
    if source not in VALID_SOURCES:
        raise _bad(f"invalid source '{source}' — must be one of: {', '.join(VALID_SOURCES)}")


def validate_tags(tags: list[str]) -> None:
    if len(tags) > MAX_TAGS:
        raise _bad(f"too many tags (max {MAX_TAGS})")
    for tag in tags:
        t = tag.strip()
        if not t:
            raise _bad("tags cannot contain empty strings")
        if len(t.encode()) > MAX_TAG_LEN:
            raise _bad(f"tag '{t[:20]}...' exceeds max length of {MAX_TAG_LEN} bytes")
        if not _clean(t):
            raise _bad("tag contains invalid characters")


def validate_priority(priority: int) -> None:
    if not 1 <= priority <= 10:
        raise _bad(f"priority must be between 1 and 10 (got {priority})")


def _fmt_float(x: float) -> str:
    """Rust's `{}` for f64: integral values print without a fraction."""
    if math.isfinite(x) and x == int(x):
        return str(int(x))
    return repr(x)


def validate_confidence(confidence: float) -> None:
    if not math.isfinite(confidence):
        raise _bad("confidence must be a finite number")
    if not 0.0 <= confidence <= 1.0:
        raise _bad(f"confidence must be between 0.0 and 1.0 (got {_fmt_float(confidence)})")


def validate_expires_at(value: str, *, allow_past: bool = False) -> None:
    dt = parse_rfc3339(value)
    if dt is None:
        raise _bad(f"expires_at is not valid RFC3339: '{value}'")
    if not allow_past and dt < datetime.now(UTC):
        raise _bad("expires_at is in the past")


def validate_ttl_secs(ttl: int) -> None:
    if ttl <= 0:
        raise _bad(f"ttl_secs must be positive (got {ttl})")
    if ttl > MAX_TTL_SECS:
        raise _bad("ttl_secs exceeds maximum of 1 year")


def _json_depth(v: Any) -> int:
    if isinstance(v, dict):
        return 1 + max((_json_depth(x) for x in v.values()), default=0)
    if isinstance(v, list):
        return 1 + max((_json_depth(x) for x in v), default=0)
    return 0


def validate_metadata(metadata: Any) -> None:
    if not isinstance(metadata, dict):
        raise _bad("metadata must be a JSON object")
    size = len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_METADATA_BYTES:
        raise _bad(f"metadata exceeds max size of {MAX_METADATA_BYTES} bytes (got {size})")
    depth = _json_depth(metadata)
    if depth > MAX_METADATA_DEPTH:
        raise _bad(f"metadata nesting depth exceeds limit of {MAX_METADATA_DEPTH} (got {depth})")


def agent_id_problem(agent_id: str) -> str | None:
    """Why `agent_id` is not a valid agent id (None when it is)."""
    if not agent_id:
        return "agent_id cannot be empty"
    if len(agent_id.encode()) > MAX_AGENT_ID_LEN:
        return f"agent_id exceeds max length of {MAX_AGENT_ID_LEN} bytes"
    for c in agent_id:
        if not _AGENT_ID_CHARS.match(c):
            return f"agent_id contains invalid character '{c}' (allowed: alphanumeric, _-:@./)"
    return None


def validate_agent_id(agent_id: str, *, label: str = "agent_id") -> None:
    problem = agent_id_problem(agent_id)
    if problem:
        raise _bad(f"invalid {label}: {problem}")


def validate_scope(scope: str) -> None:
    if not scope:
        raise _bad("scope cannot be empty")
    if scope not in VALID_SCOPES:
        raise _bad(f"invalid scope '{scope}' — must be one of: {', '.join(VALID_SCOPES)}")


def validate_on_conflict(value: str) -> None:
    if value not in ON_CONFLICT:
        raise _bad(f"invalid on_conflict '{value}' — must be one of: {', '.join(ON_CONFLICT)}")


def validate_tier(tier: str) -> None:
    """CLI flavour of the tier check (HTTP rejects an unknown tier with 422 instead)."""
    if tier not in TIERS:
        raise _bad(f"invalid tier: {tier} (use short, mid, long)")


def validate_id(id_: str) -> None:
    if not id_.strip():
        raise _bad("id cannot be empty")
    if len(id_.encode()) > MAX_ID_LEN:
        raise _bad(f"id exceeds max length of {MAX_ID_LEN} bytes")
    if not _clean(id_):
        raise _bad("id contains invalid characters")
    if ".." in id_ or "/" in id_ or "\\" in id_ or not _ID_CHARS.match(id_):
        raise _bad("id contains characters outside the allowed set [A-Za-z0-9_:.@-]")


# ---- shape checks (422, like serde behind axum's Json extractor) -------------------------------

_SHAPE = "Failed to deserialize the JSON body into the target type: "


def _type_name(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return f"boolean `{str(v).lower()}`"
    if isinstance(v, int):
        return f"integer `{v}`"
    if isinstance(v, float):
        return f"floating point `{v}`"
    if isinstance(v, str):
        return f'string "{v}"'
    if isinstance(v, list):
        return "sequence"
    return "map"


def shape_error(field: str, value: Any, expected: str) -> ValidationError:
    return ValidationError(422, f"{_SHAPE}{field}: invalid type: {_type_name(value)}, expected {expected}")


def _want_str(body: dict, field: str, *, required: bool = False, default: str | None = None,
              nullable: bool = True) -> str | None:
    if field not in body:
        if required:
            raise ValidationError(422, f"{_SHAPE}missing field `{field}`")
        return default
    v = body[field]
    if v is None and nullable and not required:
        return default
    if not isinstance(v, str):
        raise shape_error(field, v, "a string")
    return v


def _want_int(body: dict, field: str, lo: int, hi: int, *, default: int | None,
              nullable: bool = True) -> int | None:
    if field not in body or (body[field] is None and nullable):
        return default
    v = body[field]
    bits = 32 if hi == I32_MAX else 64
    if isinstance(v, bool) or not isinstance(v, int):
        raise shape_error(field, v, f"i{bits}")
    if not lo <= v <= hi:
        raise ValidationError(422, f"{_SHAPE}{field}: invalid value: integer `{v}`, expected i{bits}")
    return v


def _want_float(body: dict, field: str, *, default: float) -> float:
    if field not in body:
        return default
    v = body[field]
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise shape_error(field, v, "f64")
    return float(v)


def _want_tags(body: dict, field: str = "tags") -> list[str]:
    if field not in body:
        return []
    v = body[field]
    if not isinstance(v, list):
        raise shape_error(field, v, "a sequence")
    for item in v:
        if not isinstance(item, str):
            raise shape_error(field, item, "a string")
    return list(v)


def _want_tier(body: dict, default: str = "mid") -> str:
    if "tier" not in body or body["tier"] is None:
        return default
    v = body["tier"]
    if not isinstance(v, str):
        raise shape_error("tier", v, "a string")
    if v not in TIERS:
        raise ValidationError(422, f"{_SHAPE}tier: unknown variant `{v}`, expected one of `short`, `mid`, `long`")
    return v


# ---- building records ---------------------------------------------------------------------------


def new_id() -> str:
    return str(uuid.uuid4())


def new_memory(
    title: str,
    content: str,
    *,
    tier: str = "mid",
    namespace: str = "global",
    tags: list[str] | tuple[str, ...] = (),
    priority: int = 5,
    confidence: float = 1.0,
    source: str = "api",
    metadata: dict | None = None,
    expires_at: str | None = None,
    ttl_secs: int | None = None,
    agent_id: str | None = None,
    scope: str | None = None,
    validate: bool = True,
) -> dict:
    """A fresh wire-shape Memory (contract 5.1): UUIDv4 id, created_at = updated_at = now, tier TTL.

    Expiry: explicit `expires_at`, else now + `ttl_secs`, else the tier default. `agent_id` overwrites
    any `metadata.agent_id` the caller sent (provenance is the server's to stamp).
    """
    tags = [t.strip() for t in tags]
    metadata = dict(metadata or {})
    if validate:
        validate_title(title)
        validate_content(content)
        validate_namespace(namespace)
        validate_source(source)
        validate_tags(tags)
        validate_priority(priority)
        validate_confidence(confidence)
        if expires_at is not None:
            validate_expires_at(expires_at)
        if ttl_secs is not None:
            validate_ttl_secs(ttl_secs)
        validate_metadata(metadata)
        if scope is not None:
            validate_scope(scope)
        validate_tier(tier)
    now_ns = _next_ns()
    now = _fmt_ns(now_ns)
    if expires_at is not None:
        exp: str | None = canonical_ts(expires_at)
    elif ttl_secs is not None:
        exp = _fmt_ns(now_ns + ttl_secs * 1_000_000_000)
    else:
        ttl = TIER_TTL_SECS[tier]
        exp = _fmt_ns(now_ns + ttl * 1_000_000_000) if ttl else None
    if agent_id is not None:
        metadata["agent_id"] = agent_id
    if scope is not None:
        metadata["scope"] = scope
    mem = {
        "id": new_id(), "tier": tier, "namespace": namespace.strip(), "title": title.strip(),
        "content": content, "tags": tags, "priority": priority, "confidence": confidence,
        "source": source, "access_count": 0, "created_at": now, "updated_at": now,
        "metadata": metadata,
    }
    if exp is not None:
        mem["expires_at"] = exp
    return mem


def parse_create(body: Any, *, header_agent_id: str | None = None,
                 default_on_conflict: str = "error") -> tuple[dict, str]:
    """Validate a `POST /api/v1/memories` body (CreateMemory) into (memory, on_conflict).

    Shape problems raise 422 (checked first, as axum rejects before the handler runs), rule
    violations 400 in the real validate_create order. The agent id precedence is body, header,
    then `anonymous:req-<8 hex>`.
    """
    if not isinstance(body, dict):
        raise ValidationError(422, f"{_SHAPE}invalid type: {_type_name(body)}, expected struct CreateMemory")
    title = _want_str(body, "title", required=True)
    content = _want_str(body, "content", required=True)
    tier = _want_tier(body)
    namespace = _want_str(body, "namespace", default="global", nullable=False)
    tags = _want_tags(body)
    priority = _want_int(body, "priority", I32_MIN, I32_MAX, default=5, nullable=False)
    confidence = _want_float(body, "confidence", default=1.0)
    source = _want_str(body, "source", default="api", nullable=False)
    metadata = body.get("metadata", {})
    expires_at = _want_str(body, "expires_at")
    ttl_secs = _want_int(body, "ttl_secs", I64_MIN, I64_MAX, default=None)
    agent_id = _want_str(body, "agent_id")
    scope = _want_str(body, "scope")
    on_conflict = _want_str(body, "on_conflict")
    assert title is not None and content is not None and namespace is not None and source is not None
    validate_title(title)
    validate_content(content)
    validate_namespace(namespace)
    validate_source(source)
    validate_tags(tags)
    validate_priority(priority or 0)
    validate_confidence(confidence)
    if expires_at is not None:
        validate_expires_at(expires_at)
    if ttl_secs is not None:
        validate_ttl_secs(ttl_secs)
    if metadata is None:
        metadata = {}
    validate_metadata(metadata)
    if on_conflict is not None:
        validate_on_conflict(on_conflict)
    if scope is not None:
        validate_scope(scope)
    resolved = agent_id if agent_id is not None else header_agent_id
    if resolved is not None:
        validate_agent_id(resolved)
    else:
        resolved = f"anonymous:req-{uuid.uuid4().hex[:8]}"
    mem = new_memory(
        title, content, tier=tier, namespace=namespace, tags=tags, priority=priority or 5,
        confidence=confidence, source=source, metadata=metadata, expires_at=expires_at,
        ttl_secs=ttl_secs, agent_id=resolved, scope=scope, validate=False,
    )
    return mem, on_conflict or default_on_conflict


def parse_memory(obj: Any) -> dict:
    """Validate a full Memory (sync push, import, catch-up) and return it in wire shape.

    Raises 422 for a wrong shape and 400 for what `validate_memory` rejects; a past expires_at is
    allowed (historical data).
    """
    if not isinstance(obj, dict):
        raise ValidationError(422, f"{_SHAPE}invalid type: {_type_name(obj)}, expected struct Memory")
    id_ = _want_str(obj, "id", required=True)
    title = _want_str(obj, "title", required=True)
    content = _want_str(obj, "content", required=True)
    tier = _want_tier(obj)
    namespace = _want_str(obj, "namespace", default="global", nullable=False)
    tags = _want_tags(obj)
    priority = _want_int(obj, "priority", I32_MIN, I32_MAX, default=5, nullable=False)
    confidence = _want_float(obj, "confidence", default=1.0)
    source = _want_str(obj, "source", default="api", nullable=False)
    access_count = _want_int(obj, "access_count", I64_MIN, I64_MAX, default=0, nullable=False)
    created_at = _want_str(obj, "created_at", required=True)
    updated_at = _want_str(obj, "updated_at", required=True)
    last_accessed_at = _want_str(obj, "last_accessed_at")
    expires_at = _want_str(obj, "expires_at")
    metadata = obj.get("metadata", {})
    if metadata is None:
        metadata = {}
    assert id_ is not None and title is not None and content is not None
    assert namespace is not None and source is not None and created_at is not None and updated_at is not None
    validate_id(id_)
    validate_title(title)
    validate_content(content)
    validate_namespace(namespace)
    validate_source(source)
    validate_tags(tags)
    validate_priority(priority or 0)
    validate_confidence(confidence)
    if (access_count or 0) < 0:
        raise _bad("access_count cannot be negative")
    if parse_rfc3339(created_at) is None:
        raise _bad("created_at is not valid RFC3339")
    if parse_rfc3339(updated_at) is None:
        raise _bad("updated_at is not valid RFC3339")
    if last_accessed_at is not None and parse_rfc3339(last_accessed_at) is None:
        raise _bad("last_accessed_at is not valid RFC3339")
    if expires_at is not None and parse_rfc3339(expires_at) is None:
        raise _bad("expires_at is not valid RFC3339")
    validate_metadata(metadata)
    mem = {
        "id": id_, "tier": tier, "namespace": namespace, "title": title, "content": content,
        "tags": tags, "priority": priority, "confidence": confidence, "source": source,
        "access_count": access_count, "created_at": created_at, "updated_at": updated_at,
        "metadata": metadata,
    }
    if last_accessed_at is not None:
        mem["last_accessed_at"] = last_accessed_at
    if expires_at is not None:
        mem["expires_at"] = expires_at
    return mem


def parse_update(body: Any) -> dict:
    """Validate a `PUT /api/v1/memories/{id}` body (UpdateMemory): only present fields, past expiry allowed."""
    if not isinstance(body, dict):
        raise ValidationError(422, f"{_SHAPE}invalid type: {_type_name(body)}, expected struct UpdateMemory")
    out: dict[str, Any] = {}
    for f in ("title", "content", "namespace", "source", "expires_at"):
        v = _want_str(body, f)
        if v is not None:
            out[f] = v
    if body.get("tier") is not None:
        out["tier"] = _want_tier(body)
    if body.get("tags") is not None:
        out["tags"] = _want_tags(body)
    if body.get("priority") is not None:
        out["priority"] = _want_int(body, "priority", I32_MIN, I32_MAX, default=None)
    if body.get("confidence") is not None:
        out["confidence"] = _want_float(body, "confidence", default=1.0)
    if body.get("metadata") is not None:
        out["metadata"] = body["metadata"]
    if "title" in out:
        validate_title(out["title"])
        out["title"] = out["title"].strip()
    if "content" in out:
        validate_content(out["content"])
    if "namespace" in out:
        validate_namespace(out["namespace"])
    if "source" in out:
        validate_source(out["source"])
    if "tags" in out:
        validate_tags(out["tags"])
    if "priority" in out:
        validate_priority(out["priority"])
    if "confidence" in out:
        validate_confidence(out["confidence"])
    if "expires_at" in out:
        validate_expires_at(out["expires_at"], allow_past=True)
        out["expires_at"] = canonical_ts(out["expires_at"])
    if "metadata" in out:
        validate_metadata(out["metadata"])
    return out
