"""`invoke gate`, `invoke phase1`..`phase4`, `invoke selftest`, `invoke bench`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from invoke import task
from invoke.exceptions import Exit

from shipgate.evidence.phase_ids import comma_list
from shipgate.nemesis import faults
from shipgate.run.console import Console
from shipgate.run.settings import SettingsError, flag_overrides, load_settings
from shipgate.target.releases import ReleaseError, parse_spec, target_argument
from shipgate.tasks.cli import GateTask

COMMON_HELP = {
    "config": "TOML settings file (sections phase1..phase4; the flags you give override it)",
    "target": "ai-memory@X.Y.Z (a crates.io release, built into the release cache when missing) or the path "
              "of an ai-memory binary (default: the bundled reference peer, lab only)",
    "defects": "lab only: comma list of seeded reference-peer defects to switch on",
    "keep": "leave the lab up afterwards (a lab that was already up always stays up)",
    "infra": "auto (default: the Pulumi stack when it has outputs, else the lab), lab or digitalocean",
    "lab_name": "name of the lab (prefix of its namespaces), default sg",
    "campaign_id": "campaign id (lab default: gate-<utc time>-<random>; DigitalOcean: the stack's, and with "
                   "no --stack it selects the stack campaign-<id>)",
    "git_ref": "the release candidate's git ref, recorded in the summary",
    "stack": "DigitalOcean: the Pulumi stack to read (default campaign-<id> with --campaign-id, else the "
             "selected stack)",
    "ssh_key": "DigitalOcean: the operator's SSH private key (default $SHIPGATE_SSH_KEY or ~/.ssh/id_ed25519)",
    "destroy": "DigitalOcean: `pulumi destroy` the stack when the campaign is done (default: it stays up)",
    "fault": "phase 4: fault class(es), comma list or repeated (default the release classes "
             f"{', '.join(faults.DEFAULT_FAULTS)}): {faults.describe()}",
    "cycles": "phase 4: cycles per fault class (default 50)",
    "writes": "phase 4: writes per cycle (default 100)",
    "seed": "phase 4: seed of the fault moments (replays a campaign; default drawn and shown at the start)",
    "soak": "phase 4: the soak shape, 200 cycles x 100 writes (--cycles/--writes beside it win)",
    "skew": "phase 4: libfaketime offset of node-c for clock_skew_peer (default +300s)",
    "topology": "phase 4: hosts (default) or local (the upstream shape: three serves on the chaos host)",
    "runs_dir": "where run folders go (default runs/)",
}
PHASE4_ONLY = ("fault", "cycles", "writes", "seed", "soak", "skew", "topology")


def _int(flag: str, value) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Exit(f"--{flag} takes a whole number (got {value!r})", code=2) from None


def _run(phases: str | None, fixed_phases: list[int] | None = None, *, config=None, target=None, defects=None,
         keep=False, infra="auto", lab_name="sg", campaign_id=None, git_ref=None, stack=None, ssh_key=None,
         destroy=False, fault=None, cycles=None, writes=None, seed=None, soak=False, skew=None, topology=None,
         runs_dir=None) -> None:
    """Settings are the defaults, then --config, then only the flags given (None / False: not given)."""
    # why: the engine, the phases and the providers load only when a campaign runs (fast `invoke --list`)
    from shipgate.tasks import wiring

    *kinds, last = wiring.PROVIDERS
    if infra != "auto" and infra not in wiring.PROVIDERS:
        raise Exit(f"--infra must be auto, {', '.join(kinds)} or {last} (got {infra!r})", code=2)
    if defects and infra == "digitalocean":
        raise Exit("--defects seeds the bundled reference peer and only works on the lab", code=2)
    if infra == "lab" and (stack or ssh_key or destroy):
        given = ", ".join(f"--{n}" for n, v in (("stack", stack), ("ssh-key", ssh_key), ("destroy", destroy)) if v)
        raise Exit(f"{given}: DigitalOcean option(s), but --infra lab runs on the lab", code=2)
    release = None
    if target is not None:
        try:
            path, rec = target_argument(target, progress=Console())
        except ReleaseError as exc:
            raise Exit(str(exc), code=2) from None
        release = f"ai-memory@{parse_spec(target)}" if rec is not None else None
        target = str(path)
    try:
        overrides = flag_overrides(phases=phases, fault=fault, cycles=_int("cycles", cycles),
                                   writes=_int("writes", writes), seed=_int("seed", seed), soak=soak, skew=skew,
                                   topology=topology)
        if fixed_phases is not None:
            overrides["phases"] = fixed_phases
        settings = load_settings(Path(config) if config else None, overrides)
    except SettingsError as exc:
        raise Exit(str(exc), code=2) from None
    opts = wiring.CampaignOptions(settings=settings, provider=infra, lab_name=lab_name,
                           target=Path(target).absolute() if target else None,
                           defects=[d.strip() for d in (defects or "").split(",") if d.strip()], keep=keep,
                           campaign_id=campaign_id, git_ref=git_ref, stack=stack, release=release,
                           ssh_key=Path(ssh_key).expanduser() if ssh_key else None, destroy=destroy)
    if runs_dir:
        opts.runs_dir = Path(runs_dir).resolve()
    try:
        summary = wiring.run_campaign(opts)
    except wiring.CampaignError as exc:
        raise Exit(str(exc), code=2) from None
    raise Exit(code=summary.exit_code)


LONG_ONLY = ("stack", "ssh_key", "destroy")


@task(klass=GateTask, repeatable=["phases", "fault"], long_only=LONG_ONLY,
      help={"phases": f"phases to run, comma list or repeated (default {comma_list()}, or the config file's)",
            **COMMON_HELP})
def gate(c, phases=None, config=None, target=None, defects=None, keep=False, infra="auto", lab_name="sg",
         campaign_id=None, git_ref=None, fault=None, cycles=None, writes=None, seed=None, soak=False, skew=None,
         topology=None, runs_dir=None, stack=None, ssh_key=None, destroy=False):
    """Run the gate: hosts (lab, or the Pulumi stack) -> phases -> validate -> summary -> report -> teardown.

    The first lines say what will run (target, phases, fault classes, cycles x writes, seed, where) and the
    scope of the verdict: only all four phases, every release fault class and 50 x 100 or more against a real target
    can clear a release. Exit code 0 pass, 1 fail (the product broke an invariant), 2 anything else (the gate
    could not tell, or a usage mistake). Results land in runs/<campaign-id>/.
    """
    _run(phases, config=config, target=target, defects=defects, keep=keep, infra=infra, lab_name=lab_name,
         campaign_id=campaign_id, git_ref=git_ref, stack=stack, ssh_key=ssh_key, destroy=destroy, fault=fault,
         cycles=cycles, writes=writes, seed=seed, soak=soak, skew=skew, topology=topology, runs_dir=runs_dir)


P123_HELP = {k: COMMON_HELP[k] for k in COMMON_HELP if k not in PHASE4_ONLY}


def _phase_task(n: int, doc: str):
    def body(c, config=None, target=None, defects=None, keep=False, infra="auto", lab_name="sg", campaign_id=None,
             git_ref=None, runs_dir=None, stack=None, ssh_key=None, destroy=False):
        _run(None, [n], config=config, target=target, defects=defects, keep=keep, infra=infra, lab_name=lab_name,
             campaign_id=campaign_id, git_ref=git_ref, stack=stack, ssh_key=ssh_key, destroy=destroy,
             runs_dir=runs_dir)

    body.__name__ = body.__qualname__ = f"phase{n}"
    body.__doc__ = doc
    return task(klass=GateTask, long_only=LONG_ONLY, help=dict(P123_HELP))(body)


phase1 = _phase_task(1, "Phase 1 alone: functional checks on each node, in parallel (a partial gate).")
phase2 = _phase_task(2, "Phase 2 alone: federation burst, quorum probes, polled convergence (a partial gate).")
phase3 = _phase_task(3, "Phase 3 alone: SQLite -> Postgres -> SQLite migration, compared record by record "
                        "(a partial gate).")


@task(klass=GateTask, repeatable=["fault"], long_only=LONG_ONLY, help=dict(COMMON_HELP))
def phase4(c, config=None, target=None, defects=None, keep=False, infra="auto", lab_name="sg", campaign_id=None,
           git_ref=None, fault=None, cycles=None, writes=None, seed=None, soak=False, skew=None, topology=None,
           runs_dir=None, stack=None, ssh_key=None, destroy=False):
    """Phase 4 alone: the chaos campaign (the fault classes of --fault), e.g. --fault partition_minority
    or --fault partition_minority,drop_random_acks (a partial gate)."""
    _run(None, [4], config=config, target=target, defects=defects, keep=keep, infra=infra, lab_name=lab_name,
         campaign_id=campaign_id, git_ref=git_ref, stack=stack, ssh_key=ssh_key, destroy=destroy, fault=fault,
         cycles=cycles, writes=writes, seed=seed, soak=soak, skew=skew, topology=topology, runs_dir=runs_dir)


SELFTEST_HELP = {
    "shape": "reduced (default: phase 4 at 5 cycles x 50 writes, one fault class per phase-4 defect; a few "
             "minutes) or full (the gate's default settings, every release fault class)",
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
    # why: the self-test and the engine it drives load only when it runs (fast `invoke --list`)
    from shipgate.proof.selftest import (
        SelftestError,
        SelftestOptions,
        parse_defects,
        print_result,
        run_selftest,
    )
    from shipgate.tasks import wiring

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
        report = run_selftest(opts, progress=progress, run_campaign=wiring.run_campaign)
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
