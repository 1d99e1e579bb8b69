"""The release cache: specs, the crates.io index (served on loopback), cargo discovery, adoption and no-op installs.

The real build itself runs in `scripts/install-release` (CI's real-binary lane); these tests use what it left
in the cache and never reach crates.io.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipgate.target import releases

ROOT = Path(__file__).resolve().parents[2]
INDEX = ROOT / "tests" / "fixtures" / "crates-index" / "ai-memory"


@pytest.fixture
def index_server(monkeypatch) -> Iterator[str]:
    """The fixture copy of the crates.io index entry, on a loopback port."""
    body = INDEX.read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/ai/-m/ai-memory":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/ai/-m/ai-memory"
    monkeypatch.setenv("SHIPGATE_CRATES_INDEX", url)
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("spec", "version"), [
    ("ai-memory@0.6.3", "0.6.3"), ("ai-memory@0.10.0", "0.10.0"), ("ai-memory@0.6.0-alpha.2", "0.6.0-alpha.2"),
    (" ai-memory@0.6.3 ", "0.6.3"), ("/usr/local/bin/ai-memory", None), ("ai-memory@latest", None),
    ("ai-memory@0.6", None), ("other@0.6.3", None),
])
def test_a_release_spec_names_a_version_and_nothing_else(spec, version):
    assert releases.parse_spec(spec) == version


def test_a_bad_version_is_refused_by_name():
    with pytest.raises(releases.ReleaseError, match=r"'0\.6' is not a release version"):
        releases.paths("0.6")


def test_the_index_lists_every_published_version(index_server):
    versions = {p.version: p for p in releases.published_versions()}
    assert {"0.6.0", "0.6.3", "0.6.4", "0.10.0"} <= set(versions)
    assert versions["0.6.0-alpha.1"].yanked
    assert versions["0.6.3"].rust_version == "1.88"
    assert {"sal", "sal-postgres"} <= set(versions["0.6.3"].features)


def test_a_version_crates_io_lacks_gets_the_list_it_has(index_server, tmp_path):
    with pytest.raises(releases.ReleaseError) as err:
        releases.install("0.6.9", root=tmp_path, progress=lambda m: None)
    msg = str(err.value)
    assert "ai-memory 0.6.9 is not on crates.io; published versions:" in msg
    assert "0.6.3" in msg and "0.10.0" in msg and "0.6.0-alpha.1" not in msg  # yanked ones are not offered
    assert not (tmp_path / "ai-memory" / "0.6.9" / "bin").exists()


def test_a_yanked_version_is_refused(index_server, tmp_path):
    with pytest.raises(releases.ReleaseError, match=r"0\.6\.0-alpha\.1 is yanked"):
        releases.install("0.6.0-alpha.1", root=tmp_path, progress=lambda m: None)


def test_a_feature_the_release_lacks_is_named(index_server, tmp_path):
    with pytest.raises(releases.ReleaseError, match="has no feature no-such-feature"):
        releases.install("0.6.3", features=("no-such-feature",), root=tmp_path, progress=lambda m: None)


def test_an_unreachable_index_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("SHIPGATE_CRATES_INDEX", "http://127.0.0.1:9/ai/-m/ai-memory")
    with pytest.raises(releases.ReleaseError, match=r"cannot read the crates\.io index"):
        releases.install("0.6.3", root=tmp_path, progress=lambda m: None)


def test_no_cargo_is_one_line_naming_the_fix(tmp_path):
    """A non-login shell without ~/.cargo/bin on PATH still finds cargo; with none anywhere the error says how."""
    code = ("from shipgate.target import releases\n"
            "try:\n    releases.find_cargo()\nexcept releases.ReleaseError as e:\n    print(e)\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                         check=True, cwd="/")
    assert out.stdout.count("\n") == 1 and "./scripts/install-release" in out.stdout


def test_cargo_is_found_off_path_in_cargo_home(tmp_path):
    cargo = shutil.which("cargo") or str(Path.home() / ".cargo" / "bin" / "cargo")
    if not Path(cargo).is_file():
        pytest.fail("no cargo on this machine: ./scripts/install-release installs it")
    home = tmp_path / "cargo-home"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "cargo").symlink_to(cargo)
    code = "from shipgate.target import releases; print(releases.find_cargo())"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CARGO_HOME": str(home), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                         check=True, cwd="/")
    assert out.stdout.strip() == str(home / "bin" / "cargo")


def _pinned_binary() -> Path:
    rec = releases.installed(releases.PINNED)
    if rec is None:
        pytest.fail(f"ai-memory {releases.PINNED} is not in the release cache: "
                    f"`./scripts/install-release {releases.PINNED}` builds it")
    return rec.binary


def _fake_cache(tmp_path: Path, version: str, features: list[str]) -> Path:
    """A cache root holding the real pinned binary under `version`, with cargo's own install record."""
    binary = _pinned_binary()
    p = releases.paths(version, tmp_path)
    p.binary.parent.mkdir(parents=True)
    try:
        os.link(binary, p.binary)
    except OSError:
        shutil.copy2(binary, p.binary)
    installs = {f"ai-memory {version} (registry+https://github.com/rust-lang/crates.io-index)":
                {"version_req": f"={version}", "bins": ["ai-memory"], "features": features}}
    (p.dir / ".crates2.json").write_text(json.dumps({"installs": installs}))
    return p.binary


