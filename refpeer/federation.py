"""W-of-N quorum replication and the pull catch-up loop (contract 4.1-4.6).

A write is committed locally first (that commit is one ack), then pushed to every peer in parallel with
`POST /api/v1/sync/push`; any 2xx is an ack, a failed push gets one retry 250 ms later. The writer waits until
1 + acks >= W (201), every peer has answered without reaching it, or the deadline passes (503). Pushes are
never cancelled: they run to completion on per-peer sender threads (so a black-holed peer cannot starve a
healthy one), over keep-alive connections.

Implementation choice: pushes queued for the same peer while its senders are busy are coalesced into one
sync_push (up to 1000 memories). A 2xx acks every memory in it, exactly as it would ack each one alone, so the
quorum semantics are unchanged; with sequential writers every push carries one memory, as in the real program.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import random
import select
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from refpeer import defects
from refpeer.errors import RefPeerError
from refpeer.memory import parse_memory, ts_in
from refpeer.store import Store

log = logging.getLogger("refpeer.federation")

RETRY_DELAY_S = 0.25
HANG_CAP_S = 120.0
IGNORED_TIMEOUT_ATTEMPT_S = 10.0
CATCHUP_FIRST_TICK_S = 5.0


def normalize_peer(url: str) -> str:
    return url.strip().rstrip("/").lower()


def parse_peers(values: list[str]) -> list[str]:
    """Flatten repeated/comma-separated --quorum-peers; a duplicate (after normalisation) is an error."""
    out: list[str] = []
    seen: set[str] = set()
    for v in values:
        for raw in v.split(","):
            if not raw.strip():
                continue
            norm = normalize_peer(raw)
            parts = urlsplit(norm)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise RefPeerError(f"invalid quorum peer URL: {raw.strip()} (expected http://host:port)")
            if parts.scheme == "https":
                raise RefPeerError(f"https quorum peers are not supported by the reference peer: {raw.strip()}")
            if norm in seen:
                raise RefPeerError(f"duplicate quorum peer: {raw.strip()}")
            seen.add(norm)
            out.append(norm)
    return out


class _Conn:
    """A minimal HTTP/1.1 client connection (http.client's email-based header parsing costs more CPU than the
    whole push handling on loopback). `timeout` (the quorum timeout, as 0.6.3's per-attempt timeout) bounds the
    connect and each socket operation."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rfile = self.sock.makefile("rb")
        self.hostport = f"{host}:{port}"

    def reusable(self) -> bool:
        """hyper's check at checkout: an idle connection with anything to read (the peer's FIN or RST) is dead."""
        try:
            return not select.select([self.sock], [], [], 0)[0]
        except (OSError, ValueError):
            return False

    def exchange(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, bytes, bool]:
        payload = body or b""
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.hostport}", f"Content-Length: {len(payload)}"]
        if body is not None:
            head.append("Content-Type: application/json")
        head.extend(f"{k}: {v}" for k, v in headers.items())
        self.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
        line = self.rfile.readline(65537)
        if not line:
            raise OSError("connection closed before the response")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            raise ValueError(f"bad status line: {line[:80]!r}")
        status = int(parts[1])
        length: int | None = None
        close = parts[0] == b"HTTP/1.0"
        chunked = False
        while True:
            h = self.rfile.readline(65537)
            if h in (b"\r\n", b"\n"):
                break
            if not h:
                raise OSError("connection closed in the response headers")
            k, _, v = h.partition(b":")
            k = k.strip().lower()
            if k == b"content-length":
                length = int(v)
            elif k == b"connection":
                close = v.strip().lower() == b"close"
            elif k == b"transfer-encoding":
                chunked = b"chunked" in v.lower()
        if chunked:
            chunks = []
            while (size := int(self.rfile.readline(65537).split(b";")[0].strip() or b"0", 16)) > 0:
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
            while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                pass
            data = b"".join(chunks)
        elif length is not None:
            data = self.rfile.read(length)
            if len(data) < length:
                raise OSError("connection closed in the response body")
        else:
            data = self.rfile.read()
            close = True
        return status, data, close

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.rfile.close()
        with contextlib.suppress(OSError):
            self.sock.close()


