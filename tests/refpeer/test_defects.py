"""Each seeded defect demonstrably changes the behaviour it names (and the clean peer does not).

Cluster defects are switched on for every node (as the gate would install them); each scenario runs with
the defect off and on and asserts the outcomes differ in the way the defect describes.
"""

from __future__ import annotations

import hashlib
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from refpeer import defects
from refpeer.errors import DefectConfigError
from refpeer.testing import PeerProc, free_ports, http_json, run_cli, wait_until

README = Path(__file__).resolve().parents[2] / "refpeer" / "README.md"
Cluster = Callable[..., list[PeerProc]]


def env_for(defect: str | None) -> dict[str, str]:
    return {"AI_MEMORY_REF_DEFECTS": defect or ""}


def window(defect: str | None) -> float:
    """How long to poll: generously when the clean peer must get there (polling stops at success), and a
    fixed observation window -- several catch-up intervals -- when the defect must keep it from happening."""
    return 20.0 if defect is None else 4.0


def test_registry_parse_rejects_unknown_names_and_lists_valid_ones() -> None:
    assert defects.parse(" fanout_abort , quorum_w1,") == {"fanout_abort", "quorum_w1"}
    with pytest.raises(DefectConfigError, match=r"nope.*valid: .*ack_before_durable"):
        defects.parse("fanout_abort,nope")


def test_every_defect_is_in_the_readme_table_with_its_phase() -> None:
    text = README.read_text()
    for d in defects.DEFECTS.values():
        row = re.search(rf"^\| `{d.name}` \|.*\| (\d) \|$", text, re.M)
        assert row, d.name
        assert row.group(1) == d.phase, d.name


def test_serve_refuses_to_start_with_an_unknown_defect(tmp_path: Path) -> None:
    r = run_cli(["serve", "--port", str(free_ports(1)[0])], db=tmp_path / "x.db",
                env={"AI_MEMORY_REF_DEFECTS": "quorum_w2"}, timeout=20)
    assert r.returncode == 1 and "quorum_w2" in r.stderr and "quorum_w1" in r.stderr


@pytest.mark.parametrize("name", ["mcp_core_profile", "migrate_truncate", "migrate_duplicates", "migrate_page_cap_500",
                                  "migrate_drops_links", "migrate_mangles_unicode"])
def test_flag_only_defects_are_visible_to_the_modules_that_implement_them(name: str) -> None:
    code = f"from refpeer import defects; print(defects.enabled({name!r}))"
    on = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                        env={**_base_env(), "AI_MEMORY_REF_DEFECTS": name})
    off = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, env=_base_env())
    assert (on.stdout.strip(), off.stdout.strip()) == ("True", "False")


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "AI_MEMORY_REF_DEFECTS"}


@pytest.mark.parametrize("defect", [None, "fanout_abort"])
def test_fanout_abort_leaves_each_write_on_the_leader_and_one_peer(cluster: Cluster, defect: str | None) -> None:
    nodes = cluster(n=3, quorum_writes=2, catchup_secs=0, env=env_for(defect))  # the write path alone, as phase 2
    titles = {f"fa-{i}" for i in range(40)}
    for t in sorted(titles):
        assert nodes[0].post({"title": t, "content": "c", "namespace": "fa"})[0] == 201
    converged = wait_until(lambda: nodes[1].titles("fa") >= titles and nodes[2].titles("fa") >= titles, window(defect))
    if defect is None:
        assert converged
        return
    assert not converged
    on1, on2 = nodes[1].titles("fa"), nodes[2].titles("fa")
    assert on1 | on2 == titles and not on1 & on2  # every write reached exactly one peer
    assert on1 and on2  # the surviving peer is chosen per write


