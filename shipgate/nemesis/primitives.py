"""Fault primitives for the chaos phase, each returning evidence that it took effect.

Everything runs as SSH commands on the host itself (iptables in its own network namespace, signals to a
PID in its own PID space, /proc read back), so the same code works on lab namespaces and on droplets.
A fault whose effect cannot be read back is reported with `took_effect=False` (an `error` for the gate),
never assumed: the upstream gate passed whole chaos classes in which the fault had not happened.
"""

from __future__ import annotations

import glob
import re
import shlex
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from shipgate.hosts import shell
from shipgate.hosts.inventory import Inventory
from shipgate.hosts.result import CommandResult

if TYPE_CHECKING:  # the transport is only a type here: reading answers must not load paramiko
    from shipgate.hosts.ssh import HostAccess

TAG = "shipgate-nemesis"
_OFFSET_RE = re.compile(r"^([+-])(\d+(?:\.\d+)?)([smhdy]?)$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "y": 365 * 86400}
_ADDRESS_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_MARKER_RE = re.compile(r"^[A-Za-z0-9._-]{4,64}$")  # safe inside the rule's quotes
_DEV_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")  # an interface name as `ip route get` prints it

FaultKind = Literal["partition", "loss", "refuse", "heal", "pause", "resume", "kill", "clock", "cleanup"]


class NemesisError(ValueError):
    """A fault was asked for with arguments that cannot make sense (unknown host, bad offset...)."""


class FaultEvidence(BaseModel):
    """What a fault primitive did and what was read back to prove it."""

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    host: str
    target: str = Field(description="what the fault was aimed at: peers:port, or a PID")
    started_at: float = Field(description="Unix seconds when the fault was applied")
    healed_at: float | None = Field(None, description="Unix seconds when it was lifted (heal/resume)")
    took_effect: bool = Field(description="the read-back showed the intended state")
    details: dict[str, JsonValue] = Field(default_factory=dict)
    error: str | None = Field(None, description="why the fault could not be applied or verified")

    def summary(self) -> str:
        """One line for a cycle record's `fault_evidence` list."""
        state = "took effect" if self.took_effect else f"NOT in effect ({self.error or 'read-back mismatch'})"
        keys = ("dropped_packets", "state", "offset_s", "rules", "removed", "probability")
        extra = ", ".join(f"{k}={self.details[k]}" for k in keys if k in self.details)
        return f"{self.kind} on {self.host} [{self.target}]: {state}" + (f" ({extra})" if extra else "")


def _failed(kind: FaultKind, host: str, target: str, started: float, res: CommandResult,
            **details: JsonValue) -> FaultEvidence:
    return FaultEvidence(kind=kind, host=host, target=target, started_at=started, took_effect=False,
                         details={**details, "stdout": res.stdout[-500:], "stderr": res.stderr[-500:]},
                         error=res.error or f"exit {res.exit_code}: {res.stderr.strip()[-300:]}")


def _check_host(inventory: Inventory, host: str) -> None:
    if host not in inventory.hosts:
        raise NemesisError(f"unknown host {host!r} (inventory has {', '.join(inventory.hosts)})")


# -- partitions and packet loss: tagged iptables DROP rules -------------------------------------------
def _partition_rules(targets: Sequence[tuple[str, str, int]], both_ways: bool) -> list[str]:
    """DROP rules cutting the host off from each (name, address, port): its connections to the address's
    port and (both_ways) that address's connections to the same port here, tagged with the peer's name."""
    rules = []
    for name, addr, port in targets:
        comment = f'-m comment --comment "{TAG} partition {name}"'
        rules.append(f"OUTPUT -d {addr}/32 -p tcp -m tcp --dport {int(port)} {comment} -j DROP")
        if both_ways:
            rules.append(f"INPUT -s {addr}/32 -p tcp -m tcp --dport {int(port)} {comment} -j DROP")
    return rules


def _insert_rules(access: HostAccess, host: str, rules: Sequence[str]) -> tuple[CommandResult, set[int]]:
    """Insert each rule first in its chain unless present, then read the ruleset back with -C: the kernel's
    ruleset, not our intent, decides what stands. Returns the indices of the rules present."""
    lines = []
    for i, rule in enumerate(rules):
        chain, spec = rule.split(" ", 1)
        lines.append(f"iptables -w 5 -C {rule} 2>/dev/null || iptables -w 5 -I {chain} 1 {spec} "
                     f"|| echo insert-failed:{i}")
    lines += [f"if iptables -w 5 -C {rule} 2>/dev/null; then echo present:{i}; else echo missing:{i}; fi"
              for i, rule in enumerate(rules)]
    res = access.run(host, "\n".join(lines), timeout=30)
    return res, {int(ln.split(":")[1]) for ln in res.stdout.split() if ln.startswith("present:")}


def partition_addresses(access: HostAccess, host: str, targets: Sequence[tuple[str, str, int]], *,
                        both_ways: bool = True) -> FaultEvidence:
    """Cut `host` off from each (name, address, port) with tagged DROP rules in its own firewall; `heal`
    lifts them. The one partition primitive: peers' private addresses on droplets and the lab, or upstream's
    loopback ports on one host (`--topology local`)."""
    if not targets:
        raise NemesisError("partition needs at least one peer")
    bad = [addr for _, addr, _ in targets if not _ADDRESS_RE.match(addr)]
    if bad:
        raise NemesisError(f"partition from {', '.join(bad)}: not IPv4 addresses")
    target = ",".join(f"{name}:{port}" for name, _, port in targets)
    ports = {int(port) for _, _, port in targets}
    if len(ports) == 1:
        target = f"{','.join(name for name, _, _ in targets)}:{ports.pop()}"
    rules = _partition_rules(targets, both_ways)
    started = time.time()
    res, present = _insert_rules(access, host, rules)
    if res.error:
        return _failed("partition", host, target, started, res)
    missing = [r for i, r in enumerate(rules) if i not in present]
    return FaultEvidence(
        kind="partition", host=host, target=target, started_at=started, took_effect=not missing,
        details={"rules": len(present), "installed": [r for i, r in enumerate(rules) if i in present],
                 "missing": missing, "both_ways": both_ways},
        error=f"rules not in effect after insertion: {missing} ({res.stderr.strip()[-300:]})" if missing else None,
    )


def partition(access: HostAccess, inventory: Inventory, host: str, peers: Sequence[str], *,
              port: int | None = None, both_ways: bool = True) -> FaultEvidence:
    """Cut `host` off from `peers` on `port` (default: the federation port) with iptables DROP rules in
    the host's own firewall: its connections to each peer's private address, and (both_ways) the peers'
    connections to it. Rules are inserted first and tagged so `heal` finds them; re-applying is harmless."""
    _check_host(inventory, host)
    peers = list(dict.fromkeys(peers))
    if not peers:
        raise NemesisError("partition needs at least one peer")
    for peer in peers:
        _check_host(inventory, peer)
        if peer == host:
            raise NemesisError(f"cannot partition {host} from itself")
    port = port or inventory.federation_port
    return partition_addresses(access, host, [(p, inventory.hosts[p].private_address, port) for p in peers],
                               both_ways=both_ways)


def packet_loss(access: HostAccess, host: str, toward: str, probability: float) -> FaultEvidence:
    """Drop a random `probability` of every packet `host` sends on the link that carries its traffic to
    `toward` (the interface `ip route get` names: the VPC link, or lo for a loopback peer), with a tagged
    iptables `statistic` rule; `heal(..., what="loss")` lifts it. The kernel's listing of the rule is read
    back and its probability parsed: the evidence. (tc netem would be the usual tool, but kernels without
    sch_netem exist, this machine's among them; xt_statistic is in every stock kernel.)"""
    if not 0 < probability < 1:
        raise NemesisError(f"a loss probability is in (0, 1), not {probability}")
    if not _ADDRESS_RE.match(toward):
        raise NemesisError(f"packet loss toward {toward!r}: not an IPv4 address")
    started = time.time()
    route = access.run(host, f"ip -o route get {toward}", timeout=15)
    m = re.search(r" dev (\S+)", route.stdout)
    if not route.ok or not m or not _DEV_RE.match(m.group(1)):
        return _failed("loss", host, toward, started, route)
    dev = m.group(1)
    rule = (f"OUTPUT -o {dev} -m statistic --mode random --probability {probability:.6f} "
            f'-m comment --comment "{TAG} loss {dev}" -j DROP')
    res, present = _insert_rules(access, host, [rule])
    if res.error:
        return _failed("loss", host, dev, started, res)
    listing = access.run(host, f"iptables -w 5 -S OUTPUT | grep -F -- '{TAG} loss {dev}' || true", timeout=15)
    found = re.search(r"--probability (\d+(?:\.\d+)?)", listing.stdout)
    kernel_p = float(found.group(1)) if found else None
    ok = bool(present) and kernel_p is not None and abs(kernel_p - probability) < 1e-3
    return FaultEvidence(
        kind="loss", host=host, target=dev, started_at=started, took_effect=ok,
        details={"dev": dev, "toward": toward, "probability": kernel_p, "rules": len(present),
                 "listed": listing.stdout.strip()[:500]},
        error=None if ok else f"loss rule not in effect on {dev}: listed {listing.stdout.strip()[:200]!r}",
    )


def refuse_once(access: HostAccess, inventory: Inventory, host: str, peer: str, marker: str, *,
                port: int | None = None) -> FaultEvidence:
    """Refuse the first packet `host` sends to `peer`'s port (default: the federation port) that carries
    `marker`, and no other: a tagged REJECT --reject-with tcp-reset behind a `string` match and an `nth`
    statistic that matches once, then not for a million more. One failed attempt of one request, with no
    timing to tune and no other traffic touched: a fan-out POST of a row with that title fails at once, a
    retry goes through. `heal(..., what="refuse")` lifts it and reads how many packets it refused."""
    _check_host(inventory, host)
    _check_host(inventory, peer)
    if peer == host:
        raise NemesisError(f"cannot refuse {host}'s packets to itself")
    if not _MARKER_RE.match(marker):
        raise NemesisError(f"refuse marker {marker!r}: 4-64 characters of A-Z a-z 0-9 . _ -")
    port = port or inventory.federation_port
    addr = inventory.hosts[peer].private_address
    if not _ADDRESS_RE.match(addr):
        raise NemesisError(f"refuse toward {addr!r}: not an IPv4 address")
    every = 1_000_000
    rule = (f'OUTPUT -d {addr}/32 -p tcp -m tcp --dport {int(port)} -m string --string "{marker}" --algo bm '
            f"-m statistic --mode nth --every {every} --packet 0 "
            f'-m comment --comment "{TAG} refuse {peer}" -j REJECT --reject-with tcp-reset')
    target = f"{peer}:{port}"
    started = time.time()
    res, present = _insert_rules(access, host, [rule])
    if res.error:
        return _failed("refuse", host, target, started, res)
    return FaultEvidence(
        kind="refuse", host=host, target=target, started_at=started, took_effect=bool(present),
        details={"rules": len(present), "installed": [rule] if present else [], "marker": marker},
        error=None if present else f"refuse rule not in effect after insertion ({res.stderr.strip()[-300:]})",
    )


def heal(access: HostAccess, inventory: Inventory, host: str,
         what: Literal["partition", "loss", "refuse"] | None = "partition") -> FaultEvidence:
    """Remove every nemesis rule of kind `what` on `host` (None: every kind; idempotent). The rules' counters
    are read first: the evidence that packets were really dropped (or refused) while the rules stood."""
    _check_host(inventory, host)
    label = f"{TAG} {what}" if what else TAG
    target = f"{what} rules" if what else "nemesis rules"
    started = time.time()
    listing = access.run(host, f"iptables -w 5 -S -v | grep -F -- '{label}' || true", timeout=30)
    if not listing.ok:
        return _failed("heal", host, target, started, listing)
    counters: list[dict[str, JsonValue]] = []
    deletes: list[str] = []
    for line in listing.stdout.splitlines():
        if not line.startswith("-A "):
            continue
        m = re.search(r" -c (\d+) (\d+)", line)
        spec = re.sub(r" -c \d+ \d+", "", line)
        counters.append({"rule": spec, "packets": int(m.group(1)) if m else None,
                         "bytes": int(m.group(2)) if m else None})
        deletes.append("iptables -w 5 -D " + spec[3:])
    check = f"iptables -w 5 -S | grep -cF -- '{label}' || true"
    res = access.run(host, "; ".join([*deletes, check]), timeout=30)
    healed = time.time()
    remaining = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""
    dropped = sum(int(c["packets"] or 0) for c in counters)  # type: ignore[call-overload]
    ok = res.error is None and remaining == "0"
    return FaultEvidence(
        kind="heal", host=host, target=target, started_at=started, healed_at=healed,
        took_effect=ok,
        details={"removed": len(deletes), "dropped_packets": dropped, "counters": counters,
                 "remaining_rules": remaining},
        error=None if ok else (res.error or f"{target} still present: {remaining or res.stderr.strip()}"),
    )


# -- processes ----------------------------------------------------------------------------------------
def _signal(access: HostAccess, kind: FaultKind, host: str, pid: int, signal: str, until: str,
            timeout: float = 5) -> FaultEvidence:
    if int(pid) <= 1:
        raise NemesisError(f"refusing to signal PID {pid}")
    p = shell.var("p")
    script = (
        shell.PROCESS
        + f"p={int(pid)}; b=$({shell.state(p)}); [ \"$b\" = gone ] && {{ echo before=gone; exit 3; }}; "
        + "echo before=$b; echo cmd=$(tr '\\0' ' ' < /proc/$p/cmdline | cut -c1-200); "
        + f"kill -{shell.word(signal)} {p} || exit 4; "
        + shell.poll(shell.in_state(p, until.split("|")), deadline_s=timeout, interval_s=0.02) + "; "
        + f"echo after=$({shell.state(p)})"
    )
    started = time.time()
    res = access.run(host, script, timeout=timeout + 10)
    vals = dict(ln.split("=", 1) for ln in res.stdout.splitlines() if "=" in ln)
    details: dict[str, JsonValue] = {"pid": int(pid), "signal": signal, "state_before": vals.get("before"),
                                     "state": vals.get("after"), "cmdline": vals.get("cmd")}
    if res.exit_code == 3:
        return FaultEvidence(kind=kind, host=host, target=f"pid {pid}", started_at=started, took_effect=False,
                             details=details, error=f"process {pid} does not exist on {host}")
    if not res.ok:
        return _failed(kind, host, f"pid {pid}", started, res, **details)
    after = vals.get("after", "")
    ok = any(after == alt for alt in until.split("|"))
    healed = time.time() if kind == "resume" else None
    return FaultEvidence(kind=kind, host=host, target=f"pid {pid}", started_at=started, healed_at=healed,
                         took_effect=ok, details=details,
                         error=None if ok else f"state after SIG{signal} is {after!r}, wanted {until}")


def pause(access: HostAccess, host: str, pid: int) -> FaultEvidence:
    """SIGSTOP; took effect when /proc/<pid>/stat shows state T (stopped)."""
    return _signal(access, "pause", host, pid, "STOP", "T|t")


def resume(access: HostAccess, host: str, pid: int) -> FaultEvidence:
    """SIGCONT; took effect when the process is no longer stopped."""
    return _signal(access, "resume", host, pid, "CONT", "R|S|D|I")


def kill(access: HostAccess, host: str, pid: int) -> FaultEvidence:
    """SIGKILL; took effect when the PID is gone (or a zombie awaiting its parent)."""
    return _signal(access, "kill", host, pid, "KILL", "gone|Z|X")


# -- clock skew ---------------------------------------------------------------------------------------
def faketime_library() -> str:
    """Path of libfaketime's preload library (Debian/Ubuntu put it under /usr/lib/<triplet>/faketime)."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1")) + sorted(
        glob.glob("/usr/lib/faketime/libfaketime.so.1"))
    if not found:
        raise NemesisError("libfaketime.so.1 not found (Debian package libfaketime); run ./scripts/setup")
    return found[0]


def offset_seconds(offset: str) -> float:
    """Seconds of a relative FAKETIME offset such as '+300', '-90s', '+2m', '-1.5h', '+1d'."""
    m = _OFFSET_RE.match(offset.strip())
    if not m:
        raise NemesisError(f"clock offset {offset!r} must look like +300, -90s, +2m, -1.5h or +1d")
    value = float(m.group(2)) * _UNIT_S[m.group(3)]
    return value if m.group(1) == "+" else -value


def skew_env(offset: str, *, library: str | None = None) -> dict[str, str]:
    """Environment that starts a program with its wall clock shifted by `offset`, through LD_PRELOAD (not
    the `faketime` wrapper, which forks: the PID must be the program's own). Monotonic time stays real, so
    the program's timeouts keep working. Only dynamically linked programs can be skewed."""
    offset_seconds(offset)
    return {
        "LD_PRELOAD": library or faketime_library(),
        "FAKETIME": offset.strip(),
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }


def read_clock_offset(access: HostAccess, host: str, pid: int, *, tolerance_s: float = 2.0) -> FaultEvidence:
    """Read the skew a running process sees: libfaketime must be mapped into it (/proc/<pid>/maps), and
    `date` run under the process's own LD_PRELOAD/FAKETIME* environment (from /proc/<pid>/environ) is
    compared with the real clock. Took effect when the measured offset matches FAKETIME."""
    script = (
        f"p={int(pid)}; [ -r /proc/$p/environ ] || {{ echo gone; exit 3; }}; "
        "echo maps=$(grep -c faketime /proc/$p/maps); "
        "envs=$(tr '\\0' '\\n' < /proc/$p/environ | grep -E '^(LD_PRELOAD|FAKETIME[A-Z_]*)=' "
        "| grep -v '^FAKETIME_SHARED=' | tr '\\n' ' '); echo env=$envs; "
        "echo real0=$(date +%s.%N); echo fake=$(env $envs date +%s.%N); echo real1=$(date +%s.%N)"
    )
    started = time.time()
    res = access.run(host, script, timeout=30)
    if res.exit_code == 3:
        return FaultEvidence(kind="clock", host=host, target=f"pid {pid}", started_at=started,
                             took_effect=False, details={"pid": int(pid)},
                             error=f"process {pid} does not exist on {host}")
    if not res.ok:
        return _failed("clock", host, f"pid {pid}", started, res, pid=int(pid))
    vals = dict(ln.split("=", 1) for ln in res.stdout.splitlines() if "=" in ln)
    env = dict(w.split("=", 1) for w in shlex.split(vals.get("env", "")) if "=" in w)
    try:
        real = (float(vals["real0"]) + float(vals["real1"])) / 2
        measured = round(float(vals["fake"]) - real, 3)
    except (KeyError, ValueError):
        return _failed("clock", host, f"pid {pid}", started, res, pid=int(pid))
    mapped = vals.get("maps", "0").strip() not in ("", "0")
    expected: float | None = None
    try:
        expected = offset_seconds(env.get("FAKETIME", ""))
    except NemesisError:
        expected = None
    if expected is not None:
        ok = mapped and abs(measured - expected) <= tolerance_s
    else:
        ok = mapped and abs(measured) > tolerance_s
    why = None
    if not mapped:
        why = "libfaketime is not loaded in the process (static binary, or started without LD_PRELOAD)"
    elif not ok:
        why = f"measured offset {measured}s, expected {expected}s (±{tolerance_s}s)"
    return FaultEvidence(
        kind="clock", host=host, target=f"pid {pid}", started_at=started, took_effect=ok,
        details={"pid": int(pid), "offset_s": measured, "expected_offset_s": expected, "faketime_mapped": mapped,
                 "faketime": env.get("FAKETIME"), "ld_preload": env.get("LD_PRELOAD")},
        error=why,
    )


def clean_faketime_shm(access: HostAccess, host: str) -> FaultEvidence:
    """Remove the /dev/shm files libfaketime leaves behind for processes that no longer exist (it names
    them after the creating PID). On the lab each host's /dev/shm is private and vanishes with the host;
    on a droplet this is the cleanup."""
    script = (shell.PROCESS + "for f in /dev/shm/faketime_shm_* /dev/shm/sem.faketime_sem_*; do "
              "[ -e \"$f\" ] || continue; p=${f##*_}; "
              f"{shell.exists(shell.var('p'))} || {{ rm -f \"$f\" && echo \"$f\"; }}; done")
    started = time.time()
    res = access.run(host, script, timeout=30)
    if not res.ok:
        return _failed("cleanup", host, "/dev/shm", started, res)
    removed = [ln for ln in res.stdout.splitlines() if ln.strip()]
    return FaultEvidence(kind="cleanup", host=host, target="/dev/shm", started_at=started, took_effect=True,
                         details={"removed": len(removed), "files": removed})