@dataclass
class _Push:
    """One queued replication item: memories and/or deletions, and the quorum round waiting on it (if any)."""

    memories: list[dict]
    deletions: list[str]
    rnd: _Round | None
    key: str
    links: list[dict] = field(default_factory=list)

    def rows(self) -> int:
        return len(self.memories) + len(self.deletions) + len(self.links)


class Peer:
    """One peer: base URL, a keep-alive connection pool and the sender threads that drain its push queue."""

    def __init__(self, index: int, url: str, timeout_s: float, senders: int = 3) -> None:
        self.index = index
        self.id = f"peer-{index}"
        self.url = url
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.timeout_s = timeout_s
        self._idle: queue.LifoQueue[_Conn] = queue.LifoQueue()
        self.queue: deque[_Push] = deque()
        self.cv = threading.Condition()
        self.senders = senders
        self.threads: list[threading.Thread] = []
        self.last_error = ""

    def enqueue(self, item: _Push) -> None:
        with self.cv:
            self.queue.append(item)
            self.cv.notify()

    def take(self, stop: threading.Event, max_rows: int = 1000) -> list[_Push]:
        """Block until work is queued; return as many queued items as fit in one push."""
        with self.cv:
            while not self.queue:
                if stop.is_set():
                    return []
                self.cv.wait(0.5)
            batch = [self.queue.popleft()]
            rows = batch[0].rows()
            while self.queue and rows + self.queue[0].rows() <= max_rows:
                item = self.queue.popleft()
                rows += item.rows()
                batch.append(item)
            return batch

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """One HTTP exchange on a pooled keep-alive connection. As in hyper, a pooled connection the peer closed
        while idle is dropped at checkout; once the request is written, any failure (a reset included) is this
        attempt's and raises OSError, never replayed here: the fan-out's own retry decides."""
        conn = self._checkout()
        try:
            status, data, close = conn.exchange(method, path, body, headers or {})
        except (OSError, ValueError) as e:
            conn.close()
            raise OSError(str(e) or type(e).__name__) from e
        if close:
            conn.close()
        else:
            self._idle.put(conn)
        return status, data

    def _checkout(self) -> _Conn:
        """The newest idle connection still open, else a new one."""
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                return _Conn(self.host, self.port, self.timeout_s)
            if conn.reusable():
                return conn
            conn.close()

    def close(self) -> None:
        with self.cv:
            self.cv.notify_all()
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                break


@dataclass
class _Round:
    """The quorum state of one write: acks so far, how many peer tasks finished, and a condition to wait on."""

    needed: int
    peers: int
    acks: set[str] = field(default_factory=set)
    done: int = 0
    acks_at_quorum: int | None = None
    cond: threading.Condition = field(default_factory=threading.Condition)

    def report(self, peer_id: str, ok: bool) -> None:
        with self.cond:
            self.done += 1
            if ok:
                self.acks.add(peer_id)
            if self.acks_at_quorum is None and 1 + len(self.acks) >= self.needed:
                self.acks_at_quorum = 1 + len(self.acks)
            self.cond.notify_all()


@dataclass
class QuorumOutcome:
    ok: bool
    acks: int
    needed: int
    reason: str = ""

    def body(self) -> dict:
        """The 503 body of contract 4.3."""
        return {"error": "quorum_not_met", "got": self.acks, "needed": self.needed, "reason": self.reason}