def test_fanout_abort_gap_is_repaired_by_catch_up_when_it_runs(cluster: Cluster) -> None:
    nodes = cluster(n=3, quorum_writes=2, catchup_secs=1, env=env_for("fanout_abort"))
    titles = {f"fr-{i}" for i in range(20)}
    for t in sorted(titles):
        assert nodes[0].post({"title": t, "content": "c", "namespace": "fr"})[0] == 201
    assert wait_until(lambda: nodes[1].titles("fr") >= titles and nodes[2].titles("fr") >= titles, 10)


@pytest.mark.parametrize("defect", [None, "quorum_w1"])
def test_quorum_w1_acks_with_every_peer_down(cluster: Cluster, defect: str | None) -> None:
    nodes = cluster(n=3, quorum_writes=2, timeout_ms=1000, env=env_for(defect))
    nodes[1].kill()
    nodes[2].kill()
    status, body = nodes[0].post({"title": "probe2", "content": "c", "namespace": "w1"})
    if defect is None:
        assert status == 503 and body["error"] == "quorum_not_met"
    else:
        assert status == 201 and body["quorum_acks"] == 1


@pytest.mark.parametrize("defect", [None, "quorum_hang"])
def test_quorum_hang_does_not_answer_within_the_quorum_timeout(cluster: Cluster, defect: str | None) -> None:
    nodes = cluster(n=3, quorum_writes=2, timeout_ms=1000, env=env_for(defect))
    nodes[1].kill()
    nodes[2].kill()
    client_timeout = 1.0 + 2.0  # the gate's budget: quorum timeout plus 2 s
    if defect is None:
        status, body = nodes[0].post({"title": "h", "content": "c", "namespace": "hang"}, timeout=client_timeout)
        assert status == 503 and body["error"] == "quorum_not_met"
    else:
        with pytest.raises(TimeoutError):
            nodes[0].post({"title": "h", "content": "c", "namespace": "hang"}, timeout=client_timeout)


@pytest.mark.parametrize("defect", [None, "quorum_timeout_ignored"])
def test_quorum_timeout_ignored_holds_a_write_to_silent_peers_but_not_to_refused_ones(
        cluster: Cluster, defect: str | None) -> None:
    nodes = cluster(n=3, quorum_writes=2, timeout_ms=1000, env=env_for(defect))
    client_timeout = 1.0 + 2.0  # the gate's budget: quorum timeout plus 2 s
    for peer in nodes[1:]:
        peer.signal(signal.SIGSTOP)  # silent: the kernel still accepts, nobody answers
    if defect is None:
        status, body = nodes[0].post({"title": "s", "content": "c", "namespace": "silent"}, timeout=client_timeout)
        assert status == 503 and body["error"] == "quorum_not_met"
    else:
        with pytest.raises(TimeoutError):
            nodes[0].post({"title": "s", "content": "c", "namespace": "silent"}, timeout=client_timeout)
    for peer in nodes[1:]:
        peer.kill()  # refused: both peers gone, so every attempt fails at once
    status, body = nodes[0].post({"title": "r", "content": "c", "namespace": "refused"}, timeout=client_timeout)
    assert status == 503 and body["error"] == "quorum_not_met"


@pytest.mark.parametrize("defect", [None, "list_ignores_limit"])
def test_list_ignores_limit_caps_at_20(tmp_path: Path, procs: list[PeerProc], defect: str | None) -> None:
    (port,) = free_ports(1)
    node = PeerProc(port, tmp_path / "l.db", tmp_path / "l.log", env=env_for(defect))
    procs.append(node)
    node.start()
    http_json(f"{node.url}/api/v1/memories/bulk", "POST",
              [{"title": f"r{i}", "content": "c", "namespace": "lim"} for i in range(30)])
    _, body = http_json(f"{node.url}/api/v1/memories?namespace=lim&limit=1000")
    assert body["count"] == (20 if defect else 30)


