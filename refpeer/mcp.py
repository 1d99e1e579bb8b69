"""`ai-memory-ref mcp`: the MCP server over stdio, line-delimited JSON-RPC 2.0 (contract 2.7).

One JSON object per stdin line, one response line on stdout; blank lines ignored; requests without an id
(or with id null) are notifications and get no response; EOF checkpoints the store and exits 0. Protocol
errors use JSON-RPC codes (-32700 parse, -32600 invalid request, -32601 unknown method or tool, -32602 bad
params: the tool's inputSchema is enforced); tool failures are MCP results with `isError: true`.
Diagnostics go to stderr only: stdout carries nothing but responses.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from typing import Any, TextIO

from refpeer.mcp_catalog import TOOLS, TOOLS_VERSION, V063_TOOLS, core_tools

PROTOCOL_VERSION = "2024-11-05"
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,), "array": (list,),
    "object": (dict,), "null": (type(None),),
}

PROMPTS = [
    {"name": "recall-first",
     "description": "System prompt for AI clients: recall before answering, store what you learn.",
     "arguments": [{"name": "namespace", "description": "Optional namespace to scope recall", "required": False}]},
    {"name": "memory-workflow", "description": "Quick reference card for the memory tools."},
]


def _prompt_text(name: str, args: dict[str, Any]) -> str | None:
    if name == "recall-first":
        hint = f' Scope recall to namespace "{args["namespace"]}".' if args.get("namespace") else ""
        return ("You have a persistent memory (ai-memory). At the start of a conversation call memory_recall "
                "with the topic; store corrections and lessons with memory_store (tier long, high priority); "
                "a title+namespace that already exists updates that memory instead of duplicating it." + hint)
    if name == "memory-workflow":
        return ("STORE memory_store(title, content, tier, namespace, tags) | RECALL memory_recall(context) | "
                "SEARCH memory_search(query) | LIST memory_list(namespace, tier) | GET memory_get(id) | "
                "LINK memory_link(source_id, target_id, relation) | PROMOTE memory_promote(id)")
    return None


def _type_ok(value: Any, spec: Any) -> bool:
    types = spec if isinstance(spec, list) else [spec]
    for t in types:
        if t in ("integer", "number") and isinstance(value, bool):
            continue
        if t == "number" and isinstance(value, float) and value != value:
            continue
        if isinstance(value, _JSON_TYPES.get(t, ())):
            return True
    return False


def check_args(tool: str, schema: dict[str, Any], args: dict[str, Any]) -> str | None:
    """The first way `args` violates the tool's inputSchema, or None. Unknown keys are ignored."""
    props: dict[str, Any] = schema.get("properties", {})
    for key in schema.get("required", []):
        if args.get(key) is None:
            return f"{tool}: missing required parameter '{key}'"
    for key, value in args.items():
        spec = props.get(key)
        if spec is None or (value is None and key not in schema.get("required", [])
                            and "null" not in (spec.get("type") if isinstance(spec.get("type"), list) else [])):
            continue
        if "type" in spec and not _type_ok(value, spec["type"]):
            return f"{tool}: parameter '{key}' must be of type {spec['type']}"
        if "enum" in spec and value not in spec["enum"]:
            return f"{tool}: parameter '{key}' must be one of {spec['enum']} (got {json.dumps(value)})"
        if isinstance(value, int | float) and not isinstance(value, bool):
            if "minimum" in spec and value < spec["minimum"]:
                return f"{tool}: parameter '{key}' must be >= {spec['minimum']} (got {value})"
            if "maximum" in spec and value > spec["maximum"]:
                return f"{tool}: parameter '{key}' must be <= {spec['maximum']} (got {value})"
        if isinstance(value, list):
            if "minItems" in spec and len(value) < spec["minItems"]:
                return f"{tool}: parameter '{key}' needs at least {spec['minItems']} items"
            if "maxItems" in spec and len(value) > spec["maxItems"]:
                return f"{tool}: parameter '{key}' allows at most {spec['maxItems']} items"
            item_type = (spec.get("items") or {}).get("type")
            if item_type and not all(_type_ok(v, item_type) for v in value):
                return f"{tool}: every item of '{key}' must be of type {item_type}"
        if isinstance(value, dict) and spec.get("properties"):
            nested = check_args(f"{tool}.{key}", spec, value)
            if nested:
                return nested
    return None