class Federation:
    """Fan-out, quorum accounting and catch-up for one `serve` process."""

    def __init__(self, store: Store, peers: list[str], quorum_writes: int, timeout_ms: int,
                 catchup_interval_s: float, local_id: str) -> None:
        self.store = store
        self.timeout_s = max(timeout_ms, 1) / 1000.0
        attempt_s = IGNORED_TIMEOUT_ATTEMPT_S if defects.enabled("quorum_timeout_ignored") else self.timeout_s
        self.peers = [Peer(i, u, attempt_s) for i, u in enumerate(peers)]
        self.n = 1 + len(self.peers)
        self.w = min(max(quorum_writes, 1), self.n)
        self.catchup_interval_s = catchup_interval_s
        self.local_id = local_id
        self.stop = threading.Event()
        self.counters: dict[str, int] = {"fanout_ok": 0, "fanout_failed": 0, "fanout_aborted": 0,
                                         "catchup_applied": 0, "catchup_errors": 0}
        self._counter_lock = threading.Lock()
        self._catchup_thread: threading.Thread | None = None
        for peer in self.peers:
            for i in range(peer.senders):
                t = threading.Thread(target=self._sender_loop, args=(peer,), name=f"push-{peer.id}-{i}", daemon=True)
                t.start()
                peer.threads.append(t)

    def _count(self, key: str, n: int = 1) -> None:
        with self._counter_lock:
            self.counters[key] = self.counters.get(key, 0) + n

    # ---- fan-out ------------------------------------------------------------------------------

    def _push_body(self, mems: list[dict], deletions: list[str] | None = None,
                   links: list[dict] | None = None) -> bytes:
        body: dict = {"sender_agent_id": self.local_id, "memories": mems, "dry_run": False}
        if deletions:
            body["deletions"] = deletions
        if links:
            body["links"] = links
        return json.dumps(body, ensure_ascii=False).encode()

    def _sender_loop(self, peer: Peer) -> None:
        """Drain the peer's queue: one (coalesced) push, one retry 250 ms after a failure, then report."""
        while not self.stop.is_set():
            batch = peer.take(self.stop)
            if not batch:
                continue
            mems = [m for item in batch for m in item.memories]
            dels = [d for item in batch for d in item.deletions]
            links = [link for item in batch for link in item.links]
            body = self._push_body(mems, dels, links)
            key = batch[0].key
            ok = self._attempt(peer, body, key)
            if not ok and not self.stop.is_set() and not defects.enabled("fanout_no_retry"):
                time.sleep(RETRY_DELAY_S)
                ok = self._attempt(peer, body, key)
            self._count("fanout_ok" if ok else "fanout_failed", len(batch))
            if not ok:
                peer.last_error = f"error sending request for url ({peer.url}/api/v1/sync/push)"
            for item in batch:
                if item.rnd is not None:
                    item.rnd.report(peer.id, ok)

    def _attempt(self, peer: Peer, body: bytes, key: str, extra: dict[str, str] | None = None) -> bool:
        try:
            status, data = peer.request("POST", "/api/v1/sync/push", body,
                                        {"Idempotency-Key": key, **(extra or {})})
        except OSError as e:
            log.debug("fan-out to %s failed: %s", peer.url, e)
            return False
        if not 200 <= status < 300:
            return False
        try:
            parsed = json.loads(data)
        except ValueError:
            return True
        ids = parsed.get("ids") if isinstance(parsed, dict) else None
        return not (isinstance(ids, list) and ids and key not in ids)

    def _push_with_retry(self, peer: Peer, body: bytes, key: str) -> bool:
        """One push on the caller's thread with the single 250 ms retry (the fanout_abort path)."""
        ok = self._attempt(peer, body, key)
        if not ok and not defects.enabled("fanout_no_retry"):
            time.sleep(RETRY_DELAY_S)
            ok = self._attempt(peer, body, key)
        self._count("fanout_ok" if ok else "fanout_failed")
        return ok

    def replicate(self, mem: dict) -> QuorumOutcome:
        """Fan `mem` (already committed locally) out to every peer and wait for the quorum verdict."""
        return self._replicate([mem], [], mem["id"])

    def replicate_change(self, mems: list[dict], dels: list[str], links: list[dict], key: str) -> QuorumOutcome:
        """Fan a committed update, promote, delete, link or consolidate out, with the same quorum rules as a
        write (at 0.6.3 every HTTP write path fans out)."""
        return self._replicate(mems, dels, key, links)

    def replicate_rows(self, mems: list[dict]) -> list[str]:
        """Bulk: one quorum round per row, all queued at once (coalesced per peer), waited for together.
        Returns one `catchup to peer-N: network: …` error per peer that failed a push, as 0.6.3 does."""
        if not mems:
            return []
        needed = 1 if defects.enabled("quorum_w1") else self.w
        rounds: list[_Round] = []
        for p in self.peers:
            p.last_error = ""
        dropped = mems[len(mems) // 2]["id"] if defects.enabled("bulk_fanout_drops_row") else None
        for mem in mems:
            rnd = _Round(needed=needed, peers=len(self.peers))
            rounds.append(rnd)
            for peer in self.peers:
                if mem["id"] == dropped and peer is self.peers[-1]:
                    rnd.done += 1  # seeded: this row's push to the last peer fails once and is never retried
                    continue
                peer.enqueue(_Push([mem], [], rnd, mem["id"]))
        deadline = time.monotonic() + self.timeout_s
        for rnd in rounds:
            with rnd.cond:
                while rnd.done < rnd.peers and (left := deadline - time.monotonic()) > 0:
                    rnd.cond.wait(left)
        return [f"catchup to {p.id}: network: {p.last_error}" for p in self.peers if p.last_error]

    def _replicate(self, mems: list[dict], dels: list[str], key: str,
                   links: list[dict] | None = None) -> QuorumOutcome:
        needed = 1 if defects.enabled("quorum_w1") else self.w
        if defects.enabled("fanout_abort"):
            return self._replicate_aborting(self._push_body(mems, dels, links), key, needed)
        rnd = _Round(needed=needed, peers=len(self.peers))
        if needed <= 1:
            rnd.acks_at_quorum = 1
        for peer in self.peers:
            peer.enqueue(_Push(mems, dels, rnd, key, links or []))
        deadline = time.monotonic() + (HANG_CAP_S if defects.enabled("quorum_timeout_ignored") else self.timeout_s)
        if needed <= 1:
            if defects.enabled("quorum_w1"):
                return QuorumOutcome(True, 1, needed)
            # W=1: the real loop still checks only after the first peer outcome (or the deadline).
            with rnd.cond:
                while rnd.done == 0 and (left := deadline - time.monotonic()) > 0:
                    rnd.cond.wait(left)
                return QuorumOutcome(True, 1 + len(rnd.acks), needed)
        with rnd.cond:
            while rnd.acks_at_quorum is None and rnd.done < rnd.peers:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                rnd.cond.wait(left)
            if rnd.acks_at_quorum is not None:
                return QuorumOutcome(True, rnd.acks_at_quorum, needed)
            got = 1 + len(rnd.acks)
            all_done = rnd.done >= rnd.peers
        if defects.enabled("quorum_hang"):
            return self._hang_until_quorum(self._push_body(mems, dels, links), key, needed, rnd)
        reason = "timeout" if all_done or got > 1 else "unreachable"
        return QuorumOutcome(False, got, needed, reason)

    def _replicate_aborting(self, body: bytes, key: str, needed: int) -> QuorumOutcome:
        """Seeded defect fanout_abort: peer pushes start one at a time in random order and, once quorum is
        met, the ones not yet started are dropped (the JoinSet::shutdown bug of r14)."""
        order = list(self.peers)
        random.shuffle(order)
        acks = 0
        deadline = time.monotonic() + self.timeout_s
        for i, peer in enumerate(order):
            if 1 + acks >= needed:
                self._count("fanout_aborted", len(order) - i)
                return QuorumOutcome(True, 1 + acks, needed)
            if time.monotonic() >= deadline:
                break
            if self._push_with_retry(peer, body, key):
                acks += 1
        if 1 + acks >= needed:
            return QuorumOutcome(True, 1 + acks, needed)
        return QuorumOutcome(False, 1 + acks, needed, "timeout" if acks else "unreachable")

    def _hang_until_quorum(self, body: bytes, key: str, needed: int, rnd: _Round) -> QuorumOutcome:
        """Seeded defect quorum_hang: instead of answering 503, keep re-pushing every 250 ms (up to 120 s)."""
        end = time.monotonic() + HANG_CAP_S
        acked = set(rnd.acks)
        while time.monotonic() < end and not self.stop.is_set():
            for peer in self.peers:
                if peer.id not in acked and self._attempt(peer, body, key):
                    acked.add(peer.id)
            if 1 + len(acked) >= needed:
                return QuorumOutcome(True, 1 + len(acked), needed)
            time.sleep(RETRY_DELAY_S)
        return QuorumOutcome(False, 1 + len(acked), needed, "timeout")

    def replicate_detached(self, mems: list[dict]) -> None:
        """Push rows to every peer in the background without waiting (bulk catch-up, write-behind flush)."""
        if not mems:
            return
        for i in range(0, len(mems), 1000):
            chunk = mems[i:i + 1000]
            for peer in self.peers:
                peer.enqueue(_Push(chunk, [], None, chunk[0]["id"]))

    # ---- catch-up -----------------------------------------------------------------------------

    def start_catchup(self) -> None:
        """Start the pull loop (contract 4.5) unless disabled by interval 0 or a seeded defect."""
        if self.catchup_interval_s <= 0 or defects.enabled("no_catchup"):
            return
        self._catchup_thread = threading.Thread(target=self._catchup_loop, name="catchup", daemon=True)
        self._catchup_thread.start()

    def _catchup_loop(self) -> None:
        """As at 0.6.3: the first tick 5 s after start-up whatever the interval, then one per interval."""
        delay = CATCHUP_FIRST_TICK_S
        while not self.stop.wait(delay):
            for peer in self.peers:
                if self.stop.is_set():
                    return
                try:
                    self.catchup_peer(peer)
                except Exception as e:  # a bad peer must never kill the loop
                    self._count("catchup_errors")
                    log.warning("catch-up from %s failed: %s", peer.url, e)
            delay = self.catchup_interval_s

    def catchup_peer(self, peer: Peer) -> int:
        """Pull one page (the peer's default, <= 500 rows) of rows with `updated_at > cursor`, apply them with
        insert_if_newer and move the cursor to the greatest `updated_at` pulled; returns rows applied.

        This is 0.6.3's rule exactly: rows that tie on `updated_at` across a page boundary are skipped for
        good, which the clean peer never produces (every row gets its own timestamp; see the seeded defect
        bulk_tied_timestamps for the real program's hazard).
        """
        if defects.enabled("skew_cursor"):
            since: str | None = ts_in(-self.catchup_interval_s)
        else:
            since = self.store.sync_cursor(self.local_id, peer.id)
        path = f"/api/v1/sync/since?peer={quote(self.local_id, safe='')}"
        if since:
            path += f"&since={quote(since, safe='')}"
        status, data = peer.request("GET", path)
        if status != 200:
            raise OSError(f"GET {peer.url}{path} -> {status}")
        rows = json.loads(data).get("memories") or []
        applied = 0
        newest: str | None = None
        with self.store.transaction():
            for raw in rows:
                try:
                    mem = parse_memory(raw)
                except RefPeerError:
                    continue
                if self.store.insert_if_newer(mem) in ("inserted", "updated"):
                    applied += 1
                if newest is None or mem["updated_at"] > newest:
                    newest = mem["updated_at"]
            if newest and not defects.enabled("skew_cursor"):
                self.store.set_sync_cursor(self.local_id, peer.id, newest)
        self._count("catchup_applied", applied)
        return applied

    def close(self) -> None:
        self.stop.set()
        for p in self.peers:
            with contextlib.suppress(Exception):
                p.close()
