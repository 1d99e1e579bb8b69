"""`invoke target.*`: real ai-memory releases from crates.io, installed into the gate's release cache.

Exit codes: 0 done; 2 the task could not do its job (no cargo, an unknown version, a failed build).
"""

from __future__ import annotations

import time

from invoke import Collection, task
from invoke.exceptions import Exit

from shipgate.run.console import Console
from shipgate.target import releases


@task(help={
    "version": "the release to install, e.g. 0.6.3 (`invoke target.list --published` shows what crates.io has)",
    "features": "cargo features, comma list (default sal,sal-postgres: `migrate` exists only with them)",
    "force": "rebuild even when the cache holds the release",
})
def install(c, version, features=None, force=False):
    """Install ai-memory VERSION from crates.io into the release cache (a no-op when it is there).

    Runs `cargo install ai-memory --version =VERSION --locked --features sal,sal-postgres --root
    <cache>/ai-memory/VERSION` with one cargo target folder shared by every version, printing progress
    every 30 s and keeping the build log beside the binary. The cache is /var/cache/shipgate for root,
    ~/.cache/shipgate otherwise, or $SHIPGATE_RELEASE_CACHE. `--target ai-memory@VERSION` then names it.
    """
    feats = tuple(f for f in (features or ",".join(releases.DEFAULT_FEATURES)).split(",") if f)
    console = Console()
    started = time.monotonic()
    try:
        before = None if force else releases.installed(version, feats)
        rec = before or releases.install(version, features=feats, force=force, progress=console)
    except releases.ReleaseError as exc:
        raise Exit(f"target.install: {exc}", code=2) from None
    if before is not None:
        built = f"built {rec.finished_at:%Y-%m-%d} in {rec.build_s:.0f} s" if rec.build_s else rec.built_by
        print(f"{releases.CRATE} {version} is already installed ({built}): {rec.binary}")
    else:
        print(f"{releases.CRATE} {version} installed in {releases._mmss(time.monotonic() - started)}: {rec.binary}")
    print(f"  reports {rec.reported_version!r}; features {','.join(rec.features) or 'default'}; "
          f"sha256 {rec.sha256[:16]}…; log {rec.log or '(none: adopted)'}")


@task(name="list", help={"published": "also list every version crates.io has (reads the crates.io index)"})
def list_releases(c, published=False):
    """List the releases in the cache (and, with --published, on crates.io)."""
    root = releases.cache_root()
    cached = releases.cached_versions(root)
    print(f"release cache: {root}")
    for v in cached:
        rec = releases.installed(v)
        what = (f"features {','.join(rec.features)}, {rec.built_by}" if rec else
                "present, but not with the default features (sal,sal-postgres)")
        print(f"  ai-memory@{v:10} {what}")
    if not cached:
        print("  (empty: `invoke target.install 0.6.3`)")
    if published:
        try:
            versions = releases.published_versions()
        except releases.ReleaseError as exc:
            raise Exit(f"target.list: {exc}", code=2) from None
        print("on crates.io: " + ", ".join(p.version + (" (yanked)" if p.yanked else "") for p in versions))


ns = Collection("target", install, list_releases)
