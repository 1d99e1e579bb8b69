"""Real ai-memory releases from crates.io: installed by version into a per-version cache, named `ai-memory@X.Y.Z`.

Layout of the cache (`cache_root()`, outside the repository, reused by every clone on the machine):
`ai-memory/<version>/bin/ai-memory` (what `cargo install --root` writes, with cargo's own `.crates2.json`),
`ai-memory/<version>/build.log` and `install.json` (our record), and `cargo-target/`, one cargo target
folder shared by every version, so only the first build is slow.

A build takes tens of minutes on two cores: a second install of the same version waits on the version's
lock instead of building twice, and cargo itself serialises builds that share the target folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from pydantic import BaseModel, ConfigDict, Field

from shipgate.evidence.atomic import write_text
from shipgate.run import signals

CRATE = "ai-memory"
DEFAULT_FEATURES: tuple[str, ...] = ("sal", "sal-postgres")
PINNED = "0.6.3"  # the release CI's real-binary lane builds and judges
# The newest release measured (docs/release-history-matrix.md): the real lane also starts it, as every start-up
# need of shipgate.target.startup applies to it (API key, trusted and unenrolled peers, attestation off).
LATEST = "0.10.0"
REAL_LANE = (PINNED, LATEST)
INDEX_URL = "https://index.crates.io/ai/-m/ai-memory"  # SHIPGATE_CRATES_INDEX overrides it (tests serve a copy)
SPEC_RE = re.compile(r"^ai-memory@(?P<version>\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)$")
VERSION_RE = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$")
BUILD_TIMEOUT_S = 3 * 3600.0
PROGRESS_EVERY_S = 30.0
_COMPILING_RE = re.compile(r"^\s*Compiling (\S+) v(\S+)")

Progress = Callable[[str], None]


class ReleaseError(RuntimeError):
    """A release cannot be installed or resolved; the message names the problem and its fix."""


class BuildInterrupted(ReleaseError):
    """SIGTERM or SIGINT stopped a build; cargo and its rustc were stopped with it."""


def _build_interrupted(signal_name: str) -> BuildInterrupted:
    return BuildInterrupted(f"interrupted by {signal_name}: the build was stopped")


def cache_root() -> Path:
    """`SHIPGATE_RELEASE_CACHE`, else /var/cache/shipgate for root, else ~/.cache/shipgate."""
    env = os.environ.get("SHIPGATE_RELEASE_CACHE")
    if env:
        return Path(env)
    return Path("/var/cache/shipgate") if os.geteuid() == 0 else Path.home() / ".cache" / "shipgate"


@dataclass(frozen=True)
class ReleasePaths:
    """Where one version lives in the cache."""

    version: str
    root: Path

    @property
    def dir(self) -> Path:
        return self.root / "ai-memory" / self.version

    @property
    def binary(self) -> Path:
        return self.dir / "bin" / "ai-memory"

    @property
    def log(self) -> Path:
        return self.dir / "build.log"

    @property
    def record(self) -> Path:
        return self.dir / "install.json"

    @property
    def target_dir(self) -> Path:
        return self.root / "cargo-target"


def paths(version: str, root: Path | None = None) -> ReleasePaths:
    return ReleasePaths(check_version(version), root or cache_root())


def check_version(version: str) -> str:
    if not VERSION_RE.match(version or ""):
        raise ReleaseError(f"{version!r} is not a release version (expected X.Y.Z, e.g. 0.6.3)")
    return version


def parse_spec(text: str) -> str | None:
    """The version of an `ai-memory@X.Y.Z` target spec, or None when `text` is not one (a path, say)."""
    m = SPEC_RE.match(text.strip())
    return m.group("version") if m else None


class InstallRecord(BaseModel):
    """What the gate knows of one installed release: provenance, build cost, and the binary's identity."""

    model_config = ConfigDict(extra="forbid")

    crate: str = CRATE
    version: str
    features: list[str]
    binary: Path
    sha256: str
    size_bytes: int
    reported_version: str = Field(description="first line of `ai-memory --version`")
    rustc: str | None = None
    toolchain: str | None = None
    built_by: str = Field(description="'shipgate' (this installer) or 'adopted' (found in the cache, built elsewhere)")
    started_at: datetime | None = None
    finished_at: datetime | None = None
    build_s: float | None = None
    log: Path | None = None


