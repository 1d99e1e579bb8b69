"""The offset between the operator's wall clock and a host's, measured over SSH before histories stamped by
both are compared or sorted.

Each sample brackets the host's `date +%s.%N` between two operator stamps t0 and t1: the host read its
clock somewhere in [t0, t1], so `offset = remote - (t0 + t1) / 2` is off by at most `(t1 - t0) / 2`,
whatever the SSH set-up cost or its asymmetry. The sample with the smallest round trip gives the
tightest bound and is the one kept (as NTP's clock filter does). The lab's hosts are network
namespaces of one kernel and share its CLOCK_REALTIME: there the offset is 0 by construction.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shipgate.hosts.inventory import Inventory

if TYPE_CHECKING:  # the transport is only a type here: reading answers must not load paramiko
    from shipgate.hosts.ssh import HostAccess


SAMPLES = 5
SAMPLE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Offset:
    """`host_time = reference_time + offset_s`, true within `± uncertainty_s`; the report's model
    (`shipgate.evidence.models.ClockOffset`) is validated from it, field for field."""

    host: str
    one_kernel: bool
    offset_s: float
    uncertainty_s: float
    method: str
    reference: str = "operator"
    rtt_s: float | None = None
    samples: int = 0
    measured_at: float | None = None


class ClockError(RuntimeError):
    """No sample could be taken: the host never answered with a timestamp."""


def one_kernel(host: str) -> Offset:
    return Offset(host=host, one_kernel=True, offset_s=0.0, uncertainty_s=0.0, samples=0,
                       method="one kernel clock: the lab's hosts are network namespaces sharing the operator's "
                            "CLOCK_REALTIME, so the offset is 0 by construction (not measured)")


def measure(access: HostAccess, host: str, *, samples: int = SAMPLES, timeout_s: float = SAMPLE_TIMEOUT_S,
            now: Callable[[], float] = time.time) -> Offset:
    """`samples` round trips of `date +%s.%N` on `host`; the smallest round trip's offset and bound."""
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    best: tuple[float, float, float] | None = None  # (rtt, offset, t0)
    problems: list[str] = []
    for _ in range(samples):
        t0 = now()
        res = access.run(host, "date +%s.%N", timeout=timeout_s)
        t1 = now()
        try:
            remote = float(res.stdout.strip())
        except ValueError:
            problems.append(res.describe())
            continue
        rtt = t1 - t0
        if best is None or rtt < best[0]:
            best = (rtt, remote - (t0 + t1) / 2, t0)
    if best is None:
        raise ClockError(f"{host}: no clock sample in {samples} tries: {problems[-1] if problems else '?'}")
    rtt, offset, t0 = best
    return Offset(host=host, one_kernel=False, offset_s=round(offset, 6), uncertainty_s=round(rtt / 2, 6),
                       rtt_s=round(rtt, 6), samples=samples, measured_at=t0,
                       method=f"min round trip of {samples} `date +%s.%N` over SSH; the host's stamp lies within "
                              "the operator's [send, receive], so the error is at most half that round trip")


def offset_for(access: HostAccess, inventory: Inventory, host: str = "chaos") -> Offset:
    """The lab: one kernel clock, said so. Any other provider: measured."""
    if inventory.provider == "lab":
        return one_kernel(host)
    return measure(access, host)


def to_reference(t: float, clock: str | None, offset: Offset) -> float:
    """A stamp of `clock` on the reference (operator) clock: host stamps lose the offset."""
    return t - offset.offset_s if clock == offset.host else t
