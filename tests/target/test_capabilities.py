"""The capability probe reads a binary's own help: the real release and the reference peer alike."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shipgate.target import releases
from shipgate.target.capabilities import MARK, PROBED, parse_probe, probe_script

REFPEER = Path(sys.executable).parent / "ai-memory-ref"


def _probe(binary: Path):
    out = subprocess.run(["bash", "-c", probe_script(str(binary))], capture_output=True, text=True, timeout=120,
                         check=False)
    return parse_probe(out.stdout)


def test_clap_and_argparse_option_lines_are_both_read():
    text = "\n".join([
        f"{MARK} version", "ai-memory 9.9.9", f"{MARK} rc 0",
        f"{MARK} sub serve", "Options:", "      --host <HOST>", "  -p, --port <PORT>  [default: 9077]",
        "  -T TITLE, --title TITLE", "  --quorum-writes W     0 disables federation",
        "          --not-an-option-deep-in-prose", "  -h, --help", f"{MARK} rc 0",
        f"{MARK} sub migrate", "error: unrecognized subcommand 'migrate'", f"{MARK} rc 2",
        f"{MARK} sub mcp", "half an answer",  # no exit code: the probe was cut off
    ])
    caps = parse_probe(text)
    assert caps.version == "9.9.9"
    assert caps.subcommands == {"serve": ["host", "port", "quorum-writes", "title"]}
    assert caps.absent == ["migrate"]
    assert caps.has("serve", "--port") and not caps.has("serve", "tls-cert") and not caps.has("mcp")
    assert caps.lacks("migrate") == "ai-memory 9.9.9 has no `migrate` subcommand"
    assert caps.lacks("serve", "catchup-interval-secs") == "ai-memory 9.9.9: `serve` has no --catchup-interval-secs option"


def test_the_real_release_surface():
    rec = releases.installed(releases.PINNED)
    if rec is None:
        pytest.fail(f"`./scripts/install-release {releases.PINNED}` builds the release this test reads")
    caps = _probe(rec.binary)
    assert caps.version == releases.PINNED
    assert set(caps.subcommands) == set(PROBED)  # 0.6.3 built with sal has every subcommand the gate probes
    assert caps.has("serve", "catchup-interval-secs") and caps.has("serve", "quorum-timeout-ms")
    assert not caps.has("mcp", "profile")  # the MCP profiles came in 0.6.4
    assert caps.has("migrate", "from") and caps.has("migrate", "to") and caps.has("migrate", "batch")
    assert caps.has("store", "namespace") and caps.has("list", "offset")


def test_the_reference_peer_answers_the_same_probe():
    caps = _probe(REFPEER)
    assert caps.version_line is not None and caps.version
    for sub, flag in (("serve", "quorum-peers"), ("serve", "catchup-interval-secs"), ("store", "title"),
                      ("backup", "keep"), ("migrate", "to"), ("recall", "limit")):
        assert caps.has(sub, flag), (sub, flag)


def test_a_binary_that_is_not_ai_memory_has_no_surface(tmp_path):
    caps = _probe(Path("/bin/false"))
    assert caps.version_line is None and caps.subcommands == {} and caps.absent == sorted(PROBED)


def test_a_command_that_hangs_stops_the_probe_and_is_named(tmp_path):
    fake = tmp_path / "ai-memory"
    fake.write_text(f'#!/bin/sh\n[ "$1 $2" = "recall --help" ] && exec sleep 300\nexec {REFPEER} "$@"\n')
    fake.chmod(0o755)
    caps = _probe(fake)
    assert caps.hung == "recall --help"
    assert "store" in caps.subcommands and "migrate" not in caps.subcommands  # probed in order, then stopped