# -- crates.io ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Published:
    version: str
    yanked: bool
    rust_version: str | None
    features: tuple[str, ...]


def published_versions(timeout_s: float = 20.0) -> list[Published]:
    """Every version crates.io has of the crate, from the sparse index (one JSON line per version)."""
    url = os.environ.get("SHIPGATE_CRATES_INDEX", INDEX_URL)
    try:
        # the system's CA store (as cargo uses), not certifi's: a site's own TLS proxy CA lives only there
        res = httpx.get(url, timeout=timeout_s, follow_redirects=True, verify=ssl.create_default_context())
    except httpx.HTTPError as exc:
        raise ReleaseError(f"cannot read the crates.io index ({url}): {type(exc).__name__}: {exc}") from None
    if res.status_code != 200:
        raise ReleaseError(f"the crates.io index answered {res.status_code} for {url}")
    out = []
    for line in res.text.splitlines():
        if not line.strip():
            continue
        d = json.loads(line)
        feats = {**d.get("features", {}), **d.get("features2", {})}
        out.append(Published(d["vers"], bool(d.get("yanked")), d.get("rust_version"), tuple(sorted(feats))))
    return out


def published(version: str, timeout_s: float = 20.0) -> Published:
    versions = published_versions(timeout_s)
    for p in versions:
        if p.version == version:
            if p.yanked:
                raise ReleaseError(f"{CRATE} {version} is yanked on crates.io")
            return p
    have = ", ".join(p.version for p in versions if not p.yanked)
    raise ReleaseError(f"{CRATE} {version} is not on crates.io; published versions: {have}")


# -- the toolchain -----------------------------------------------------------------------------------------

def find_cargo() -> Path:
    """cargo on PATH, else rustup's `$CARGO_HOME/bin` or `~/.cargo/bin` (a non-login shell may lack them)."""
    found = shutil.which("cargo")
    candidates = [Path(found)] if found else []
    if os.environ.get("CARGO_HOME"):
        candidates.append(Path(os.environ["CARGO_HOME"]) / "bin" / "cargo")
    candidates.append(Path.home() / ".cargo" / "bin" / "cargo")
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    raise ReleaseError("cargo not found (not on PATH, nor in ~/.cargo/bin): run `./scripts/install-release VERSION` "
                       "(it installs Rust with rustup, then builds the release)")


def _rustc_version(cargo: Path, toolchain: str | None) -> str | None:
    rustc = cargo.parent / "rustc"
    argv = [str(rustc), *([f"+{toolchain}"] if toolchain else []), "--version"]
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None


def _numeric(version: str) -> tuple[int, ...]:
    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    return tuple(int(g or 0) for g in m.groups()) if m else (0,)


def choose_toolchain(cargo: Path, rust_version: str | None, progress: Progress) -> tuple[str | None, str | None]:
    """(toolchain, rustc --version) able to build a crate needing `rust_version`: the default when it is new
    enough, else an installed rustup toolchain that is, else one installed now with rustup."""
    default = _rustc_version(cargo, None)
    if rust_version is None or (default and _numeric(default) >= _numeric(rust_version)):
        return None, default
    rustup = cargo.parent / "rustup"
    if not rustup.is_file():
        raise ReleaseError(f"this release needs rustc >= {rust_version} but the toolchain is {default}; "
                           "install a newer Rust (rustup) and retry")
    listed = subprocess.run([str(rustup), "toolchain", "list"], capture_output=True, text=True, timeout=60,
                            check=False).stdout.split()
    for name in (n for n in listed if n[0].isdigit() or n.startswith(("stable", "beta"))):
        have = _rustc_version(cargo, name)
        if have and _numeric(have) >= _numeric(rust_version):
            return name, have
    progress(f"installing Rust {rust_version} with rustup (the default toolchain is {default})")
    res = subprocess.run([str(rustup), "toolchain", "install", rust_version, "--profile", "minimal"],
                         capture_output=True, text=True, timeout=1800, check=False)
    if res.returncode != 0:
        raise ReleaseError(f"`rustup toolchain install {rust_version}` failed: {res.stderr.strip()[-300:]}")
    return rust_version, _rustc_version(cargo, rust_version)