def _write_while_down(nodes: list[PeerProc], ns: str, n: int = 10) -> set[str]:
    """node-c down, n acked writes to node-a, and node-a has given up pushing them to node-c (push and
    retry both failed), so only catch-up can bring them to node-c once it is back."""
    nodes[2].kill()
    titles = {f"{ns}-{i}" for i in range(n)}
    for t in sorted(titles):
        assert nodes[0].post({"title": t, "content": "c", "namespace": ns})[0] == 201
    assert wait_until(lambda: _metric(nodes[0], "refpeer_fanout_failed_total") >= n, 20)
    return titles


def _metric(node: PeerProc, name: str) -> int:
    from refpeer.testing import http_request

    _s, _h, body = http_request(f"{node.url}/metrics", timeout=5)
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    return 0


@pytest.mark.parametrize("defect", [None, "no_catchup"])
def test_no_catchup_leaves_a_restarted_peer_behind(cluster: Cluster, defect: str | None) -> None:
    nodes = cluster(n=3, quorum_writes=2, catchup_secs=1, env=env_for(defect))
    titles = _write_while_down(nodes, "nc")
    nodes[2].start()
    caught_up = wait_until(lambda: nodes[2].titles("nc") >= titles, window(defect))
    assert caught_up is (defect is None)


@pytest.mark.parametrize("defect", [None, "skew_cursor"])
def test_skew_cursor_misses_rows_older_than_one_interval(cluster: Cluster, defect: str | None) -> None:
    nodes = cluster(n=3, quorum_writes=2, catchup_secs=1, env=env_for(defect))
    titles = _write_while_down(nodes, "sk")
    written_at = time.time()
    while time.time() < written_at + 1.5:  # the outage must outlast one catch-up interval
        time.sleep(0.1)
    nodes[2].start()
    caught_up = wait_until(lambda: nodes[2].titles("sk") >= titles, window(defect))
    assert caught_up is (defect is None)


def test_skew_cursor_under_a_real_libfaketime_offset(cluster: Cluster) -> None:
    """A peer whose clock runs 300 s ahead asks for rows 'since now-interval' in its own time: it gets none,
    even though it restarted right away. The clean peer under the same offset uses its stored cursor."""
    lib = next((p for p in ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                            "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1") if Path(p).exists()), None)
    if lib is None:
        pytest.skip("libfaketime is not installed")
    results = {}
    for defect in (None, "skew_cursor"):
        skew = {"LD_PRELOAD": lib, "FAKETIME": "+300s", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
                "FAKETIME_DONT_RESET": "1"}
        nodes = cluster(n=3, quorum_writes=2, catchup_secs=1, env=env_for(defect), per_node_env={2: skew})
        titles = _write_while_down(nodes, f"fk{defect or 'clean'}")
        nodes[2].start()
        results[defect] = wait_until(lambda n=nodes[2], t=titles, d=defect: n.titles(f"fk{d or 'clean'}") >= t,
                                     window(defect))
    assert results == {None: True, "skew_cursor": False}


@pytest.mark.parametrize("defect", [None, "ack_before_durable"])
def test_ack_before_durable_loses_acknowledged_writes_when_the_leader_is_killed(cluster: Cluster,
                                                                                defect: str | None) -> None:
    nodes = cluster(n=3, quorum_writes=2, catchup_secs=1, env=env_for(defect))
    acked = set()
    for i in range(3):
        status, _ = nodes[0].post({"title": f"c0-w{i}", "content": "chaos", "namespace": "abd", "source": "chaos"})
        if status == 201:
            acked.add(f"c0-w{i}")
    nodes[0].kill()
    assert len(acked) == 3
    on_peers = wait_until(lambda: nodes[1].titles("abd") >= acked and nodes[2].titles("abd") >= acked,
                          window(defect))
    nodes[0].start()
    on_leader = nodes[0].titles("abd") >= acked
    if defect is None:
        assert on_peers and on_leader
    else:
        assert not on_peers and not on_leader
        assert nodes[1].titles("abd") == nodes[2].titles("abd") == nodes[0].titles("abd") == set()


