"""The shell helpers, run by a real bash against real processes and a real listening socket on loopback:
quoting by construction, the one definition of liveness (a zombie is not alive, a zombie's held port is not
gone) and the remote poll loop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator

import pytest

from shipgate.hosts import shell
from shipgate.hosts.shell import Raw


def sh(script: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """As HostAccess.run runs a command: under bash."""
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=timeout)


def holds(condition: str) -> bool:
    return sh(f"{shell.PROCESS}{condition}").returncode == 0


@pytest.fixture
def sleeper() -> Iterator[int]:
    proc = subprocess.Popen(["sleep", "60"])
    yield proc.pid
    proc.kill()
    proc.wait(10)


@pytest.fixture
def zombie() -> Iterator[int]:
    """A child that exited and whose parent (exec'd into sleep) never reaps it."""
    parent = subprocess.Popen(["bash", "-c", "sleep 0.3 & echo $!; exec sleep 60"], stdout=subprocess.PIPE,
                              text=True)
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    yield pid
    parent.kill()
    parent.wait(10)


def test_words_are_quoted_by_construction() -> None:
    hostile = "a b'; rm -rf / #"
    assert sh(f"printf '%s\\n' {shell.join([hostile, 42, Raw('$HOME')])}").stdout.splitlines() == [
        hostile, "42", os.environ["HOME"]]
    assert shell.word("plain") == "plain"
    for bad in (True, 1.5, None):
        with pytest.raises(TypeError):
            shell.word(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        shell.var("p; reboot")
    assert sh(f"p=7; echo {shell.var('p')}").stdout == "7\n"


def test_contents_reads_a_pid_file_with_spaces_in_its_path(tmp_path, sleeper: int) -> None:
    pidfile = tmp_path / "a dir" / "serve 1.pid"
    pidfile.parent.mkdir()
    pidfile.write_text(f"{sleeper}\n")
    assert holds(shell.alive(shell.contents(str(pidfile))))
    assert not holds(shell.alive(shell.contents(str(tmp_path / "missing.pid"))))


def test_a_running_process_is_alive_and_a_missing_one_gone(sleeper: int) -> None:
    assert holds(shell.alive(sleeper)) and holds(shell.exists(sleeper))
    assert sh(f"{shell.PROCESS}{shell.state(sleeper)}").stdout.strip() in ("S", "R")
    os.kill(sleeper, signal.SIGSTOP)
    assert holds(shell.poll(shell.in_state(sleeper, ["T", "t"]), deadline_s=5, interval_s=0.02))
    os.kill(sleeper, signal.SIGCONT)
    for not_a_pid in ("", "self", "../1", "12 13"):
        assert sh(f"{shell.PROCESS}{shell.state(not_a_pid)}").stdout.strip() == "gone", not_a_pid
        assert not holds(shell.alive(not_a_pid))


def test_a_zombie_exists_but_is_not_alive(zombie: int) -> None:
    assert holds(shell.poll(shell.in_state(zombie, ["Z"]), deadline_s=5, interval_s=0.02))
    assert holds(shell.exists(zombie))
    assert not holds(shell.alive(zombie))


def test_gone_needs_the_port_released_too(zombie: int) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert not holds(shell.gone(zombie, port))  # the "process" is dead but its port is held
    assert holds(shell.poll(shell.gone(zombie, port), deadline_s=5, interval_s=0.02))


def test_poll_fails_at_its_deadline_and_succeeds_once_the_condition_holds(tmp_path) -> None:
    flag = tmp_path / "flag"
    never = sh(shell.poll(f"[ -e {shell.word(str(flag))} ]", deadline_s=0.2, interval_s=0.05))
    assert never.returncode != 0
    later = sh(f"(sleep 0.2; touch {shell.word(str(flag))}) & "
               + shell.poll(f"[ -e {shell.word(str(flag))} ]", deadline_s=10, interval_s=0.05) + " && echo seen")
    assert later.returncode == 0 and later.stdout == "seen\n"
    with pytest.raises(ValueError):
        shell.poll("true", deadline_s=0, interval_s=0.1)
    with pytest.raises(ValueError):
        shell.in_state(1, ["T|x"])


def test_describe_says_a_missing_pid_is_gone() -> None:
    out = sh(shell.describe(2**22 + 7, 1)).stdout.split()
    assert out[:3] == ["pid", str(2**22 + 7), "gone"] and out[-1] == "0"
