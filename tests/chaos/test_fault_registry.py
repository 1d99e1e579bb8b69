"""The fault registry is the one list of fault classes: settings, the --fault help, the budget, the report's
words and the release scope all read it (no lab needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from phases.phase4 import _budget
from shipgate.evidence.models.summary import RunShape
from shipgate.evidence.report.summaries import FAULT_PLAIN
from shipgate.nemesis import faults
from shipgate.run.settings import (
    FAULT_CLASSES,
    GateSettings,
    Phase4Settings,
    SettingsError,
    load_settings,
    parse_faults,
    release_shape_gaps,
)

ROOT = Path(__file__).resolve().parents[2]


def test_every_class_is_described_and_named_once():
    assert len(faults.NAMES) == len(set(faults.NAMES)) == len(faults.FAULTS)
    for f in faults.FAULTS:
        assert f.name.isidentifier() and f.mechanism.strip() and f.plain.strip(), f
        assert callable(f.inject) and callable(f.recover)
    assert {f.name: f.plain for f in faults.FAULTS} == FAULT_PLAIN


def test_the_release_set_is_the_default_campaign_and_packet_loss_is_opt_in():
    assert FAULT_CLASSES == faults.DEFAULT_FAULTS == (
        "kill_primary_mid_write", "partition_minority", "drop_random_acks", "clock_skew_peer")
    assert "packet_loss" in faults.NAMES and "packet_loss" not in FAULT_CLASSES
    assert Phase4Settings().faults == list(FAULT_CLASSES)
    assert parse_faults("packet_loss") == ["packet_loss"]
    with pytest.raises(SettingsError, match=r"known: .*packet_loss"):
        parse_faults("meteor")
    # A default run is the release shape; adding packet_loss keeps it one, leaving a release class out does not.
    assert release_shape_gaps(GateSettings()) == []
    both = load_settings(overrides={"phase4": {"faults": [*FAULT_CLASSES, "packet_loss"]}})
    assert release_shape_gaps(both) == []
    alone = load_settings(overrides={"phases": [4], "phase4": {"faults": ["packet_loss"]}})
    assert any("kill_primary_mid_write" in g for g in release_shape_gaps(alone))


def test_catchup_need_and_budget_come_from_the_class():
    s = Phase4Settings(cycles=10)
    assert s.fanout_faults == [f.name for f in faults.FAULTS if not f.needs_catchup]
    assert {"partition_minority", "drop_random_acks", "packet_loss"} == set(s.fanout_faults)
    assert _budget(s, "partition_minority") == 60 + 6 * 10
    assert _budget(s, "clock_skew_peer") == 60 + (6 + faults.CATCHUP_FIRST_TICK_S) * 10
    assert _budget(Phase4Settings(class_budget_s=12), "clock_skew_peer") == 12


def test_the_scope_line_names_classes_beyond_the_release_set():
    shape = RunShape(phases=[1, 2, 3, 4], fault_classes=[*FAULT_CLASSES, "packet_loss"], cycles=50, writes=100)
    assert "chaos: every release fault class, packet_loss, 50 cycles" in shape.describe()
    assert "chaos: every release fault class, 50 cycles" in RunShape(
        phases=[4], fault_classes=list(FAULT_CLASSES), cycles=50, writes=100).describe()


def test_fault_help_lists_every_class_with_its_mechanism():
    res = subprocess.run([sys.executable, "-m", "invoke", "--help", "phase4"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True)
    text = "".join(res.stdout.split())  # the help wraps lines, at hyphens too
    for f in faults.FAULTS:
        assert "".join(f"{f.name}: {f.mechanism}".split()) in text, f.name


def test_unknown_class_names_the_registry():
    with pytest.raises(KeyError, match="known: kill_primary_mid_write"):
        faults.fault_class("meteor")
