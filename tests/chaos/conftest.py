"""Shared helpers of the chaos tests: a lab per module (unique short name, torn down by a finalizer) and a
runner that drives phase 4 on it exactly as the campaign does."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from phases import phase4
from phases.base import PhaseContext
from shipgate.evidence.models import Phase4Report
from shipgate.hosts.inventory import Inventory
from shipgate.hosts.ssh import HostAccess
from shipgate.providers import lab
from shipgate.run.settings import load_settings


def lab_leftovers(name: str) -> list[str]:
    """Namespaces and links of a lab still present on the machine."""
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, timeout=10).stdout
    out = [line.split()[0] for line in ns.splitlines() if line.startswith(f"{name}-")]
    out += [line.split(": ")[1].split("@")[0] for line in links.splitlines() if f": {name}-" in line]
    return out


@pytest.fixture(scope="module")
def lab_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., Inventory]]:
    """lab_factory(name, defects) builds a lab; every lab built is torn down when the module ends."""
    built: list[str] = []

    def make(name: str, defects: list[str] | None = None) -> Inventory:
        built.append(name)
        return lab.up(name, defects=defects or [])

    yield make
    for name in built:
        lab.down(name)
        assert not lab_leftovers(name), f"lab {name} left resources behind"


def run_phase4(inv: Inventory, run_dir: Path, **phase4_settings: Any) -> Phase4Report:
    """Phase 4 on a running lab with the given settings; the report is also written as the campaign would."""
    settings = load_settings(overrides={"phases": [4], "phase4": phase4_settings})
    run_dir.mkdir(parents=True, exist_ok=True)
    with HostAccess(inv) as access:
        ctx = PhaseContext(inventory=inv, access=access, settings=settings, run_dir=run_dir, progress=print)
        report = phase4.run(ctx)
    (run_dir / "phase4.json").write_text(report.to_json())
    return report
