"""Settings: defaults, TOML file, flag overrides, and errors that name the problem."""

from pathlib import Path

import pytest

from shipgate.settings import FAULT_CLASSES, SettingsError, load_settings, parse_phases


def test_defaults_are_the_gate_shape():
    s = load_settings()
    assert s.phases == [1, 2, 3, 4]
    assert s.phase2.quorum_writes == 2 and s.phase2.quorum_timeout_ms == 3000
    assert len(s.phase2.agents) == 4 and s.phase2.writes_per_agent == 50
    assert s.phase4.faults == list(FAULT_CLASSES) and (s.phase4.cycles, s.phase4.writes) == (50, 100)


def test_file_then_flags(tmp_path: Path):
    cfg = tmp_path / "gate.toml"
    cfg.write_text('phases = [2]\n[phase4]\ncycles = 7\nwrites = 30\n[phase1]\ntool_count_min = 8\n')
    s = load_settings(cfg, {"phase4": {"cycles": 3, "writes": None}})
    assert s.phases == [2]
    assert s.phase4.cycles == 3 and s.phase4.writes == 30
    assert s.phase1.tool_count_min == 8


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        ("[phase4]\nfaults = ['meteor']\n", None, "unknown fault class meteor"),
        ("[phase2]\nquorum_writes = 0\n", None, "phase2.quorum_writes"),
        ("[phase9]\nx = 1\n", None, "phase9"),
        ("phases = [", None, "not valid TOML"),
        ("", {"phases": [5]}, "phases must be a non-empty subset"),
    ],
)
def test_bad_settings_name_the_problem(tmp_path: Path, text, overrides, message):
    cfg = tmp_path / "gate.toml"
    cfg.write_text(text)
    with pytest.raises(SettingsError, match=message):
        load_settings(cfg, overrides)


def test_missing_config_file_is_named(tmp_path: Path):
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_parse_phases():
    assert parse_phases("1, 3") == [1, 3]
    with pytest.raises(SettingsError, match="comma list"):
        parse_phases("one")
