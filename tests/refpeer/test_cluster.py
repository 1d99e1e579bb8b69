"""A real three-node W=2 cluster on loopback: burst, convergence, quorum probes, catch-up (contract 4)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from refpeer.testing import PeerProc, free_ports, http_json, wait_until

AGENTS = ("ai:agent-alice", "ai:agent-bob", "ai:agent-charlie", "ai:agent-dana")


def burst(leader: PeerProc, ns: str, per_agent: int = 50) -> dict[str, int]:
    """Four agents in parallel, each writing sequentially; returns title -> status."""

    def agent(name: str) -> list[tuple[str, int]]:
        out = []
        for i in range(per_agent):
            title = f"{name}-w{i}"
            status, _ = leader.post({"title": title, "content": f"multi-agent write {name} seq {i}",
                                     "namespace": ns, "source": "api"}, agent=name)
            out.append((title, status))
        return out

    with ThreadPoolExecutor(len(AGENTS)) as ex:
        return {t: s for res in ex.map(agent, AGENTS) for t, s in res}


def test_burst_of_four_agents_is_acked_and_converges_on_every_node(cluster: Callable[..., list[PeerProc]]) -> None:
    nodes = cluster(n=3, quorum_writes=2, timeout_ms=3000)
    results = burst(nodes[0], "ship-gate-phase2")
    acked = {t for t, s in results.items() if s == 201}
    assert len(acked) == 200
    for node in nodes:
        assert wait_until(lambda n=node: n.titles("ship-gate-phase2") >= acked, 15), node.log_text()
    _, st = http_json(f"{nodes[1].url}/api/v1/stats")
    assert st["total"] == 200


def test_201_carries_quorum_acks_and_the_row_is_on_a_peer_before_the_ack(cluster: Callable[..., list[PeerProc]]) -> None:
    nodes = cluster(n=3, quorum_writes=3, timeout_ms=3000)
    status, body = nodes[0].post({"title": "all-three", "content": "c", "namespace": "w3"})
    assert status == 201 and body["quorum_acks"] == 3
    assert all("all-three" in n.titles("w3") for n in nodes[1:])  # W=3: both peers acked before the 201


def test_one_peer_down_still_201_both_down_503_fast_and_local_row_kept(cluster: Callable[..., list[PeerProc]]) -> None:
    nodes = cluster(n=3, quorum_writes=2, timeout_ms=3000)
    nodes[1].kill()
    status, body = nodes[0].post({"title": "probe1", "content": "c", "namespace": "ship-gate-phase2-probe1"})
    assert status == 201 and body["quorum_acks"] == 2
    nodes[2].kill()
    t0 = time.monotonic()
    status, body = nodes[0].post({"title": "probe2", "content": "c", "namespace": "ship-gate-phase2-probe2"},
                                 timeout=30)
    elapsed = time.monotonic() - t0
    assert status == 503
    assert body == {"error": "quorum_not_met", "got": 1, "needed": 2, "reason": "timeout"}
    assert elapsed < 3.0 + 2.0  # the gate's bound: within the quorum timeout plus a margin
    assert "probe2" in nodes[0].titles("ship-gate-phase2-probe2")  # no rollback


def test_503_carries_retry_after(cluster: Callable[..., list[PeerProc]]) -> None:
    from refpeer.testing import http_request

    nodes = cluster(n=3, quorum_writes=2, timeout_ms=500)
    nodes[1].kill()
    nodes[2].kill()
    status, headers, _ = http_request(f"{nodes[0].url}/api/v1/memories", "POST",
                                      {"title": "x", "content": "c", "namespace": "ra"})
    assert status == 503 and headers["retry-after"] == "2"


def test_blackholed_peers_give_unreachable_at_the_deadline(cluster: Callable[..., list[PeerProc]]) -> None:
    nodes = cluster(n=3, quorum_writes=2, timeout_ms=800)
    nodes[1].signal(signal.SIGSTOP)
    nodes[2].signal(signal.SIGSTOP)
    try:
        status, body = nodes[0].post({"title": "stopped", "content": "c", "namespace": "stop"}, timeout=30)
    finally:
        nodes[1].signal(signal.SIGCONT)
        nodes[2].signal(signal.SIGCONT)
    assert status == 503 and body["reason"] == "unreachable" and body["got"] == 1
    # the detached pushes finish once the peers resume: the 503'd row still converges
    assert wait_until(lambda: all("stopped" in n.titles("stop") for n in nodes), 15)


def test_paused_peer_does_not_block_quorum_and_catches_up_after(cluster: Callable[..., list[PeerProc]]) -> None:
    nodes = cluster(n=3, quorum_writes=2, timeout_ms=2000)
    nodes[1].signal(signal.SIGSTOP)
    try:
        statuses = [nodes[0].post({"title": f"p{i}", "content": "c", "namespace": "pause"})[0] for i in range(10)]
    finally:
        nodes[1].signal(signal.SIGCONT)
    assert statuses == [201] * 10
    want = {f"p{i}" for i in range(10)}
    assert wait_until(lambda: nodes[1].titles("pause") >= want, 15)


def test_restarted_peer_catches_up_by_pulling(cluster: Callable[..., list[PeerProc]]) -> None:
    nodes = cluster(n=3, quorum_writes=2, timeout_ms=2000, catchup_secs=1)
    nodes[2].kill()
    for i in range(30):
        assert nodes[0].post({"title": f"missed-{i}", "content": "c", "namespace": "catchup"})[0] == 201
    assert "missed-0" not in _titles_offline(nodes[2])
    nodes[2].start()
    want = {f"missed-{i}" for i in range(30)}
    assert wait_until(lambda: nodes[2].titles("catchup") >= want, 20), nodes[2].log_text()


def _titles_offline(node: PeerProc) -> set[str]:
    import sqlite3

    with sqlite3.connect(node.db) as c:
        return {r[0] for r in c.execute("SELECT title FROM memories")}


def test_duplicate_peers_are_a_startup_error(tmp_path: Path) -> None:
    from refpeer.testing import run_cli

    r = run_cli(["serve", "--port", str(free_ports(1)[0]), "--quorum-writes", "2", "--quorum-peers",
                 "http://127.0.0.1:1/,HTTP://127.0.0.1:1"], db=tmp_path / "d.db", timeout=20)
    assert r.returncode == 1 and "duplicate quorum peer" in r.stderr


def test_bind_failure_exits_non_zero(tmp_path: Path, node: PeerProc) -> None:
    from refpeer.testing import run_cli

    r = run_cli(["serve", "--port", str(node.port)], db=tmp_path / "d.db", timeout=20)
    assert r.returncode == 1 and "cannot bind" in r.stderr


def test_sigint_is_graceful_and_the_data_survives_a_restart(node: PeerProc) -> None:
    assert node.post({"title": "durable", "content": "c", "namespace": "sig"})[0] == 201
    assert node.interrupt() == 0
    assert "shutdown complete" in node.log_text()
    node.start()
    assert "durable" in node.titles("sig")


def test_acked_writes_survive_sigkill_of_the_leader(cluster: Callable[..., list[PeerProc]]) -> None:
    nodes = cluster(n=3, quorum_writes=2, timeout_ms=2000, catchup_secs=1)
    acked = set()
    for i in range(3):
        status, _ = nodes[0].post({"title": f"c0-w{i}", "content": "chaos", "namespace": "chaos-c0",
                                   "source": "chaos"})
        if status == 201:
            acked.add(f"c0-w{i}")
    nodes[0].kill()
    assert len(acked) == 3
    assert wait_until(lambda: nodes[1].titles("chaos-c0") >= acked and nodes[2].titles("chaos-c0") >= acked, 10)
    nodes[0].start()
    assert nodes[0].titles("chaos-c0") >= acked


def test_w_zero_or_no_peers_means_no_federation(node: PeerProc) -> None:
    status, body = node.post({"title": "solo", "content": "c", "namespace": "solo"})
    assert status == 201 and "quorum_acks" not in body
    assert http_json(f"{node.url}/api/v1/health")[1]["federation_enabled"] is False


def test_writes_to_every_node_at_once_with_inbound_pushes_converge(cluster: Callable[..., list[PeerProc]]) -> None:
    nodes = cluster(n=3, quorum_writes=2, timeout_ms=3000)

    def agent(k: int) -> list[int]:
        leader = nodes[k % 3]
        return [leader.post({"title": f"mx{k}-{i}", "content": "c", "namespace": "mesh"},
                            agent=f"ai:agent-{k}")[0] for i in range(40)]

    with ThreadPoolExecutor(6) as ex:
        statuses = [s for res in ex.map(agent, range(6)) for s in res]
    assert statuses == [201] * 240
    want = {f"mx{k}-{i}" for k in range(6) for i in range(40)}
    assert all(wait_until(lambda n=n: n.titles("mesh") >= want, 15) for n in nodes)


def test_a_peer_list_naming_the_node_itself_does_not_deadlock(tmp_path: Path, procs: list[PeerProc]) -> None:
    """Gate run 9: the peer list included the node's own address. The DB lock is not held across the fan-out,
    so the self-push is answered (a no-op merge) and counts as an ack."""
    me, other = free_ports(2)
    b = PeerProc(other, tmp_path / "b.db", tmp_path / "b.log")
    a = PeerProc(me, tmp_path / "a.db", tmp_path / "a.log",
                 ["--quorum-writes", "3", "--quorum-peers", f"http://127.0.0.1:{me},http://127.0.0.1:{other}"])
    procs.extend([a, b])
    b.start()
    a.start()
    status, body = a.post({"title": "self", "content": "c", "namespace": "self"}, timeout=10)
    assert status == 201 and body["quorum_acks"] == 3


def test_cli_store_next_to_a_running_serve_shares_the_db_without_fanning_out(node: PeerProc) -> None:
    from refpeer.testing import run_cli

    with ThreadPoolExecutor(2) as ex:
        http = ex.submit(lambda: [node.post({"title": f"h{i}", "content": "c", "namespace": "mix"})[0]
                                  for i in range(60)])
        cli = [run_cli(["store", "-T", f"c{i}", "-c", "x", "-n", "mix"], db=node.db).returncode for i in range(8)]
        assert http.result() == [201] * 60
    assert cli == [0] * 8
    assert node.titles("mix") == {f"h{i}" for i in range(60)} | {f"c{i}" for i in range(8)}


def test_catch_up_cursor_is_exact_a_row_behind_it_is_never_pulled(tmp_path: Path, procs: list[PeerProc]) -> None:
    """0.6.3's rule: `updated_at > cursor` on the greatest pulled updated_at, no overlap, so a row that reaches
    a peer after a row with a later updated_at is skipped for good (pushes: the fan-out's job)."""
    from refpeer.memory import new_memory, ts_in

    a_port, b_port = free_ports(2)
    b = PeerProc(b_port, tmp_path / "b.db", tmp_path / "b.log")
    a = PeerProc(a_port, tmp_path / "a.db", tmp_path / "a.log",
                 ["--quorum-writes", "1", "--quorum-peers", b.url, "--catchup-interval-secs", "1"])
    procs.extend([a, b])
    b.start()
    a.start()
    first = new_memory("first", "c", namespace="late")
    late = new_memory("late", "c", namespace="late")
    late["updated_at"] = late["created_at"] = ts_in(-2, first["updated_at"])
    push = f"{b.url}/api/v1/sync/push"
    assert http_json(push, "POST", {"sender_agent_id": "host:t", "memories": [first]})[0] == 200
    assert wait_until(lambda: "first" in a.titles("late"), 15)
    assert http_json(push, "POST", {"sender_agent_id": "host:t", "memories": [late]})[0] == 200
    after = new_memory("after", "c", namespace="late")
    assert http_json(push, "POST", {"sender_agent_id": "host:t", "memories": [after]})[0] == 200
    assert wait_until(lambda: "after" in a.titles("late"), 15)
    assert "late" not in a.titles("late")
