"""Run AlphaOne's Python SDK (PyPI `ai-memory-mcp`) call by call against one `serve`, print what each call did.

Usage: python sdk_driver.py WORKDIR PORT -- SERVE-COMMAND...

Starts SERVE-COMMAND (HOME, the working directory and AI_MEMORY_DB inside WORKDIR, AI_MEMORY_NO_CONFIG=1;
killed when this process dies), waits for its health, runs the same sequence of SDK calls and prints one
JSON list: per call its name, the HTTP exchanges it made (method, path template, status) and its outcome
(`ok` with the result's shape, or `raised` with the exception class and the SDK's status code). Shapes are
structural (keys, model fields set, list element shape), never values, so two servers compare call by call.
Meant to run inside a loopback-only network namespace (tests/refpeer/test_sdk_fidelity.py does that).
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
from ai_memory import AiMemoryClient

HEALTH_DEADLINE_S = 60.0
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _die_with_parent() -> None:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def shape(value: Any) -> Any:
    """A value's structure without its data."""
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        return {"model": type(value).__name__, "fields": sorted(value.model_dump(exclude_unset=True))}
    if isinstance(value, dict):
        return {"keys": sorted(value)}
    if isinstance(value, list):
        return ["list", shape(value[0]) if value else None]
    return type(value).__name__


def run_calls(client: AiMemoryClient, exchanges: list[tuple[str, str, int]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    ids: dict[str, str] = {}

    def call(name: str, fn: Callable[[], Any], keep: str | None = None) -> Any:
        exchanges.clear()
        entry: dict[str, Any] = {"call": name}
        result = None
        try:
            result = fn()
            entry["outcome"] = "ok"
            entry["shape"] = shape(result)
        except Exception as exc:
            entry["outcome"] = "raised"
            entry["error"] = f"{type(exc).__module__}.{type(exc).__name__}"
            entry["status_code"] = getattr(exc, "status_code", None)
        entry["http"] = list(exchanges)
        out.append(entry)
        if keep and isinstance(result, dict) and "id" in result:
            ids[keep] = result["id"]
        return result

    call("health", client.health)
    call("store", lambda: client.store(title="sdk-1", content="from the sdk", namespace="sdk", tags=["a"]), "m1")
    call("store_second", lambda: client.store(title="sdk-2", content="second sdk row", namespace="sdk"), "m2")
    call("store_duplicate_title", lambda: client.store(title="sdk-1", content="upserted", namespace="sdk"))
    call("store_invalid_priority", lambda: client.store(title="bad", content="c", priority=11))
    call("get", lambda: client.get(ids["m1"]))
    call("get_missing", lambda: client.get("00000000-0000-4000-8000-000000000000"))
    call("update", lambda: client.update(ids["m1"], {"content": "changed", "tags": ["b"]}))
    call("update_missing", lambda: client.update("00000000-0000-4000-8000-000000000000", {"content": "x"}))
    call("list", lambda: client.list(namespace="sdk"))
    call("list_limit_2", lambda: client.list(namespace="sdk", limit=2))
    call("search", lambda: client.search("sdk"))
    call("recall", lambda: client.recall("sdk row"))
    call("stats", client.stats)
    call("namespaces", client.namespaces)
    call("bulk_store", lambda: client.bulk_store(
        [{"title": f"bulk-{i}", "content": "bulk row", "namespace": "sdk-bulk"} for i in range(3)]))
    call("promote", lambda: client.promote(ids["m2"]))
    call("link", lambda: client.link(ids["m1"], ids["m2"]))
    call("link_bad_relation", lambda: client.link(ids["m1"], ids["m2"], relation="bogus"))
    call("get_links", lambda: client.get_links(ids["m2"]))
    call("grant", lambda: client.grant(ids["m1"], "ai:other"))  # no such route at 0.6.3: 404 with a body
    call("store_after_404_with_body", lambda: client.store(title="sdk-3", content="after", namespace="sdk"))
    call("revoke", lambda: client.revoke(ids["m1"], "ai:other"))
    call("cluster", client.cluster)
    call("store_after_cluster", lambda: client.store(title="sdk-4", content="after", namespace="sdk"))
    call("gc", client.gc)
    call("delete", lambda: client.delete(ids["m1"]))
    call("delete_again", lambda: client.delete(ids["m1"]))
    call("list_after", lambda: client.list(namespace="sdk", limit=1000))
    return out


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: sdk_driver.py WORKDIR PORT -- SERVE-COMMAND...", file=sys.stderr)
        return 2
    workdir, port, command = argv[0], int(argv[1]), argv[3:]
    env = {**os.environ, "HOME": workdir, "AI_MEMORY_NO_CONFIG": "1", "AI_MEMORY_DB": f"{workdir}/ai-memory.db"}
    env.pop("AI_MEMORY_REF_DEFECTS", None)
    with open(f"{workdir}/serve.log", "wb") as log:
        serve = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                 preexec_fn=_die_with_parent)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + HEALTH_DEADLINE_S
        while True:
            if serve.poll() is not None:
                print(f"serve exited {serve.returncode} before answering", file=sys.stderr)
                return 1
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                print(f"serve not healthy after {HEALTH_DEADLINE_S:.0f}s", file=sys.stderr)
                return 1
            time.sleep(0.05)
        exchanges: list[tuple[str, str, int]] = []

        def record(response: httpx.Response) -> None:
            exchanges.append((response.request.method, _UUID.sub("{id}", response.request.url.path),
                              response.status_code))

        with AiMemoryClient(base, agent_id="ai:sdk-fidelity", timeout=30.0) as client:
            client._client.event_hooks["response"] = [record]
            results = run_calls(client, exchanges)
        json.dump(results, sys.stdout)
        sys.stdout.write("\n")
        return 0
    finally:
        serve.kill()
        serve.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
