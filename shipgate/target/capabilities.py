"""What a target can do, read from the binary itself: its version and, per subcommand, the flags its `--help` lists.

Releases differ (no `--catchup-interval-secs` before 0.6.1, no MCP `--profile` before 0.6.4, no `migrate`
without `--features sal`), so the gate asks the binary rather than trusting a version table: the serve
command line and the checks follow what the probe found, and a check the target cannot support is
`skipped` with the reason. The probe reads clap's help (the real product) and argparse's (the reference
peer) alike: an option line starts with `--name`, `-x, --name` or `-x VALUE, --name`.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# Subcommands the gate drives or may drive; each is probed with `<sub> --help` (exit 0 = present).
PROBED: tuple[str, ...] = ("serve", "mcp", "store", "update", "recall", "search", "get", "list", "delete",
                           "promote", "link", "consolidate", "stats", "export", "import", "backup", "restore",
                           "curator", "migrate")
MARK = "@@shipgate-probe@@"
ANSWER_S = 10.0  # a `--help` answers at once; longer is a hang, and the probe stops there
HUNG = (124, 137)
_OPTION_RE = re.compile(r"^\s{1,8}(?:-[A-Za-z0-9](?: \S+)?, )?--([A-Za-z0-9][A-Za-z0-9-]*)")
_VERSION_RE = re.compile(r"\b(\d+\.\d+\.\d+(?:[-.][0-9A-Za-z.-]+)?)\b")


class Capabilities(BaseModel):
    """The surface of one target binary as its own help describes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version_line: str | None = Field(None, description="first line of `ai-memory --version`")
    subcommands: dict[str, list[str]] = Field(
        default_factory=dict, description="each probed subcommand that exists -> the long flags its --help lists")
    absent: list[str] = Field(default_factory=list, description="probed subcommands the binary does not have")
    hung: str | None = Field(None, description="the command that did not answer, which stopped the probe")

    @property
    def version(self) -> str | None:
        m = _VERSION_RE.search(self.version_line or "")
        return m.group(1) if m else None

    def has(self, subcommand: str, flag: str | None = None) -> bool:
        flags = self.subcommands.get(subcommand)
        if flags is None:
            return False
        return flag is None or flag.lstrip("-") in flags

    def lacks(self, subcommand: str, flag: str | None = None) -> str | None:
        """Why a check needing `subcommand [flag]` cannot run on this target, or None when it can."""
        if self.has(subcommand, flag):
            return None
        who = self.version_line or "the target"
        if subcommand not in self.subcommands:
            return f"{who} has no `{subcommand}` subcommand"
        return f"{who}: `{subcommand}` has no --{flag.lstrip('-') if flag else ''} option"


def probe_script(binary: str = "ai-memory") -> str:
    """One shell command printing `--version` and every probed `--help`, delimited, for one SSH round trip."""
    b = shlex.quote(binary)
    limit = f"timeout -k 2 {ANSWER_S:g}"
    # a command that does not answer within ANSWER_S stops the probe (rc 124/137): a hung binary costs seconds
    stop = "r=$?; echo " + MARK + " rc $r; case $r in 124|137) exit 0;; esac"
    parts = [f"echo {MARK} version; {limit} {b} --version 2>&1 </dev/null; {stop}"]
    parts += [f"echo {MARK} sub {s}; {limit} {b} {s} --help 2>&1 </dev/null; {stop}" for s in PROBED]
    return "cd /tmp && export AI_MEMORY_NO_CONFIG=1 && " + "; ".join(parts)


def parse_probe(output: str) -> Capabilities:
    """The Capabilities in the output of `probe_script`. A section without its exit code is treated as absent."""
    sections: list[tuple[str, list[str], int | None]] = []
    name: str | None = None
    lines: list[str] = []
    for line in output.splitlines():
        if line.startswith(MARK):
            words = line[len(MARK):].split()
            if words[:1] == ["rc"] and name is not None:
                sections.append((name, lines, int(words[1]) if len(words) > 1 and words[1].isdigit() else None))
                name, lines = None, []
            elif words[:1] == ["version"]:
                name, lines = "--version", []
            elif words[:1] == ["sub"] and len(words) > 1:
                name, lines = words[1], []
            continue
        if name is not None:
            lines.append(line)
    version_line: str | None = None
    subs: dict[str, list[str]] = {}
    absent: list[str] = []
    hung: str | None = None
    for sec, body, rc in sections:
        if rc in HUNG:
            hung = "--version" if sec == "--version" else f"{sec} --help"
            break
        if sec == "--version":
            version_line = next((ln.strip() for ln in body if ln.strip()), None) if rc == 0 else None
        elif rc == 0:
            subs[sec] = sorted({m.group(1) for ln in body if (m := _OPTION_RE.match(ln))} - {"help"})
        else:
            absent.append(sec)
    return Capabilities(version_line=version_line, subcommands=subs, absent=sorted(absent), hung=hung)


def probe_host(access: Any, host: str, *, timeout: float = 120) -> Capabilities | None:
    """Probe the `ai-memory` installed on `host` (one SSH round trip). None when a command hung: the probe
    could not read the surface, so the gate assumes the whole of it and the phases judge the hang itself."""
    res = access.run(host, probe_script(), timeout=timeout)
    if res.error:
        raise RuntimeError(f"capability probe on {host}: {res.error}")
    caps = parse_probe(res.stdout)
    return None if caps.hung else caps
