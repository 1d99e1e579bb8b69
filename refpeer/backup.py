"""`backup` and `restore` (contract 2.5): VACUUM INTO snapshots with a sha256 manifest, rotated by mtime."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import sqlite3
import time
from pathlib import Path

from refpeer import VERSION, defects
from refpeer.errors import RefPeerError
from refpeer.memory import now_ts


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def backup(db: str, to: str, *, keep: int = 48) -> tuple[dict, str, str | None]:
    """Snapshot `db` into `to`; returns (manifest, snapshot path, manifest path or None).

    Fails when a snapshot with the same second-resolution name exists (like the real program).
    Seeded defects: backup_no_manifest writes none; backup_corrupt hashes the live DB instead.
    """
    from refpeer.store import Store

    os.makedirs(to, exist_ok=True)
    ts = time.strftime("%Y-%m-%dT%H%M%SZ", time.gmtime())
    stem = f"ai-memory-{ts}"
    snap = os.path.join(to, f"{stem}.db")
    man_path = os.path.join(to, f"{stem}.manifest.json")
    if os.path.exists(snap):
        raise RefPeerError(f"snapshot already exists: {snap}")
    store = Store(db)
    try:
        with store.lock:
            store.conn.execute("VACUUM INTO ?", (snap,))
    except sqlite3.Error as e:
        raise RefPeerError(f"backup failed: {e}") from e
    finally:
        store.close()
    digest = sha256_file(db if defects.enabled("backup_corrupt") else snap)
    manifest = {
        "snapshot": os.path.basename(snap), "sha256": digest, "bytes": os.path.getsize(snap),
        "source_db": db, "version": VERSION, "created_at": now_ts(),
    }
    written: str | None = None
    if not defects.enabled("backup_no_manifest"):
        tmp = man_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2)
            f.write("\n")
        os.replace(tmp, man_path)
        written = man_path
    if keep > 0:
        rotate(to, keep)
    return manifest, snap, written


def rotate(to: str, keep: int) -> list[str]:
    """Delete every `ai-memory-*.db` after the newest `keep` (by mtime) and its manifest; returns the deleted."""
    snaps = sorted(glob.glob(os.path.join(glob.escape(to), "ai-memory-*.db")), key=os.path.getmtime, reverse=True)
    gone = []
    for old in snaps[keep:]:
        stem = old[: -len(".db")]
        for p in (old, f"{stem}.manifest.json"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(p)
        gone.append(old)
    return gone


def restore(db: str, src: str, *, skip_verify: bool = False) -> dict:
    """Verify `src` (a snapshot, or the newest in a directory) against its manifest, move the current DB
    aside to `<db>.pre-restore-<ts>.db`, then copy the snapshot in."""
    if os.path.isdir(src):
        snaps = sorted(glob.glob(os.path.join(glob.escape(src), "ai-memory-*.db")), key=os.path.getmtime)
        if not snaps:
            raise RefPeerError(f"no ai-memory-*.db snapshot in {src}")
        src = snaps[-1]
    if not os.path.isfile(src):
        raise RefPeerError(f"snapshot not found: {src}")
    digest = sha256_file(src)
    verified = False
    if not skip_verify:
        man_path = src[: -len(".db")] + ".manifest.json" if src.endswith(".db") else src + ".manifest.json"
        if not os.path.isfile(man_path):
            raise RefPeerError(f"manifest not found: {man_path} (use --skip-verify to restore anyway)")
        try:
            with open(man_path, encoding="utf-8") as f:
                manifest = json.load(f)
        except (OSError, ValueError) as e:
            raise RefPeerError(f"cannot read manifest {man_path}: {e}") from e
        if manifest.get("sha256") != digest:
            raise RefPeerError(f"sha256 mismatch: manifest says {manifest.get('sha256')}, snapshot is {digest}")
        verified = True
    try:
        check = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
        try:
            ok = check.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            check.close()
    except sqlite3.Error as e:
        raise RefPeerError(f"snapshot is not a readable SQLite database: {e}") from e
    if ok != "ok":
        raise RefPeerError(f"snapshot failed integrity_check: {ok}")
    pre = None
    if os.path.exists(db):
        with contextlib.suppress(sqlite3.Error):
            c = sqlite3.connect(db)
            c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            c.close()
        pre = f"{db}.pre-restore-{time.strftime('%Y-%m-%dT%H%M%SZ', time.gmtime())}.db"
        os.replace(db, pre)
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(db + suffix)
    tmp = db + ".restore-tmp"
    shutil.copyfile(src, tmp)
    os.replace(tmp, db)
    return {"restored_from": src, "db": db, "pre_restore": pre, "sha256": digest, "verified": verified}
