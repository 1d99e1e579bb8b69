"""Benchmark: the burst agent's maximum writes/s, against the reference peer and against a trivial server.

The burst agent (shipgate/client/hostagent.py `burst`, the program phases 2 and 4 run on the chaos host) is
started exactly as the gate starts it -- a separate process, unpaced (--rate 0), N writer threads on
keep-alive connections, one JSONL event per invoke and per completion -- against

  * a trivial HTTP/1.1 server on loopback that answers every POST with 201 and a JSON id at once
    (asyncio, its own process): the agent's own ceiling;
  * a three-node W=2 reference-peer cluster on loopback (node 0 takes the writes), as in phase 2.

If the ceiling is well above the reference peer's figure, the harness is not what limits the gate.
Writes/s = acknowledged writes / (last completion - first invoke), from the agent's own history.

    .venv/bin/python bench/burst_agent.py [--agents 4,16,64] [--writes 2000] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from refpeer.testing import free_ports, make_cluster  # noqa: E402

AGENT = ROOT / "shipgate" / "client" / "hostagent.py"
BODY = b'{"id":"00000000-0000-4000-8000-000000000000","quorum_acks":2}'
RESPONSE = (b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)


class _Trivial(asyncio.Protocol):
    """Answers each complete request (head + Content-Length body) with the canned 201, keep-alive."""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            head_end = self.buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buf[:head_end].lower()
            length = 0
            pos = head.find(b"content-length:")
            if pos >= 0:
                length = int(head[pos + 15:].split(b"\r\n", 1)[0].strip() or 0)
            end = head_end + 4 + length
            if len(self.buf) < end:
                return
            self.buf = self.buf[end:]
            self.transport.write(RESPONSE)


def serve_trivial(port: int) -> None:
    """Entry point of the trivial server's process."""
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Trivial, "127.0.0.1", port, backlog=512)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def _wait_port(port: int, deadline_s: float = 10.0) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() >= deadline:
                raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {deadline_s}s") from None
            time.sleep(0.05)  # poll interval of a deadline-bounded poll


def run_burst(url: str, agents: int, writes: int, namespace: str, timeout_s: float = 600) -> dict[str, Any]:
    """One unpaced burst of `writes` in total over `agents` writers; figures from the agent's history."""
    per_agent = max(1, writes // agents)
    argv = [sys.executable, str(AGENT), "burst", "--url", url, "--namespace", namespace,
            "--agents", ",".join(f"ai:bench-{i}" for i in range(agents)), "--writes", str(per_agent),
            "--rate", "0", "--timeout", "10", "--title-format", "{agent}-{seq}"]
    t0 = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    wall = time.monotonic() - t0
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    invokes = [e["time"] for e in events if e.get("type") == "invoke"]
    done = [e for e in events if e.get("type") != "invoke"]
    ok = [e for e in done if e.get("type") == "ok"]
    span = (max(e["time"] for e in done) - min(invokes)) if done and invokes else 0.0
    lat = sorted(e["latency_ms"] for e in ok if "latency_ms" in e)

    def q(p: float) -> float | None:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))], 2) if lat else None

    return {"agents": agents, "writes": per_agent * agents, "ok": len(ok), "other": len(done) - len(ok),
            "exit_code": proc.returncode, "span_s": round(span, 3), "process_wall_s": round(wall, 3),
            "writes_per_s": round(len(ok) / span, 1) if span > 0 else None,
            "latency_ms_p50": q(0.5), "latency_ms_p99": q(0.99),
            "stderr": proc.stderr.strip()[-300:] or None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", default="4,16,64", help="writer counts to try (comma list)")
    ap.add_argument("--writes", type=int, default=2000, help="writes per burst (split over the agents)")
    ap.add_argument("--json-out", type=Path, help="also write the figures as JSON to this file")
    args = ap.parse_args(argv)
    levels = [int(a) for a in args.agents.split(",") if a.strip()]
    figures: dict[str, Any] = {"machine": f"{platform.node()} cpus={os.cpu_count()} "
                                          f"python={platform.python_version()}", "trivial": [], "refpeer": []}

    import multiprocessing as mp

    (port,) = free_ports(1)
    server = mp.get_context("spawn").Process(target=serve_trivial, args=(port,), daemon=True)
    server.start()
    try:
        _wait_port(port)
        for n in levels:
            figures["trivial"].append(run_burst(f"http://127.0.0.1:{port}", n, args.writes, "bench-trivial"))
    finally:
        server.terminate()
        server.join(10)
        if server.is_alive():
            server.kill()
            server.join(5)

    with tempfile.TemporaryDirectory(prefix="bench-burst-") as tmp:
        nodes = make_cluster(Path(tmp), 3, quorum_writes=2, timeout_ms=3000, catchup_secs=30,
                             env={"AI_MEMORY_REF_DEFECTS": "", "AI_MEMORY_REF_LOG": "WARNING"})
        try:
            for i, n in enumerate(levels):
                figures["refpeer"].append(run_burst(f"http://127.0.0.1:{nodes[0].port}", n, args.writes,
                                                    f"bench-burst-{i}"))
        finally:
            for node in nodes:
                node.kill()

    def best(rows: list[dict[str, Any]]) -> float:
        return max((r["writes_per_s"] or 0.0) for r in rows) if rows else 0.0

    figures["max_writes_per_s_trivial"] = best(figures["trivial"])
    figures["max_writes_per_s_refpeer"] = best(figures["refpeer"])
    ratio = figures["max_writes_per_s_trivial"] / figures["max_writes_per_s_refpeer"] \
        if figures["max_writes_per_s_refpeer"] else None
    figures["headroom_ratio"] = round(ratio, 2) if ratio else None

    print(f"machine: {figures['machine']}  load={os.getloadavg()[0]:.1f}")
    print(f"{'target':<10} {'agents':>6} {'writes':>6} {'ok':>6} {'span_s':>7} {'writes/s':>9} "
          f"{'p50 ms':>7} {'p99 ms':>7}")
    for target in ("trivial", "refpeer"):
        for r in figures[target]:
            print(f"{target:<10} {r['agents']:>6} {r['writes']:>6} {r['ok']:>6} {r['span_s']:>7.2f} "
                  f"{r['writes_per_s'] or 0:>9.0f} {r['latency_ms_p50'] or 0:>7.1f} {r['latency_ms_p99'] or 0:>7.1f}")
    print(f"burst agent max: {figures['max_writes_per_s_trivial']:.0f} writes/s against a trivial server, "
          f"{figures['max_writes_per_s_refpeer']:.0f} against the reference peer (3 nodes, W=2); "
          f"headroom x{figures['headroom_ratio']}")
    if args.json_out:
        args.json_out.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