def test_a_binary_built_into_the_cache_by_hand_is_adopted_once_cargo_confirms_its_features(tmp_path):
    v = releases.PINNED
    binary = _fake_cache(tmp_path, v, ["sal", "sal-postgres"])
    rec = releases.installed(v, root=tmp_path)
    assert rec is not None and rec.built_by == "adopted" and rec.binary == binary
    assert rec.reported_version == f"ai-memory {v}" and len(rec.sha256) == 64
    assert releases.paths(v, tmp_path).record.is_file()
    assert releases.installed(v, root=tmp_path) == rec  # read back from the record the second time
    assert releases.cached_versions(tmp_path) == [v]


def test_a_cached_build_without_migrate_features_is_not_the_release_the_gate_asks_for(tmp_path):
    v = releases.PINNED
    _fake_cache(tmp_path, v, [])
    assert releases.installed(v, root=tmp_path) is None
    assert releases.installed(v, features=(), root=tmp_path) is not None


def test_a_binary_that_reports_another_version_is_refused(tmp_path):
    _fake_cache(tmp_path, "0.6.2", ["sal", "sal-postgres"])
    with pytest.raises(releases.ReleaseError, match=f"reports 'ai-memory {releases.PINNED}', not version 0.6.2"):
        releases.installed("0.6.2", root=tmp_path)


def test_a_replaced_binary_no_longer_matches_its_record(tmp_path):
    v = releases.PINNED
    binary = _fake_cache(tmp_path, v, ["sal", "sal-postgres"])
    assert releases.installed(v, root=tmp_path) is not None
    binary.unlink()
    shutil.copy2("/bin/true", binary)
    assert releases.installed(v, root=tmp_path) is None


def test_installing_what_the_cache_holds_runs_no_cargo(tmp_path, monkeypatch):
    v = releases.PINNED
    _fake_cache(tmp_path, v, ["sal", "sal-postgres"])
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SHIPGATE_CRATES_INDEX", "http://127.0.0.1:9/unreachable")
    said: list[str] = []
    rec = releases.install(v, root=tmp_path, progress=said.append)
    assert rec.version == v and said == []


def test_a_spec_resolves_to_the_cached_binary():
    rec = releases.resolve(f"ai-memory@{releases.PINNED}", install_missing=False)
    assert rec.binary == _pinned_binary()
    assert releases.reported_version(rec.binary) == f"ai-memory {releases.PINNED}"


def test_asking_a_release_its_version_writes_nothing_in_the_operators_home(tmp_path, monkeypatch):
    """The real binary writes a default config.toml under $HOME on every invocation, even `--version`."""
    monkeypatch.setenv("HOME", str(tmp_path))
    assert releases.reported_version(_pinned_binary()) == f"ai-memory {releases.PINNED}"
    assert list(tmp_path.iterdir()) == []


def test_a_missing_release_is_not_built_when_asked_not_to(tmp_path, monkeypatch):
    monkeypatch.setenv("SHIPGATE_RELEASE_CACHE", str(tmp_path))
    with pytest.raises(releases.ReleaseError, match=r"ai-memory 0\.6\.1 is not installed: `invoke target.install"):
        releases.resolve("ai-memory@0.6.1", install_missing=False)


def test_sigterm_during_a_build_stops_cargo_and_says_so(tmp_path, index_server):
    """The build runs in its own session; SIGTERM to the installer must not leave cargo or rustc behind.
    Offline (the registry cache the pinned release's build filled), into an empty cache root."""
    import signal
    import time

    env = {**os.environ, "SHIPGATE_RELEASE_CACHE": str(tmp_path), "CARGO_NET_OFFLINE": "true",
           "SHIPGATE_CRATES_INDEX": index_server, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "invoke", "target.install", releases.PINNED], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    where = releases.paths(releases.PINNED, tmp_path)
    cargo_pids: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while not (where.log.is_file() and "Compiling" in where.log.read_text(errors="replace")):
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "cargo never started compiling"
            time.sleep(0.2)  # poll interval
        cargo_pids = subprocess.run(["pgrep", "-f", str(where.dir)], capture_output=True, text=True,
                                    timeout=10).stdout.split()
        assert cargo_pids, "the build's cargo process was not found"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 2 and "interrupted by SIGTERM: the build was stopped" in out, out[-500:]
        assert not where.binary.exists()
        for pid in cargo_pids:
            assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    finally:  # whatever failed above, no build outlives the test
        for pid in [*cargo_pids, str(proc.pid)]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(pid), signal.SIGKILL)
        proc.wait(timeout=30)
