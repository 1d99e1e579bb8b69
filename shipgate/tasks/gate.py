"""`invoke gate`, `invoke phase1`..`phase4`, `invoke selftest`, `invoke bench`."""

from __future__ import annotations

from pathlib import Path

from invoke import task
from invoke.exceptions import Exit

COMMON_HELP = {
    "config": "TOML settings file (sections phase1..phase4; flags override it)",
    "target": "ai-memory@X.Y.Z (a crates.io release, built into the release cache when missing) or the path "
              "of an ai-memory binary (default: the bundled reference peer)",
    "defects": "lab only: comma list of seeded reference-peer defects to switch on",
    "keep": "leave the lab up afterwards (a lab that was already up always stays up)",
    "infra": "lab (default) or digitalocean (reads `pulumi stack output`)",
    "lab_name": "name of the lab (prefix of its namespaces), default sg",
    "campaign_id": "campaign id (default: gate-<utc time>-<random>)",
    "git_ref": "the release candidate's git ref, recorded in the summary",
    "fault": "phase 4: a fault class (repeatable): kill_primary_mid_write, partition_minority, "
             "drop_random_acks, clock_skew_peer",
    "cycles": "phase 4: cycles per fault class (default 50)",
    "writes": "phase 4: writes per cycle (default 100)",
    "seed": "phase 4: seed of the fault moments (replays a campaign)",
    "soak": "phase 4: the soak shape, 200 cycles x 100 writes",
    "skew": "phase 4: libfaketime offset of node-c for clock_skew_peer (default +300s)",
    "topology": "phase 4: hosts (default) or local (the upstream shape: three serves on the chaos host)",
    "runs_dir": "where run folders go (default runs/)",
}


def _int(flag: str, value) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Exit(f"--{flag} takes a whole number (got {value!r})", code=2) from None


def _run(phases: str, config=None, target=None, defects=None, keep=False, infra="lab", lab_name="sg",
         campaign_id=None, git_ref=None, fault=None, cycles=None, writes=None, seed=None, soak=False,
         skew=None, topology=None, runs_dir=None) -> None:
    from shipgate.campaign import CampaignError, CampaignOptions, run_campaign
    from shipgate.inventory import CAMPAIGN_ID_RE
    from shipgate.settings import SettingsError, load_settings, parse_phases

    if infra not in ("lab", "digitalocean"):
        raise Exit(f"--infra must be lab or digitalocean (got {infra!r})", code=2)
    if defects and infra != "lab":
        raise Exit("--defects seeds the bundled reference peer and only works on the lab", code=2)
    if target is not None:
        from shipgate.campaign import Console
        from shipgate.target.releases import ReleaseError, target_argument

        try:
            target, _release = target_argument(target, progress=Console())
        except ReleaseError as exc:
            raise Exit(str(exc), code=2) from None
    p4: dict = {"faults": list(fault) if fault else None, "cycles": cycles, "writes": writes, "seed": seed,
                "skew_offset": skew, "topology": topology}
    if soak:
        p4.update(cycles=cycles or 200, writes=writes or 100)
    try:
        settings = load_settings(Path(config) if config else None,
                                 {"phases": parse_phases(phases), "phase4": p4})
    except SettingsError as exc:
        raise Exit(str(exc), code=2) from None
    opts = CampaignOptions(settings=settings, provider=infra, lab_name=lab_name,
                           target=Path(target).resolve() if target else None,
                           defects=[d for d in (defects or "").split(",") if d], keep=keep,
                           campaign_id=campaign_id, git_ref=git_ref)
    if runs_dir:
        opts.runs_dir = Path(runs_dir).resolve()
    if campaign_id and not CAMPAIGN_ID_RE.match(campaign_id):
        raise Exit(f"--campaign-id {campaign_id!r}: use 1-63 lowercase letters, digits, '.', '_' or '-'", code=2)
    try:
        summary = run_campaign(opts)
    except CampaignError as exc:
        raise Exit(str(exc), code=2) from None
    raise Exit(code=summary.exit_code)


@task(help={"phases": "comma list of phases to run (default 1,2,3,4)", **COMMON_HELP}, iterable=["fault"])
def gate(c, phases="1,2,3,4", config=None, target=None, defects=None, keep=False, infra="lab", lab_name="sg",
         campaign_id=None, git_ref=None, fault=None, cycles=None, writes=None, seed=None, soak=False, skew=None,
         topology=None, runs_dir=None):
    """Run the gate: lab (or --infra digitalocean) -> phases -> validate -> summary -> report -> teardown.

    Exit code 0 pass, 1 fail (the product broke an invariant), 2 error (the gate could not tell).
    Results land in runs/<campaign-id>/.
    """
    _run(phases, config, target, defects, keep, infra, lab_name, campaign_id, git_ref, fault,
         _int("cycles", cycles), _int("writes", writes), _int("seed", seed), soak, skew, topology, runs_dir)


P123_HELP = {k: COMMON_HELP[k] for k in
             ("config", "target", "defects", "keep", "infra", "lab_name", "campaign_id", "git_ref", "runs_dir")}


@task(help=P123_HELP)
def phase1(c, config=None, target=None, defects=None, keep=False, infra="lab", lab_name="sg", campaign_id=None,
           git_ref=None, runs_dir=None):
    """Phase 1 alone: functional checks on each node, in parallel."""
    _run("1", config, target, defects, keep, infra, lab_name, campaign_id, git_ref, runs_dir=runs_dir)