def _backup(tmp_path: Path, defect: str | None) -> tuple[Path, dict | None, Path]:
    db = tmp_path / f"{defect}.db"
    run_cli(["store", "-T", "t", "-c", "c", "-n", "n"], db=db)
    bk = tmp_path / f"bk-{defect}"
    r = run_cli(["backup", "--to", str(bk), "--keep", "1", "--json"], db=db, env=env_for(defect))
    assert r.returncode == 0, r.stderr
    snaps = list(bk.glob("ai-memory-*.db"))
    assert len(snaps) == 1
    mans = list(bk.glob("ai-memory-*.manifest.json"))
    return snaps[0], json.loads(mans[0].read_text()) if mans else None, db


def test_backup_no_manifest_writes_none(tmp_path: Path) -> None:
    _, clean, _ = _backup(tmp_path, None)
    _, broken, _ = _backup(tmp_path, "backup_no_manifest")
    assert clean is not None and broken is None


def test_backup_corrupt_manifest_sha_does_not_match_the_snapshot(tmp_path: Path) -> None:
    for defect in (None, "backup_corrupt"):
        snap, man, db = _backup(tmp_path, defect)
        assert man is not None
        real = hashlib.sha256(snap.read_bytes()).hexdigest()
        assert (man["sha256"] == real) is (defect is None)
        r = run_cli(["restore", "--from", str(snap)], db=db)
        assert (r.returncode == 0) is (defect is None)