class Server:
    """Reads requests, writes responses; owns the Tools instance (and through it the store)."""

    def __init__(self, tools: Any, advertised: tuple[str, ...], out: TextIO) -> None:
        self.tools = tools
        self.advertised = advertised
        self.out = out

    def _send(self, msg: dict[str, Any]) -> None:
        self.out.write(json.dumps(msg, ensure_ascii=False, separators=(",", ":")) + "\n")
        self.out.flush()

    @staticmethod
    def _error(id_: Any, code: int, message: str) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": id_, "error": {"code": code, "message": message}}

    def handle_line(self, line: str) -> None:
        if not line.strip():
            return
        try:
            req = json.loads(line)
        except ValueError as exc:
            self._send(self._error(None, -32700, f"Parse error: {exc}"))
            return
        reply = self.handle(req)
        if reply is not None:
            self._send(reply)

    def handle(self, req: Any) -> dict[str, Any] | None:
        if not isinstance(req, dict):
            return self._error(None, -32600, "Invalid Request: expected a JSON object")
        id_ = req.get("id")
        notification = id_ is None
        if not isinstance(id_, str | int | float | type(None)) or isinstance(id_, bool):
            return self._error(None, -32600, "Invalid Request: id must be a string, a number or null")
        if req.get("jsonrpc") != "2.0":
            return None if notification else self._error(id_, -32600, 'invalid JSON-RPC version (must be "2.0")')
        method = req.get("method")
        if not isinstance(method, str):
            return None if notification else self._error(id_, -32600, "Invalid Request: method must be a string")
        params = req.get("params")
        if params is None:
            params = {}
        try:
            result, error = self.dispatch(method, params)
        except Exception as exc:  # a bug must not kill the session: report it and keep serving
            traceback.print_exc(file=sys.stderr)
            result, error = None, (-32603, f"internal error: {exc}")
        if notification:
            return None
        if error is not None:
            return self._error(id_, *error)
        return {"jsonrpc": "2.0", "id": id_, "result": result}

    def dispatch(self, method: str, params: Any) -> tuple[Any, tuple[int, str] | None]:
        if method == "initialize":
            if isinstance(params, dict) and isinstance(params.get("clientInfo"), dict):
                name = params["clientInfo"].get("name")
                if isinstance(name, str) and name:
                    self.tools.client_name = name
            return {"protocolVersion": PROTOCOL_VERSION, "capabilities": {"tools": {}, "prompts": {}},
                    "serverInfo": {"name": "ai-memory", "version": self.tools.version}}, None
        if method in ("notifications/initialized", "ping"):
            return {}, None
        if method == "tools/list":
            return {"toolsVersion": TOOLS_VERSION, "tools": [TOOLS[n].wire() for n in self.advertised]}, None
        if method == "prompts/list":
            return {"prompts": PROMPTS}, None
        if method == "prompts/get":
            if not isinstance(params, dict) or not isinstance(params.get("name"), str) or not params["name"]:
                return None, (-32602, "missing or empty prompt name")
            args = params.get("arguments") if isinstance(params.get("arguments"), dict) else {}
            text = _prompt_text(params["name"], args)
            if text is None:
                return None, (-32602, f"unknown prompt: {params['name']}")
            return {"messages": [{"role": "user", "content": {"type": "text", "text": text}}]}, None
        if method == "tools/call":
            return self.call_tool(params)
        return None, (-32601, f"method not found: {method}")

    def call_tool(self, params: Any) -> tuple[Any, tuple[int, str] | None]:
        if not isinstance(params, dict):
            return None, (-32602, "params must be an object")
        name = params.get("name")
        if not isinstance(name, str) or not name:
            return None, (-32602, "missing or empty tool name")
        if name not in self.advertised:
            return None, (-32601, f"unknown tool: {name}")
        args = params.get("arguments")
        if args is None:
            args = {}
        if not isinstance(args, dict):
            return None, (-32602, f"{name}: arguments must be an object")
        problem = check_args(name, TOOLS[name].schema, args)
        if problem:
            return None, (-32602, f"invalid params: {problem}")
        from refpeer.mcp_tools import ToolError

        try:
            result, fmt = self.tools.call(name, args)
        except ToolError as exc:
            return {"content": [{"type": "text", "text": str(exc)}], "isError": True}, None
        return {"content": [{"type": "text", "text": self.tools.render(name, result, fmt)}]}, None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ai-memory mcp",
        description="MCP server on stdio (line-delimited JSON-RPC 2.0): the 43 tools of 0.6.3, which has no "
                    "tool profiles (no --profile; AI_MEMORY_PROFILE is ignored).")
    p.add_argument("--tier", choices=("keyword", "semantic", "smart", "autonomous"), default="semantic",
                   help="feature tier; the reference peer has no embedder or LLM, so it always runs as keyword")
    p.add_argument("--db", help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    return p


def main(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    from refpeer import VERSION, defects
    from refpeer.errors import RefPeerError

    label, advertised = "v0.6.3", V063_TOOLS
    if defects.enabled("mcp_core_profile"):
        advertised = core_tools()
    db = args.db or os.environ.get("AI_MEMORY_DB") or "ai-memory.db"
    try:
        from refpeer.mcp_tools import Tools
        from refpeer.store import Store

        store = Store(db)
        tools = Tools(store, profile_label=label, advertised=advertised, version=VERSION)
    except RefPeerError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    print(f"ai-memory MCP server started (stdio, tier=keyword) (db={db}, {len(advertised)} tools)", file=sys.stderr)
    server = Server(tools, advertised, sys.stdout)
    stdin = open(sys.stdin.fileno(), encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    try:
        for line in stdin:
            server.handle_line(line)
    except (BrokenPipeError, KeyboardInterrupt):
        pass
    finally:
        store.close()
    return 0