@task(help=P123_HELP)
def phase2(c, config=None, target=None, defects=None, keep=False, infra="lab", lab_name="sg", campaign_id=None,
           git_ref=None, runs_dir=None):
    """Phase 2 alone: federation burst, quorum probes, polled convergence."""
    _run("2", config, target, defects, keep, infra, lab_name, campaign_id, git_ref, runs_dir=runs_dir)


@task(help=P123_HELP)
def phase3(c, config=None, target=None, defects=None, keep=False, infra="lab", lab_name="sg", campaign_id=None,
           git_ref=None, runs_dir=None):
    """Phase 3 alone: SQLite -> Postgres -> SQLite migration with a record-by-record comparison."""
    _run("3", config, target, defects, keep, infra, lab_name, campaign_id, git_ref, runs_dir=runs_dir)


@task(help=COMMON_HELP, iterable=["fault"])
def phase4(c, config=None, target=None, defects=None, keep=False, infra="lab", lab_name="sg", campaign_id=None,
           git_ref=None, fault=None, cycles=None, writes=None, seed=None, soak=False, skew=None, topology=None,
           runs_dir=None):
    """Phase 4 alone: the chaos campaign (kill, partition, pause, clock skew); e.g. --fault partition_minority."""
    _run("4", config, target, defects, keep, infra, lab_name, campaign_id, git_ref, fault,
         _int("cycles", cycles), _int("writes", writes), _int("seed", seed), soak, skew, topology, runs_dir)


SELFTEST_HELP = {
    "shape": "reduced (default: phase 4 at 5 cycles x 50 writes, one fault class per phase-4 defect; a few "
             "minutes) or full (the gate's default settings, every fault class)",
    "defects": "comma list of seeded defects to run (default all; 'none' runs only the clean peer)",
    "repeat": "run the clean peer N times and report the false-red rate (target 0 of 10)",
    "lab_name": "name of the labs the self-test builds, one campaign at a time (default st; must not be up)",
    "runs_dir": "where runs/selftest-<ts>/ goes (default runs/)",
    "seed": "phase 4: seed of the fault moments for every campaign (default: drawn per campaign, recorded)",
    "cross": "also run phase 4 for the phase-2 defects and phase 2 for the phase-4 defects",
    "clean": "run the clean peer (--no-clean: only the defects)",
    "quiet": "print only one line per campaign (not each campaign's progress)",
}


@task(help=SELFTEST_HELP)
def selftest(c, shape="reduced", defects=None, repeat=1, lab_name="st", runs_dir=None, seed=None, cross=False,
             clean=True, quiet=False):
    """Run the gate against the clean reference peer and each seeded defect; print the detection matrix.

    Requirements: the clean peer is green; every defect is red (fail) in the phase that owns it; a defect
    seen as `error` is a problem (the gate failed, not the product). Writes runs/selftest-<ts>/selftest.json
    and selftest.md. Exit 0 when every requirement is met, 1 when one is not, 2 when it could not finish.
    """
    import sys

    from shipgate.campaign import Console
    from shipgate.selftest import SelftestError, SelftestOptions, parse_defects, print_result, run_selftest
    from shipgate.settings import SettingsError

    if shape not in ("reduced", "full"):
        raise Exit(f"--shape must be reduced or full (got {shape!r})", code=2)
    count = _int("repeat", repeat)
    if count is None or count < 1:
        raise Exit(f"--repeat must be a whole number >= 1 (got {repeat!r})", code=2)
    try:
        opts = SelftestOptions(shape=shape, defects=parse_defects(defects), repeat=count, clean=clean,
                               cross=cross, lab_name=lab_name, seed=_int("seed", seed))
        if runs_dir:
            opts.runs_dir = Path(runs_dir).resolve()
        console = Console()
        progress = (lambda msg: console(msg) if not msg.startswith("  ") else None) if quiet else console
        report = run_selftest(opts, progress=progress)
    except (SelftestError, SettingsError) as exc:
        raise Exit(str(exc), code=2) from None
    print_result(report, opts.runs_dir / report.selftest_id, sys.stdout)
    raise Exit(code=report.exit_code)


@task(help={
    "quick": "smaller shapes everywhere (a smoke run of the harness, not figures to quote)",
    "only": "comma list of benchmark names to run (default all; `--list` shows them)",
    "list_": "list the benchmarks and exit",
    "out": "folder for <date>.json and <date>.md (default bench/results/)",
})
def bench(c, quick=False, only=None, list_=False, out=None):
    """Run the benchmarks under bench/ and write the figures to bench/results/<date>.json and .md."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    argv = [sys.executable, str(root / "bench" / "run_all.py")]
    argv += ["--quick"] if quick else []
    argv += ["--only", only] if only else []
    argv += ["--list"] if list_ else []
    argv += ["--out", str(Path(out).resolve())] if out else []
    try:
        res = subprocess.run(argv, cwd=root, timeout=4 * 3600, check=False)
    except subprocess.TimeoutExpired:
        raise Exit("bench/run_all.py did not finish within 4 hours", code=2) from None
    raise Exit(code=res.returncode)


TASKS = [gate, phase1, phase2, phase3, phase4, selftest, bench]