# -- the cache ---------------------------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def reported_version(binary: Path) -> str:
    """First line of `<binary> --version`; a binary that cannot say is not an installed release.

    It runs with a throwaway HOME: every release writes a default `~/.config/ai-memory/config.toml` on any
    invocation, `AI_MEMORY_NO_CONFIG=1` or not, and the operator's home is not the gate's to write."""
    try:
        with tempfile.TemporaryDirectory(prefix="shipgate-version-") as home:
            res = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60,
                                 check=False, env={**os.environ, "AI_MEMORY_NO_CONFIG": "1", "HOME": home})
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ReleaseError(f"{binary} --version failed: {exc}") from None
    line = (res.stdout.strip().splitlines() or [""])[0]
    if res.returncode != 0 or not line:
        raise ReleaseError(f"{binary} --version exited {res.returncode}: {(res.stderr or res.stdout).strip()[-200:]}")
    return line


def _cargo_features(p: ReleasePaths) -> list[str] | None:
    """The features cargo itself recorded for the install in this root (`.crates2.json`)."""
    try:
        installs = json.loads((p.dir / ".crates2.json").read_text())["installs"]
    except (OSError, ValueError, KeyError):
        return None
    for key, entry in installs.items():
        if key.startswith(f"{CRATE} {p.version} "):
            return sorted(entry.get("features", []))
    return None


def installed(version: str, features: tuple[str, ...] = DEFAULT_FEATURES, root: Path | None = None
              ) -> InstallRecord | None:
    """The record of a cached build of `version` with `features`, or None. A binary found without our record
    (built by hand into the cache) is adopted once cargo's own record confirms its features."""
    p = paths(version, root)
    if not p.binary.is_file():
        return None
    if p.record.is_file():
        rec = InstallRecord.model_validate_json(p.record.read_text())
        if sorted(rec.features) == sorted(features) and rec.sha256 == _sha256(p.binary):
            return rec
        return None
    cargo_features = _cargo_features(p)
    if cargo_features != sorted(features):
        return None
    rec = _record(p, list(cargo_features), built_by="adopted")
    write_text(p.record, rec.model_dump_json(indent=2) + "\n")
    return rec


def cached_versions(root: Path | None = None) -> list[str]:
    base = (root or cache_root()) / "ai-memory"
    found = [d.name for d in base.iterdir() if (d / "bin" / "ai-memory").is_file()] if base.is_dir() else []
    return sorted(found, key=_numeric)


def _record(p: ReleasePaths, features: list[str], **extra: object) -> InstallRecord:
    reported = reported_version(p.binary)
    if p.version not in reported.split():
        raise ReleaseError(f"{p.binary} reports {reported!r}, not version {p.version}")
    return InstallRecord(version=p.version, features=features, binary=p.binary, sha256=_sha256(p.binary),
                         size_bytes=p.binary.stat().st_size, reported_version=reported, **extra)


