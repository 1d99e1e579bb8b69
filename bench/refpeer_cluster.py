"""Benchmark: acknowledged writes/s and latency of a three-node W=2 reference-peer cluster on loopback.

Starts three real `serve` processes (python -m refpeer), then C concurrent clients (spread over worker
processes so the client side is not GIL-bound), each on its own keep-alive connection, POST unique memories
to node 0 for D seconds. Prints acked writes/s, p50/p90/p99/max latency of the 201s, status counts, and
whether every acked write reached both peers.

    .venv/bin/python bench/refpeer_cluster.py [--clients 32] [--seconds 10] [--procs 4] [--timeout-ms 2000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from refpeer.testing import make_cluster, wait_until


def _client(port: int, ns: str, tag: str, stop_at: float, out: list) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    i = 0
    while time.time() < stop_at:
        body = json.dumps({"title": f"{tag}-w{i}", "content": f"bench write {tag} {i}", "namespace": ns})
        t0 = time.perf_counter()
        try:
            conn.request("POST", "/api/v1/memories", body=body,
                         headers={"Content-Type": "application/json", "X-Agent-Id": f"ai:bench-{tag}"})
            resp = conn.getresponse()
            resp.read()
            status = resp.status
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            status = 0
        out.append((status, time.perf_counter() - t0, f"{tag}-w{i}"))
        i += 1
    conn.close()


def _worker(args: tuple[int, str, list[str], float]) -> list:
    port, ns, tags, stop_at = args
    out: list = []
    threads = [threading.Thread(target=_client, args=(port, ns, t, stop_at, out)) for t in tags]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--procs", type=int, default=4, help="client worker processes")
    ap.add_argument("--timeout-ms", type=int, default=2000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="refpeer-bench-") as tmp:
        nodes = make_cluster(Path(tmp), 3, quorum_writes=2, timeout_ms=a.timeout_ms, catchup_secs=30,
                             env={"AI_MEMORY_REF_DEFECTS": "", "AI_MEMORY_REF_LOG": "WARNING"})
        try:
            ns = "bench"
            tags = [f"c{i}" for i in range(a.clients)]
            groups = [tags[i::a.procs] for i in range(a.procs)]
            start = time.time() + 0.5
            stop_at = start + a.seconds
            with mp.Pool(a.procs) as pool:
                t0 = time.time()
                results = pool.map(_worker, [(nodes[0].port, ns, g, stop_at) for g in groups if g])
                wall = time.time() - t0 - 0.5
            rows = [r for res in results for r in res]
            ok = [r for r in rows if r[0] == 201]
            lat = [r[1] * 1000 for r in ok]
            statuses: dict[int, int] = {}
            for r in rows:
                statuses[r[0]] = statuses.get(r[0], 0) + 1
            acked = {r[2] for r in ok}
            t_conv = time.time()
            converged = all(wait_until(lambda n=n: n.titles(ns, limit=1000) is not None and
                                       _count(n, ns) >= len(acked), 60) for n in nodes[1:])
            conv_s = time.time() - t_conv
            print(f"machine: {platform.node()} {platform.machine()} cpus={os.cpu_count()} "
                  f"python={platform.python_version()}")
            print(f"cluster: 3 nodes, W=2, quorum timeout {a.timeout_ms} ms, synchronous="
                  f"{os.environ.get('AI_MEMORY_REF_SYNCHRONOUS', 'FULL')}")
            print(f"clients: {a.clients} keep-alive connections over {a.procs} processes, {a.seconds:.0f} s")
            print(f"acked writes: {len(ok)}  ->  {len(ok) / wall:.0f} acked writes/s")
            print(f"latency of 201s (ms): p50 {pct(lat, 50):.1f}  p90 {pct(lat, 90):.1f}  p99 {pct(lat, 99):.1f}  "
                  f"max {max(lat) if lat else float('nan'):.1f}  mean {statistics.fmean(lat) if lat else 0:.1f}")
            print(f"statuses: {dict(sorted(statuses.items()))}")
            print(f"every acked write on both peers: {converged} (checked {conv_s:.1f} s after the burst)")
            cpu = [_cpu_seconds(n.proc.pid) for n in nodes if n.proc is not None]
            print("server CPU seconds (leader, peer, peer): " + ", ".join(f"{c:.1f}" for c in cpu)
                  + f"  -> {sum(cpu) / max(len(ok), 1) * 1000:.2f} ms CPU per acked write")
        finally:
            for n in nodes:
                n.kill()
    return 0


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _count(node, ns: str) -> int:
    from refpeer.testing import http_json

    _, st = http_json(f"{node.url}/api/v1/stats", timeout=10)
    return next((x["count"] for x in st["by_namespace"] if x["namespace"] == ns), 0)


if __name__ == "__main__":
    raise SystemExit(main())
