#!/usr/bin/env python3
"""A misbehaving `ai-memory`: the reference peer, except for one hostile behaviour chosen by a mode.

The gate is only as good as its handling of a target that answers badly, so this program answers badly on
purpose: non-JSON where JSON is promised, JSON of the wrong types, binary garbage on stdout, a CLI that
hangs (ignoring SIGTERM), HTTP 500s, 10 MB bodies, a body that drips forever, and a program that echoes
every secret it is handed. Everything not named by the mode is the reference peer itself.

The lab installs a target by copying one file as `ai-memory` on each host, so the mode cannot come from
the file name: `write_launcher` writes a small executable that names this module and a *mode file*; the
mode is read at every invocation, so one lab serves many behaviours (SHIPGATE_HOSTILE, when set, wins).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MODES: dict[str, str] = {
    "clean": "the reference peer, unchanged",
    "cli_not_json": "store/recall/stats/curator --json print prose, not JSON",
    "cli_wrong_types": "every --json document, every MCP reply and the backup manifest have JSON of the wrong "
                       "types; the snapshot's file name has spaces",
    "cli_garbage": "--version and every --json command (and mcp) print binary garbage on stdout",
    "cli_hang": "`recall` never returns and ignores SIGTERM",
    "cli_flood": "`stats` prints garbage on stdout as fast as it can, forever",
    "http_500": "every /api/v1/memories request gets a 500 with an HTML body",
    "http_wrong_types": "writes get 201 with an id, the list returns rows whose id/title are lists and objects",
    "http_huge": "every /api/v1/memories answer is a 10 MB body that is not JSON",
    "http_drip": "every /api/v1/memories answer promises 1 MB and drips one byte a second, forever",
    "http_never_closes": "every /api/v1/memories answer has no length and its connection is never closed",
    "leak": "migrate, recall and curator echo their argv and environment (migrate puts the DSN in its JSON report)",
}
ENV_MODE = "SHIPGATE_HOSTILE"
GARBAGE = (b"\x00\x01\x02\x1b[31m\xff\xfe\xc3\x28</testcase>]]><script>alert(1)</script>&amp;\x07\x08\x0b\x0c"
           b"\xed\xa0\x80\r\n{\"id\":\n\x1b]0;pwned\x07\xef\xbf\xbe" * 40)
HUGE = 10 * 1024 * 1024
JSON_COMMANDS = ("store", "recall", "stats", "curator")

LAUNCHER = """#!{python}
# A hostile ai-memory for the ship-gate's proof tests (written by tests/proof/hostile_target.py).
import sys
sys.path.insert(0, {here!r})
import hostile_target
sys.exit(hostile_target.main(mode_file={mode_file!r}))
"""


def write_launcher(path: Path, mode_file: Path) -> Path:
    """An executable `--target` that runs this module with the mode named in `mode_file`."""
    path.write_text(LAUNCHER.format(python=sys.executable, here=str(Path(__file__).resolve().parent),
                                    mode_file=str(mode_file)))
    path.chmod(0o755)
    return path


def set_mode(mode_file: Path, mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown hostile mode {mode!r} (known: {', '.join(MODES)})")
    mode_file.write_text(mode + "\n")


def current_mode(mode_file: str | None) -> str:
    mode = os.environ.get(ENV_MODE, "").strip()
    if not mode and mode_file:
        try:
            mode = Path(mode_file).read_text().strip()
        except OSError:
            mode = ""
    return mode or "clean"


def _command(argv: list[str]) -> str | None:
    """The subcommand: the first word that is neither a flag nor a global flag's value."""
    skip = False
    for word in argv:
        if skip:
            skip = False
            continue
        if word in ("--db", "--agent-id", "--db-passphrase-file"):
            skip = True
            continue
        if not word.startswith("-"):
            return word
    return None


def _out(data: bytes | str) -> int:
    raw = data.encode() if isinstance(data, str) else data
    sys.stdout.buffer.write(raw)
    sys.stdout.buffer.flush()
    return 0


def _wrong_types(cmd: str) -> Any:
    return {
        "store": {"id": 12345, "title": ["not", "a", "string"], "tier": 7},
        "recall": {"memories": {"id": "an object, not a list"}, "count": "1"},
        "stats": {"total": "three", "by_tier": "none", "by_namespace": 5},
        "curator": {"errors": "none", "operations": {"a": 1}},
    }[cmd]


def _odd_backup(argv: list[str]) -> int:
    """A snapshot whose name has spaces and a manifest whose fields have the wrong types."""
    to = Path(argv[argv.index("--to") + 1]) if "--to" in argv else Path("backups")
    to.mkdir(parents=True, exist_ok=True)
    (to / "ai-memory-hostile snapshot of today.db").write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    (to / "ai-memory-hostile.manifest.json").write_text(json.dumps({"sha256": 5, "snapshot": None, "bytes": "many"}))
    return 0