@contextlib.contextmanager
def _locked(p: ReleasePaths, progress: Progress) -> Iterator[None]:
    p.dir.mkdir(parents=True, exist_ok=True)
    with (p.dir / ".install.lock").open("w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(f"another install of {CRATE} {p.version} is running; waiting for it")
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield


# -- install -----------------------------------------------------------------------------------------------

def install(version: str, *, features: tuple[str, ...] = DEFAULT_FEATURES, force: bool = False,
            root: Path | None = None, progress: Progress = print) -> InstallRecord:
    """Install `ai-memory =version` with `features` into the cache (a no-op when it is there)."""
    p = paths(version, root)
    if not force and (rec := installed(version, features, root)) is not None:
        return rec
    info = published(version)
    missing = [f for f in features if f not in info.features]
    if missing:
        raise ReleaseError(f"{CRATE} {version} has no feature {', '.join(missing)} "
                           f"(its features: {', '.join(info.features)})")
    cargo = find_cargo()
    with _locked(p, progress):
        if not force and (rec := installed(version, features, root)) is not None:
            return rec  # built by the install we waited for
        toolchain, rustc = choose_toolchain(cargo, info.rust_version, progress)
        argv = [str(cargo), *([f"+{toolchain}"] if toolchain else []), "install", CRATE, "--version", f"={version}",
                "--locked", "--root", str(p.dir), *(["--features", ",".join(features)] if features else []),
                *(["--force"] if force else [])]
        env = {**os.environ, "CARGO_TARGET_DIR": str(p.target_dir), "CARGO_TERM_COLOR": "never",
               "PATH": f"{cargo.parent}:{os.environ.get('PATH', '')}"}
        started = datetime.now(UTC)
        progress(f"building {CRATE} {version} (features {','.join(features) or 'default'}; {rustc or 'rustc ?'}); "
                 f"log: {p.log}")
        code = _run_logged(argv, env, p.log, version, progress)
        if code != 0:
            tail = "\n".join(p.log.read_text(errors="replace").splitlines()[-15:])
            raise ReleaseError(f"cargo install {CRATE} {version} failed (exit {code}); log {p.log}:\n{tail}")
        finished = datetime.now(UTC)
        rec = _record(p, sorted(features), built_by="shipgate", rustc=rustc, toolchain=toolchain,
                      started_at=started, finished_at=finished,
                      build_s=round((finished - started).total_seconds(), 1), log=p.log)
        write_text(p.record, rec.model_dump_json(indent=2) + "\n")
        return rec


def _run_logged(argv: list[str], env: dict[str, str], log: Path, version: str, progress: Progress) -> int:
    """Run cargo with its output in `log`, printing a progress line every PROGRESS_EVERY_S seconds."""
    t0 = time.monotonic()
    state = {"compiled": 0, "last": ""}
    with log.open("w") as out, signals.raising(_build_interrupted):
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                start_new_session=True)
        done = threading.Event()

        def report() -> None:
            while not done.wait(PROGRESS_EVERY_S):
                progress(f"  {CRATE} {version}: {state['compiled']} crates compiled"
                         f"{' (now ' + state['last'] + ')' if state['last'] else ''}, {_mmss(time.monotonic() - t0)}")

        ticker = threading.Thread(target=report, daemon=True)
        ticker.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                out.flush()  # the log is what a user tails during a half-hour build
                if m := _COMPILING_RE.match(line):
                    state["compiled"] += 1
                    state["last"] = m.group(1)
            code = proc.wait(timeout=max(1.0, BUILD_TIMEOUT_S - (time.monotonic() - t0)))
        except BaseException:
            _kill_group(proc)
            raise
        finally:
            done.set()
    progress(f"  {CRATE} {version}: cargo finished (exit {code}) after {_mmss(time.monotonic() - t0)}")
    return code


def _kill_group(proc: subprocess.Popen) -> None:
    """An interrupted build leaves no cargo or rustc behind (they run in their own session)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def _mmss(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"


def resolve(spec: str, *, install_missing: bool = True, progress: Progress = print) -> InstallRecord:
    """`ai-memory@X.Y.Z` -> the cached binary of that release, installed first when missing."""
    version = parse_spec(spec)
    if version is None:
        raise ReleaseError(f"{spec!r} is not a release spec (expected ai-memory@X.Y.Z)")
    rec = installed(version)
    if rec is not None:
        return rec
    if not install_missing:
        raise ReleaseError(f"{CRATE} {version} is not installed: `invoke target.install {version}`")
    progress(f"{CRATE} {version} is not in the cache ({paths(version).dir}); installing it")
    return install(version, progress=progress)


def target_argument(text: str, progress: Progress = print) -> tuple[Path, InstallRecord | None]:
    """What `--target` names: `ai-memory@X.Y.Z` (the cached release, installed when missing) or a file path."""
    if parse_spec(text) is not None:
        rec = resolve(text, progress=progress)
        return rec.binary, rec
    if text.strip().startswith("ai-memory@"):
        raise ReleaseError(f"--target {text}: a release is named ai-memory@X.Y.Z (e.g. ai-memory@{PINNED})")
    path = Path(text).expanduser()
    if not path.is_file():
        raise ReleaseError(f"--target {text}: no such file (or name a release: ai-memory@{PINNED})")
    return path.absolute(), None
