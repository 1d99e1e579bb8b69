"""What a release needs before its `serve` starts, as a table keyed by the first release that needs it.

From 0.7.0 a `serve` bound to a non-loopback address refuses to start without an `api_key`, which it reads only
from the top-level key of `$HOME/.config/ai-memory/config.toml` (there is no CLI flag, and
`AI_MEMORY_NO_CONFIG=1` stops the file being read); catch-up returns nothing to a peer unless the peer is trusted;
0.8.0 refuses unenrolled peers; 0.9.0 refuses unattested writes. These are documented requirements of the
product (docs/release-history.md, "Surface"), so the gate meets them rather than judging them. Releases before
0.7.0 get nothing from this table: what 0.6.x are asked to do does not change.

The key is random per campaign (per run directory), lives on each host in a mode-600 file beside the host agent
(which sends it as `x-api-key`) and in the serve's config file; it is never on a command line or in an artifact.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import SecretStr

from shipgate.client import calls
from shipgate.hosts import shell
from shipgate.target.service import ServiceError

if TYPE_CHECKING:  # the transport is only a type here
    from shipgate.hosts.ssh import HostAccess
    from shipgate.run.context import PhaseContext

KEY_FILE = calls.API_KEY_PATH  # on each host, relative to its home: the host agent reads it


@dataclass(frozen=True)
class Need:
    """What one release line adds to the serve's start-up, and the record that says so."""

    since: tuple[int, int, int]
    why: str
    api_key: bool = False
    env: Mapping[str, str] = field(default_factory=dict)


NEEDS: tuple[Need, ...] = (
    Need((0, 7, 0), "non-loopback bind refused without a config api_key (S5-C1); /sync/since default-deny (#239)",
         api_key=True, env={"AI_MEMORY_FED_SYNC_TRUST_PEER": "1"}),
    Need((0, 8, 0), "unenrolled peers refused with 401 peer_not_enrolled (#1789)",
         env={"AI_MEMORY_FED_REQUIRE_PEER_ENROLLMENT": "0"}),
    Need((0, 9, 0), "agent attestation required by default (#1751)",
         env={"AI_MEMORY_REQUIRE_AGENT_ATTESTATION": "0"}),
)

_VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class Startup:
    """The union of every need up to a release: what `ServeSpec` gets."""

    api_key: bool = False
    env: Mapping[str, str] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()


def for_version(version: str | None) -> Startup:
    """Every need whose `since` is at or below `version`; nothing for an unknown version (the reference peer,
    an unprobed target), which is what those targets were always asked."""
    m = _VERSION_RE.match(version or "")
    if not m:
        return Startup()
    v = tuple(int(g) for g in m.groups())
    hits = [n for n in NEEDS if v >= n.since]
    env: dict[str, str] = {}
    for n in hits:
        env.update(n.env)
    return Startup(api_key=any(n.api_key for n in hits), env=env, reasons=tuple(n.why for n in hits))


_KEYS: dict[str, SecretStr] = {}
_PLACED: set[tuple[str, str]] = set()
_LOCK = threading.Lock()


def campaign_key(campaign: str) -> SecretStr:
    """One random key per campaign (keyed by its run directory)."""
    with _LOCK:
        if campaign not in _KEYS:
            _KEYS[campaign] = SecretStr(secrets.token_urlsafe(32))
        return _KEYS[campaign]


def place_key(access: HostAccess, hosts: list[str], key: SecretStr, campaign: str) -> None:
    """Write the key file (mode 600, through stdin: never a command line; renamed into place, so an agent never
    reads half of it) on every host not yet given it. The lock is held throughout: phases start serves from
    several threads, and the first of them places the key before any serve of the campaign starts."""
    with _LOCK:
        for host in hosts:
            if (campaign, host) in _PLACED:
                continue
            tmp = f"{KEY_FILE}.tmp"
            res = access.run(host, f"mkdir -p {shell.WORKDIR} && (umask 077 && cat > {shell.word(tmp)}) && "
                                   f"mv -f {shell.word(tmp)} {shell.word(KEY_FILE)}",
                             timeout=15, stdin=key.get_secret_value())
            if not res.ok:
                raise ServiceError(host, f"cannot write the API key file: {res.describe()}")
            _PLACED.add((campaign, host))


def serve_options(ctx: PhaseContext) -> dict:
    """The `ServeSpec` keywords a phase passes for this target: the probed serve flags and, from 0.7.0, the
    release's start-up needs and the campaign's key (placed on every host first, so every client sends it)."""
    caps = ctx.capabilities
    opts: dict = {"flags": ctx.serve_flags}
    need = for_version(caps.version if caps else None)
    if need.env:
        opts["env"] = dict(need.env)
    if need.api_key:
        campaign = str(ctx.run_dir)
        key = campaign_key(campaign)
        place_key(ctx.access, sorted(ctx.inventory.hosts), key, campaign)
        opts["api_key"] = key
    return opts