def _mcp(reply: Any) -> int:
    """An MCP stdio loop whose replies are whatever `reply(request)` makes (bytes are written raw)."""
    for line in sys.stdin:
        try:
            req = json.loads(line)
        except ValueError:
            continue
        if not isinstance(req, dict) or "id" not in req:
            continue
        out = reply(req)
        _out(out if isinstance(out, bytes) else json.dumps(out) + "\n")
    return 0


def _hang() -> int:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    while True:
        time.sleep(3600)


def _flood() -> int:
    chunk = GARBAGE * 400
    try:
        while True:
            sys.stdout.buffer.write(chunk)
    except OSError:
        return 1


def _leak(argv: list[str]) -> int:
    """Echo everything: argv (after the shell put the DSN in it) and the environment, on both streams."""
    said = {"argv": argv, "env": dict(os.environ)}
    text = json.dumps(said)
    print(f"ai-memory: refusing to run, here is all I know: {text}", file=sys.stderr)
    if _command(argv) == "migrate":
        dsns = [w for w in argv if "://" in w]
        _out(json.dumps({"from_url": f"source {dsns[0] if dsns else ''}", "to_url": dsns[-1] if dsns else "",
                         "memories_read": 0, "memories_written": 0, "batches": 0, "dry_run": False,
                         "errors": [f"could not connect with {w}" for w in argv]}, indent=2) + "\n")
        return 1
    _out(f"ai-memory: here is all I know: {text}\n")
    return 1


# -- HTTP -----------------------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    mode = "clean"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/json", length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._body()
        self._route("POST")

    def _route(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/api/v1/health":
            self._send(200, b'{"status":"ok"}')
            return
        mode = self.mode
        if mode == "http_500":
            self._send(500, b"<html><body><h1>500 Internal Server Error</h1>panic: nil pointer</body></html>",
                       "text/html")
        elif mode == "http_wrong_types":
            if method == "POST":
                self._send(201, json.dumps({"id": os.urandom(8).hex(), "quorum_acks": "two"}).encode())
            else:
                rows = [{"id": ["a", "list"], "title": {"an": "object"}, "namespace": 7, "content": None}, 5, "x"]
                self._send(200, json.dumps({"memories": rows, "count": "three"}).encode())
        elif mode == "http_huge":
            self._send(201 if method == "POST" else 200, b"x" * HUGE, "text/plain")
        elif mode == "http_drip":
            self._drip(201 if method == "POST" else 200)
        elif mode == "http_never_closes":
            self._never_close(201 if method == "POST" else 200)
        else:
            self._send(404, b'{"error":"not found"}')

    def _drip(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(1024 * 1024))
        self.end_headers()
        self.wfile.flush()
        try:
            while True:
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(1)  # the hostile behaviour itself: one byte a second
        except OSError:
            return


    def _never_close(self, status: int) -> None:
        """A body delimited by the end of the connection, which never comes (until the client gives up)."""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"id": os.urandom(8).hex(), "memories": []}).encode())
        self.wfile.flush()
        self.close_connection = True
        try:
            while self.rfile.read(1):
                pass
        except OSError:
            return


def _serve(argv: list[str], mode: str) -> int:
    host, port = "127.0.0.1", 9077
    for i, word in enumerate(argv):
        if word == "--host" and i + 1 < len(argv):
            host = argv[i + 1]
        elif word == "--port" and i + 1 < len(argv):
            port = int(argv[i + 1])
    handler = type("Handler", (_Handler,), {"mode": mode})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    server.serve_forever()
    return 0


def main(argv: list[str] | None = None, mode_file: str | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    mode = current_mode(mode_file)
    if mode not in MODES:
        print(f"hostile_target: unknown mode {mode!r}", file=sys.stderr)
        return 2
    cmd = _command(argv)
    wants_json = "--json" in argv
    if ("--help" in argv or "-h" in argv) and mode != "cli_hang":
        from refpeer.cli import main as refpeer_main

        return refpeer_main(argv)  # its misbehaviour is in what it does, not in how it describes itself
    if mode == "leak" and cmd in ("migrate", "recall", "curator"):
        return _leak(argv)
    if mode == "cli_garbage" and ("--version" in argv or (cmd in JSON_COMMANDS and wants_json) or cmd == "mcp"):
        return _out(GARBAGE)
    if mode == "cli_not_json" and cmd in JSON_COMMANDS and wants_json:
        return _out(f"OK! {cmd} went fine. Have a nice day.\n")
    if mode == "cli_wrong_types":
        if cmd in JSON_COMMANDS and wants_json:
            return _out(json.dumps(_wrong_types(cmd)) + "\n")
        if cmd == "mcp":
            return _mcp(lambda req: {"jsonrpc": "2.0", "id": req["id"], "result": ["not", "an", "object"]})
        if cmd == "backup":
            return _odd_backup(argv)
    if mode == "cli_hang" and cmd == "recall":
        return _hang()
    if mode == "cli_flood" and cmd == "stats":
        return _flood()
    if mode.startswith("http_") and cmd == "serve":
        return _serve(argv, mode)
    from refpeer.cli import main as refpeer_main

    return refpeer_main(argv)


if __name__ == "__main__":
    sys.exit(main())
