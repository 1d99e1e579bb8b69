"""The clock offset measured over real SSH on a real lab: the lab's hosts share the operator's kernel clock,
so the measured interval must contain 0, on the chaos host and on a peer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shipgate.hosts import clock
from shipgate.hosts.inventory import Inventory
from shipgate.hosts.ssh import HostAccess
from tests.lab.conftest import build_lab, needs_root, unique_name

pytestmark = [pytest.mark.lab, needs_root]
NAME = unique_name("clk")


@pytest.fixture(scope="module")
def inv() -> Iterator[Inventory]:
    yield from build_lab(NAME)


@pytest.mark.parametrize("host", ["chaos", "node-a"])
def test_measured_offset_on_one_kernel_is_zero_within_its_bound(inv: Inventory, host: str) -> None:
    with HostAccess(inv) as access:
        o = clock.measure(access, host, samples=5)
    print(f"{host}: offset {o.offset_s * 1000:+.3f} ms ± {o.uncertainty_s * 1000:.3f} ms (rtt {o.rtt_s})")
    assert o.samples == 5 and o.rtt_s is not None and o.rtt_s > 0
    assert abs(o.offset_s) <= o.uncertainty_s, o


def test_the_gate_does_not_measure_on_the_lab_it_says_one_kernel(inv: Inventory) -> None:
    with HostAccess(inv) as access:
        o = clock.offset_for(access, inv, "chaos")
    assert o.one_kernel and o.offset_s == 0.0 and o.samples == 0
