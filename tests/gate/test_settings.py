"""Settings: defaults, TOML file, flag overrides, and errors that name the problem."""

import importlib.util
from pathlib import Path

import pytest
from invoke import Collection, Context
from invoke.exceptions import Exit
from invoke.parser import Parser

from shipgate.run.settings import FAULT_CLASSES, SettingsError, load_settings, parse_phases


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


# --- item 8: defaults, then the config file, then only the flags the user actually gave -------------------

ROOT = Path(__file__).resolve().parents[2]


class _Captured(Exception):
    pass


def _settings_of(monkeypatch: pytest.MonkeyPatch, *argv: str):
    """Parse a command line as `invoke` does and return the settings the campaign would get (nothing runs)."""
    import shipgate.tasks.wiring

    seen = {}

    def capture(opts, progress=None):
        seen["opts"] = opts
        raise _Captured

    monkeypatch.setattr(shipgate.tasks.wiring, "run_campaign", capture)
    spec = importlib.util.spec_from_file_location("shipgate_tasks_root", ROOT / "tasks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    coll = Collection.from_module(module)
    (ctx,) = Parser(contexts=coll.to_contexts()).parse_argv(list(argv))
    with pytest.raises(_Captured):
        coll[ctx.name].body(Context(), **ctx.as_kwargs)
    return seen["opts"].settings


def test_config_phases_win_over_an_absent_phases_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    cfg = tmp_path / "gate.toml"
    cfg.write_text("phases = [1]\n[phase4]\ncycles = 7\n")
    assert _settings_of(monkeypatch, "gate", "--config", str(cfg)).phases == [1]
    assert _settings_of(monkeypatch, "gate", "--config", str(cfg), "--phases", "2,4").phases == [2, 4]
    assert _settings_of(monkeypatch, "gate").phases == [1, 2, 3, 4]
    assert _settings_of(monkeypatch, "phase4", "--config", str(cfg)).phases == [4], "phaseN is the phase alone"
    assert _settings_of(monkeypatch, "phase4", "--config", str(cfg)).phase4.cycles == 7


@pytest.mark.parametrize(("config", "argv", "shape"), [
    ("", ["--soak"], (200, 100)),
    ("", ["--soak", "--cycles", "300"], (300, 100)),
    ("", ["--soak", "--writes", "50"], (200, 50)),
    ("[phase4]\ncycles = 7\nwrites = 30\n", ["--soak"], (200, 100)),
    ("[phase4]\ncycles = 7\nwrites = 30\n", ["--cycles", "9"], (9, 30)),
    ("[phase4]\ncycles = 7\n", [], (7, 100)),
])
def test_soak_and_cycles_combine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: str, argv: list[str],
                                 shape: tuple[int, int]):
    cfg = tmp_path / "gate.toml"
    cfg.write_text(config)
    s = _settings_of(monkeypatch, "phase4", "--config", str(cfg), *argv)
    assert (s.phase4.cycles, s.phase4.writes) == shape


@pytest.mark.parametrize("argv", [["--soak", "--cycles", "0"], ["--cycles", "0"]])
def test_soak_with_cycles_0_is_refused_like_cycles_0(monkeypatch: pytest.MonkeyPatch, argv: list[str]):
    with pytest.raises(Exit) as exc:
        _settings_of(monkeypatch, "phase4", *argv)
    assert exc.value.code == 2 and "phase4.cycles" in exc.value.message and "from the flags" in exc.value.message


def test_fault_flag_beats_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    cfg = tmp_path / "gate.toml"
    cfg.write_text("[phase4]\nfaults = ['clock_skew_peer']\n")
    assert _settings_of(monkeypatch, "phase4", "--config", str(cfg)).phase4.faults == ["clock_skew_peer"]
    s = _settings_of(monkeypatch, "phase4", "--config", str(cfg), "--fault", "partition_minority,drop_random_acks")
    assert s.phase4.faults == ["partition_minority", "drop_random_acks"]


def test_phase4_flags_without_phase4_are_refused(monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(Exit) as exc:
        _settings_of(monkeypatch, "gate", "--phases", "1,2", "--fault", "partition_minority", "--seed", "7")
    assert exc.value.code == 2 and "--fault, --seed" in exc.value.message and "does not run phase 4" in \
        exc.value.message


def test_release_shape_gaps_name_what_is_missing():
    from shipgate.run.settings import release_shape_gaps

    assert release_shape_gaps(load_settings()) == []
    assert release_shape_gaps(load_settings(overrides={"phases": [1, 2, 3]})) == ["phase 4 not run"]
    gaps = release_shape_gaps(load_settings(overrides={"phase2": {"min_node_fraction": 0.5}, "phase4": {
        "faults": ["partition_minority"], "writes": 10, "max_lost": 3}}))
    assert gaps == ["fault classes kill_primary_mid_write, drop_random_acks, clock_skew_peer not run",
                    "50 cycles x 10 writes is below the release shape 50 x 100",
                    "phase2.min_node_fraction 0.5 is looser than the release's 0.95",
                    "phase4.max_lost 3 is looser than the release's 0"]
    assert release_shape_gaps(load_settings(overrides={"phase4": {"cycles": 200}})) == [], "more is fine"
    small = load_settings(overrides={"phase2": {"workload": {"title_updates": 0, "bulk_rows": 900}}})
    assert release_shape_gaps(small) == ["phase2.workload is smaller than the release's: title_updates 0 < 2"]
    off = load_settings(overrides={"phase2": {"workload": {"enabled": False}}})
    assert release_shape_gaps(off) == ["phase2.workload is disabled: only stores are checked for replication"]
