"""serve's command line follows what the target's own help lists (the capability probe)."""

from __future__ import annotations

import pytest

from shipgate.target.service import ServeSpec

FED = {"host": "node-a", "db": "d.db", "peers": ["http://10.0.0.2:9077"], "quorum_writes": 2, "quorum_timeout_ms": 3000}
V063 = ["catchup-interval-secs", "host", "port", "quorum-peers", "quorum-timeout-ms", "quorum-writes"]
V060 = [f for f in V063 if f != "catchup-interval-secs"]


def test_a_release_with_catch_up_gets_the_interval_in_whole_seconds():
    argv = ServeSpec(**FED, catchup_interval_secs=1.0, flags=V063).argv()
    assert argv[-2:] == ["--catchup-interval-secs", "1"]


def test_a_release_without_catch_up_is_started_without_the_flag_it_would_refuse():
    """0.6.0 has no catch-up at all: clap would exit 2 on the flag; without it a repair check finds none."""
    argv = ServeSpec(**FED, catchup_interval_secs=1.0, flags=V060).argv()
    assert "--catchup-interval-secs" not in argv and argv[argv.index("--quorum-writes") + 1] == "2"


def test_an_unprobed_target_gets_every_flag_asked_for():
    assert "--catchup-interval-secs" in ServeSpec(**FED, catchup_interval_secs=0).argv()


def test_a_fractional_interval_is_refused_by_name():
    with pytest.raises(ValueError, match="whole seconds"):
        ServeSpec(**FED, catchup_interval_secs=0.5).argv()


def test_a_fractional_interval_in_the_settings_is_a_settings_error():
    from shipgate.run.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match=r"phase4\.catchup_interval_secs: .*whole seconds"):
        load_settings(overrides={"phase4": {"catchup_interval_secs": 0.5}})