def test_recall_hangs_offline_never_answers_at_the_default_tier_keyword_still_works(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    env = {**_base_env(), "AI_MEMORY_DB": str(db), "AI_MEMORY_REF_DEFECTS": "recall_hangs_offline"}
    ref = [sys.executable, "-m", "refpeer"]
    stored = subprocess.run([*ref, "store", "-T", "needle", "-c", "hay", "--json"], capture_output=True,
                            text=True, timeout=30, env=env, check=False)
    assert stored.returncode == 0, stored.stderr
    keyword = subprocess.run([*ref, "recall", "needle", "-T", "keyword", "--json"], capture_output=True, text=True,
                             timeout=30, env=env, check=False)
    assert keyword.returncode == 0 and json.loads(keyword.stdout)["count"] == 1
    clean = subprocess.run([*ref, "recall", "needle", "--json"], capture_output=True, text=True, timeout=30,
                           env={**env, "AI_MEMORY_REF_DEFECTS": ""}, check=False)
    assert clean.returncode == 0 and json.loads(clean.stdout)["count"] == 1
    hang = subprocess.Popen([*ref, "recall", "needle", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env)
    try:
        with pytest.raises(subprocess.TimeoutExpired):  # a window ten times the clean recall's whole run
            hang.communicate(timeout=max(5.0, 10 * _elapsed(ref, env)))
    finally:
        hang.kill()
        hang.communicate(timeout=10)


def _elapsed(ref: list[str], env: dict[str, str]) -> float:
    t0 = time.monotonic()
    subprocess.run([*ref, "recall", "needle", "-T", "keyword", "--json"], capture_output=True, timeout=30, env=env,
                   check=False)
    return time.monotonic() - t0


def _get(p: PeerProc, id_: str) -> dict | None:
    status, body = http_json(f"{p.url}/api/v1/memories/{id_}")
    return body["memory"] if status == 200 else None


def _link_pairs(p: PeerProc, id_: str) -> set[tuple[str, str]]:
    status, body = http_json(f"{p.url}/api/v1/links/{id_}")
    return {(ln["source_id"], ln["target_id"]) for ln in body["links"]} if status == 200 else set()


def _merged(p: PeerProc, id_: str) -> bool:
    """The consolidated row as 0.6.3 fans it out: the summary, tier long, the union of the sources' tags."""
    m = _get(p, id_)
    return m is not None and (m["content"], m["tier"], sorted(m["tags"])) == ("s", "long", ["t4", "t5"])


MUTATION_DEFECTS = ["update_not_fanned_out", "delete_not_fanned_out", "promote_not_fanned_out",
                    "link_not_fanned_out", "consolidate_not_fanned_out"]


@pytest.mark.parametrize("defect", [None, *MUTATION_DEFECTS])
def test_mutation_fan_out_defects_leave_the_peers_as_they_were(cluster: Cluster, defect: str | None) -> None:
    """Each of v0.6.0's local-only mutations (and v0.6.1's local-only link and consolidate): with catch-up off,
    as phase 2's workload runs, the peers keep the state from before; every other mutation still fans out."""
    nodes = cluster(n=3, quorum_writes=2, catchup_secs=0, env=env_for(defect))
    lead, peers = nodes[0], nodes[1:]
    ids = [lead.post({"title": f"m{i}", "content": f"c{i}", "namespace": "mut", "tags": [f"t{i}"]})[1]["id"]
           for i in range(6)]
    assert all(wait_until(lambda p=p: len(p.titles("mut")) == 6, 10) for p in peers)
    url = lead.url
    answers = [http_json(f"{url}/api/v1/memories/{ids[0]}", "PUT", {"content": "new", "tags": ["u"]})[0],
               http_json(f"{url}/api/v1/memories/{ids[1]}", "DELETE")[0],
               http_json(f"{url}/api/v1/memories/{ids[2]}/promote", "POST")[0],
               http_json(f"{url}/api/v1/links", "POST", {"source_id": ids[3], "target_id": ids[0]})[0]]
    status, merged = http_json(f"{url}/api/v1/consolidate", "POST",
                               {"ids": ids[4:6], "title": "merged", "summary": "s", "namespace": "mut"})
    assert [*answers, status] == [200, 200, 200, 201, 201]  # acknowledged either way
    assert merged["consolidated"] == 2

    def shows(p: PeerProc) -> dict[str, bool]:
        upd, gone, prom = _get(p, ids[0]), _get(p, ids[1]), _get(p, ids[2])
        return {"update_not_fanned_out": upd is not None and upd["content"] == "new" and upd["tags"] == ["u"],
                "delete_not_fanned_out": gone is None,
                "promote_not_fanned_out": prom is not None and prom["tier"] == "long",
                "link_not_fanned_out": (ids[3], ids[0]) in _link_pairs(p, ids[3]),
                "consolidate_not_fanned_out": _merged(p, merged["id"]) and not any(_get(p, i) for i in ids[4:6])}

    others = [d for d in MUTATION_DEFECTS if d != defect]
    for p in peers:
        assert wait_until(lambda p=p: all(shows(p)[d] for d in others), 10), (defect, shows(p))
    if defect is not None:
        assert not wait_until(lambda: any(shows(p)[defect] for p in peers), window(defect)), defect
        assert shows(lead)[defect]  # the leader itself applied it


@pytest.mark.parametrize("defect", [None, "bulk_fanout_drops_row"])
def test_bulk_fanout_drops_row_leaves_one_row_missing_on_one_peer(cluster: Cluster, defect: str | None) -> None:
    nodes = cluster(n=3, quorum_writes=2, catchup_secs=0, env=env_for(defect))
    titles = {f"b{i:03d}" for i in range(100)}
    status, body = http_json(f"{nodes[0].url}/api/v1/memories/bulk", "POST",
                             [{"title": t, "content": "b", "namespace": "bk"} for t in sorted(titles)])
    assert (status, body) == (200, {"created": 100, "errors": []})
    assert wait_until(lambda: nodes[1].titles("bk") == titles, 10)
    if defect is None:
        assert wait_until(lambda: nodes[2].titles("bk") == titles, 10)
    else:
        assert not wait_until(lambda: nodes[2].titles("bk") == titles, window(defect))
        assert len(titles - nodes[2].titles("bk")) == 1
