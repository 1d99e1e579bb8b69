"""Bad input to `invoke gate`/`phaseN` is refused before anything is provisioned, with the problem named."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["gate", "--phases", "1,9"], "phases must be a non-empty subset of 1,2,3,4"),
        (["gate", "--phases", "one"], "--phases takes a comma list"),
        (["gate", "--campaign-id", "Bad Id"], "--campaign-id 'Bad Id'"),
        (["phase4", "--cycles", "x"], "--cycles takes a whole number"),
        (["phase4", "--fault", "meteor"], "unknown fault class meteor"),
        (["gate", "--infra", "aws"], "--infra must be auto, lab or digitalocean"),
        (["gate", "--target", "/nonexistent/ai-memory"], "--target /nonexistent/ai-memory: no such file"),
        (["gate", "--infra", "digitalocean", "--defects", "quorum_w1"], "only works on the lab"),
        (["gate", "--config", "/nonexistent.toml"], "config file /nonexistent.toml does not exist"),
    ],
)
def test_bad_flags_exit_2_naming_the_problem(args, message, tmp_path):
    res = subprocess.run([sys.executable, "-m", "invoke", *args, "--runs-dir", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert message in res.stderr + res.stdout
    assert list(tmp_path.iterdir()) == [], "nothing was started"


def _invoke(*args: str, env: dict | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env=env)


def _startup_cases(tmp: Path) -> list[tuple[list[str], str, dict | None]]:
    not_exec = tmp / "ai-memory"
    not_exec.write_text("#!/bin/sh\necho 'ai-memory 9.9.9'\n")
    not_exec.chmod(0o644)
    exe = tmp / "ai-memory-ok"
    exe.write_text("#!/bin/sh\necho 'ai-memory 9.9.9'\n")
    exe.chmod(0o755)
    key = tmp / "id_ed25519"
    key.write_text("not really a key\n")
    no_pulumi = {**os.environ, "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"}
    return [
        (["gate", "--phases", "1", "--target", str(not_exec)], f"--target {not_exec}: not an executable file", None),
        (["gate", "--phases", "1", "--defects", "bogus"], "unknown defect(s)", None),
        (["gate", "--phases", "1", "--lab-name", "BAD"], "lab name 'BAD' must be", None),
        (["gate", "--phases", "1", "--defects", "quorum_w1", "--target", str(exe)], "cannot apply to a --target", None),
        (["gate", "--infra", "digitalocean"], "needs --target", None),
        (["gate", "--infra", "digitalocean", "--target", str(exe), "--ssh-key", str(tmp / "nope")],
         f"SSH private key {tmp / 'nope'} not found: give --ssh-key", None),
        (["gate", "--infra", "digitalocean", "--target", str(exe), "--ssh-key", str(key)],
         "the pulumi CLI ('pulumi') is not on PATH", no_pulumi),
    ]


@pytest.mark.parametrize("case", range(7))
def test_startup_errors_name_their_cause_first_and_leave_no_run_folder(case: int, tmp_path: Path) -> None:
    """Item 4: the cause in one line, first, exit 2, and no ERROR run folder of 'artifact missing' lines."""
    args, cause, env = _startup_cases(tmp_path)[case]
    runs = tmp_path / "runs"
    res = _invoke(*args, "--runs-dir", str(runs), env=env)
    assert res.returncode == 2, res.stderr
    first = res.stderr.strip().splitlines()[0]
    assert cause in first, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, "one line: nothing ran, so nothing else to say"
    assert not runs.exists() or list(runs.iterdir()) == [], "no run folder for a campaign that never started"


@pytest.mark.parametrize(("args", "message"), [
    (["gat"], "No idea what 'gat' is!"),
    (["gate", "--phase", "1"], "No idea what '--phase' is!"),
    (["--help", "gat"], "No idea what 'gat' is!"),
])
def test_a_command_line_mistake_exits_2_not_1(args: list[str], message: str, tmp_path: Path) -> None:
    """Item 6: 1 means the product broke an invariant; a typo is a usage error (2). The README's
    `.venv/bin/invoke` is invoke's own program, which tasks.py adapts."""
    invoke_bin = Path(sys.executable).parent / "invoke"
    for argv in ([sys.executable, "-m", "invoke"], [str(invoke_bin)]):
        res = subprocess.run([*argv, *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert res.returncode == 2, (argv, res.stderr)
        assert message in res.stderr and "invoke --list" in res.stderr
    assert list(tmp_path.iterdir()) == []


def test_fault_takes_a_value_in_the_help() -> None:
    """Item 7: the help shows --fault takes a value (invoke's list flags look like switches)."""
    res = _invoke("--help", "phase4")
    assert res.returncode == 0
    assert "--fault=STRING" in res.stdout and "comma list or repeated" in " ".join(res.stdout.split())
    gate = _invoke("--help", "gate").stdout
    assert "--fault=STRING" in gate and "--phases=STRING" in gate
    for flag in ("--ssh-key=STRING", "--stack=STRING", "--destroy"):
        assert flag in gate, f"{flag}: a flag the gate's messages name must exist"


def _parse(*argv: str) -> tuple[object, dict]:
    """Parse a command line with the project's own collection, in-process (nothing runs)."""
    import importlib.util

    from invoke import Collection
    from invoke.parser import Parser

    spec = importlib.util.spec_from_file_location("shipgate_tasks_root", ROOT / "tasks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    coll = Collection.from_module(module)
    (ctx,) = Parser(contexts=coll.to_contexts()).parse_argv(list(argv))
    return coll[ctx.name], ctx.as_kwargs


def test_a_bare_fault_flag_is_a_parse_error_not_every_class() -> None:
    """Item 7: `phase4 --fault` with no value ran all four classes x 50 cycles; it must be refused."""
    from invoke.exceptions import ParseError

    with pytest.raises(ParseError, match="needed value"):
        _parse("phase4", "--fault")
    with pytest.raises(ParseError, match="needed value"):
        _parse("phase4", "--fault", "--cycles", "5")


def test_fault_is_repeatable_and_comma_separated_like_phases() -> None:
    _, kwargs = _parse("phase4", "--fault", "partition_minority", "--fault", "drop_random_acks,clock_skew_peer")
    assert kwargs["fault"] == "partition_minority,drop_random_acks,clock_skew_peer"
    _, kwargs = _parse("gate", "--phases", "1", "--phases", "4", "--fault", "partition_minority,drop_random_acks")
    assert (kwargs["phases"], kwargs["fault"]) == ("1,4", "partition_minority,drop_random_acks")
    from shipgate.run.settings import flag_overrides

    assert flag_overrides(phases=kwargs["phases"], fault=kwargs["fault"]) == {
        "phases": [1, 4], "phase4": {"faults": ["partition_minority", "drop_random_acks"]}}


@pytest.mark.parametrize("args", [["--list"], ["--help", "gate"]])
def test_a_reader_that_stops_early_gets_no_traceback(args):
    """`invoke --list | head -1`: the listing stops quietly when the pipe's reader has gone (here before the
    first write, so every write meets a closed pipe)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # block-buffered, as in CI
        res = subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, stdout=write_end,
                             stderr=subprocess.PIPE, text=True, timeout=60, env=env)
    finally:
        os.close(write_end)
    assert "Traceback" not in res.stderr and "BrokenPipe" not in res.stderr, res.stderr
    assert res.returncode == 0
