"""One campaign, start to finish: inventory -> install -> phases -> validate -> summary -> report -> teardown.

The flow never says green without evidence: a phase that cannot run writes an `error` report, an
interrupted campaign writes an `error` summary, validation runs before teardown, and teardown runs on
every exit path (normal end, failure, exception, Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import secrets
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from shipgate.evidence.atomic import write_text
from shipgate.evidence.models import (
    CampaignSummary,
    Check,
    InventoryRecord,
    Phase1NodeReport,
    PhaseReportBase,
    TargetRef,
    VerdictScope,
)
from shipgate.evidence.models.phases import PHASE_MODELS
from shipgate.evidence.verdict import campaign_verdict
from shipgate.hosts.inventory import CAMPAIGN_ID_RE, HOST_NAMES, PEER_NAMES, Inventory
from shipgate.run.settings import GateSettings
from shipgate.target.capabilities import probe_host

ROOT = Path(__file__).resolve().parents[2]


class CampaignError(ValueError):
    """The campaign cannot start (bad options); nothing was provisioned."""


class Interrupted(BaseException):
    """SIGTERM (or SIGINT) asked the campaign to stop; teardown still runs."""


@dataclass
class CampaignOptions:
    settings: GateSettings
    # auto: DigitalOcean when the Pulumi stack (named by `stack`, or campaign-<id>, or the selected one) has
    # outputs, else the lab. The CLI's default; the library's is the lab.
    provider: Literal["auto", "lab", "digitalocean"] = "lab"
    lab_name: str = "sg"
    target: Path | None = None
    release: str | None = None  # `ai-memory@X.Y.Z` when --target named a release (then `target` is its binary)
    defects: list[str] = field(default_factory=list)
    keep: bool = False
    runs_dir: Path = ROOT / "runs"
    campaign_id: str | None = None
    git_ref: str | None = None
    inventory: Inventory | None = None  # given directly (tests); then nothing is provisioned
    render: bool = True
    ssh_key: Path | None = None  # DigitalOcean: the operator's private key (default ~/.ssh/id_ed25519)
    stack: str | None = None  # DigitalOcean: the Pulumi stack (default campaign-<id>, else the selected one)
    destroy: bool = False  # DigitalOcean: `pulumi destroy` the stack once the campaign is summarised


@dataclass
class Plan:
    """What a campaign will run, settled before anything exists: every startup error is raised while making it."""

    campaign_id: str
    provider: Literal["lab", "digitalocean"]
    where: str
    settings: GateSettings
    target: TargetRef
    inventory: Inventory | None = None  # the lab already up, or the stack's hosts; None: the lab is built
    stack: str | None = None
    stack_campaign: str | None = None
    outputs: dict[str, Any] | None = None


def new_campaign_id(prefix: str = "gate") -> str:
    return f"{prefix}-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


class Console:
    """Progress lines on stderr with elapsed time: CI logs and terminals both read them."""

    def __init__(self, stream: Any = None) -> None:
        self.t0 = time.monotonic()
        self.stream = stream or sys.stderr

    def __call__(self, msg: str) -> None:
        print(f"[{time.monotonic() - self.t0:7.1f}s] {printable(msg)}", file=self.stream, flush=True)


_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Control characters escaped: a target's output quoted in a progress line can neither drive the
    terminal (escape sequences) nor forge log lines (newlines)."""
    return _CONTROL_RE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """SIGTERM/SIGINT become `Interrupted` while phases run, so `finally` blocks tear down."""
    def handler(signum: int, _frame: Any) -> None:
        raise Interrupted(signal.Signals(signum).name)

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[list[str]]:
    """During teardown a second Ctrl-C must not leave the lab half removed: signals are noted, not obeyed."""
    seen: list[str] = []

    def handler(signum: int, _frame: Any) -> None:
        seen.append(signal.Signals(signum).name)

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield seen
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def error_report(phase: int, reason: str, *, node: str | None = None, host: str | None = None) -> PhaseReportBase:
    """The report of a phase that could not run: one error check naming why."""
    check = Check.error(f"phase{phase}.ran", "the phase runs to completion", reason)
    model = PHASE_MODELS[phase]
    extra: dict[str, Any] = {"error": reason}
    if model is Phase1NodeReport:
        extra.update(node=node, host=host or node or "unknown")
    return model.from_checks([check], **extra)


def _artifact_name(phase: int, report: PhaseReportBase) -> str:
    return report.artifact_name if phase == 1 else f"phase{phase}.json"


def run_campaign(opts: CampaignOptions, progress: Callable[[str], None] | None = None) -> CampaignSummary:
    """Run a campaign and return its summary (already written to runs/<id>/).

    Startup errors (bad target, defects, lab name, a lab up with another target, no SSH key, no pulumi, an
    unreadable stack) raise `CampaignError` before any run folder exists.
    """
    progress = progress or Console()
    plan = prepare(opts)
    settings = plan.settings
    opts = replace(opts, settings=settings)
    campaign_id = plan.campaign_id
    run_dir = opts.runs_dir / campaign_id
    if run_dir.exists():
        raise CampaignError(f"campaign id {campaign_id!r} already has a run folder ({run_dir}); choose another")
    run_dir.mkdir(parents=True)
    started_at = datetime.now(UTC)
    t0 = time.monotonic()
    durations: dict[str, float] = {}
    reasons: list[str] = []
    inventory: Inventory | None = None
    access = None
    built_lab = False
    target = plan.target

    @contextlib.contextmanager
    def step(name: str) -> Iterator[None]:
        t = time.monotonic()
        try:
            yield
        finally:
            durations[name] = round(time.monotonic() - t, 3)

    scope = VerdictScope.of(target, settings, installed=False)
    progress(f"campaign {campaign_id}: {scope.shape.describe()}; target {scope.target}; on {plan.where}")
    progress(f"scope: {scope.headline}")
    # Outermost: once the phases stop (or are interrupted), a second Ctrl-C or a SIGTERM is noted, not
    # obeyed, until teardown and the summary are done; no gap where the default handler could kill the gate.
    with _signals_deferred() as ignored:
        try:
            with _signals_raise():
                with step("provision"):
                    inventory, built_lab = _provide(opts, plan, progress)
                target = TargetRef.of(inventory.target)
                write_text(run_dir / "inventory.json", InventoryRecord.from_inventory(inventory).to_json())
                from shipgate.hosts.ssh import HostAccess

                access = HostAccess(inventory)
                with step("install"):
                    inventory, target = _install(opts, inventory, access, progress, target)
                # again, with the version read back and the capability probe
                write_text(run_dir / "inventory.json", InventoryRecord.from_inventory(inventory).to_json())
                _run_phases(opts, inventory, access, run_dir, durations, progress)
                with step("validate"):
                    from shipgate.evidence.validate import validate_run

                    problems = validate_run(run_dir)
                    if problems:
                        reasons += [f"invalid artifact: {p}" for p in problems]
                        progress(f"validation: {len(problems)} problem(s)")
        except Interrupted as exc:
            reasons.append(f"interrupted by {exc}: the campaign did not finish")
            progress(f"interrupted by {exc}; tearing down")
        except KeyboardInterrupt:
            reasons.append("interrupted by SIGINT: the campaign did not finish")
            progress("interrupted; tearing down")
        except Exception as exc:
            reasons.append(f"the gate failed: {type(exc).__name__}: {exc}")
            progress(f"gate error: {type(exc).__name__}: {exc}; tearing down")
        finally:
            with step("teardown"):
                _teardown(opts, plan, access, built_lab, progress)
        summary = _summarise(opts, plan, run_dir, started_at, t0, durations, reasons, target, progress)
        if ignored:
            progress(f"signals during teardown and the summary ignored until they finished: {', '.join(ignored)}")
    return summary


def prepare(opts: CampaignOptions) -> Plan:
    """Settle the campaign before anything is created: provider, target, hosts, run id and seed.

    Every startup error is a `CampaignError` naming its cause in one line; nothing is provisioned and no run
    folder exists yet. The seed of phase 4 is drawn here when absent, so the plan line, the settings of the
    summary and phase 4's own report all record the one seed used.
    """
    settings = opts.settings
    if 4 in settings.phases and settings.phase4.seed is None:
        settings = settings.model_copy(
            update={"phase4": settings.phase4.model_copy(update={"seed": secrets.randbits(31)})})
    if opts.campaign_id is not None and not CAMPAIGN_ID_RE.match(opts.campaign_id):
        raise CampaignError(f"--campaign-id {opts.campaign_id!r}: use 1-63 lowercase letters, digits, '.', '_' "
                            "or '-', starting with a letter or digit")
    if opts.inventory is not None:
        inv = opts.inventory
        return Plan(campaign_id=opts.campaign_id or new_campaign_id(), provider=inv.provider,
                    where=f"{inv.provider} (hosts given)", settings=settings, target=TargetRef.of(inv.target),
                    inventory=inv)
    provider, why, outputs, stack = _choose_provider(opts)
    if provider == "digitalocean":
        return _prepare_digitalocean(opts, settings, why, outputs, stack)
    return _prepare_lab(opts, settings, why)


def _choose_provider(opts: CampaignOptions) -> tuple[Literal["lab", "digitalocean"], str, dict | None, str | None]:
    """(provider, how it was chosen, the stack outputs when already read, the stack name)."""
    if opts.provider == "lab":
        return "lab", "", None, None
    from shipgate.providers.digitalocean import stack as do

    if opts.provider == "digitalocean":
        return "digitalocean", "--infra digitalocean", None, None
    if opts.defects:
        return "lab", "auto: --defects seeds the reference peer, which runs on the lab", None, None
    try:
        do.pulumi_executable()
    except do.PulumiNotFound:
        return "lab", "auto: no pulumi CLI on PATH; --infra digitalocean to use a stack", None, None
    stack = _stack_name(opts)
    try:
        outputs = do.read_stack_outputs(stack=stack)
    except do.PulumiFailed as exc:
        if do.no_such_stack(exc) and not opts.stack:
            which = f"no Pulumi stack {stack}" if stack else "no Pulumi stack selected"
            return "lab", f"auto: {which}; --infra digitalocean to use one", None, None
        raise CampaignError(f"cannot tell whether a Pulumi stack is up ({exc}); give --infra lab or "
                            "--infra digitalocean") from None
    if not outputs and not opts.stack:
        return "lab", f"auto: Pulumi stack {stack or '(selected)'} has no outputs (not up)", None, None
    how = "--stack" if opts.stack else "--campaign-id" if opts.campaign_id else "the selected Pulumi stack"
    return "digitalocean", f"auto: {how} has outputs; --infra lab to use the lab", outputs, stack


def _stack_name(opts: CampaignOptions) -> str | None:
    """The stack named by --stack, else campaign-<id> for --campaign-id, else None (the selected one)."""
    from shipgate.providers.digitalocean import stack as do

    if opts.stack:
        return opts.stack
    return do.stack_name_for(opts.campaign_id) if opts.campaign_id else None


def _check_target(target: Path) -> str:
    """sha256 of a --target file; a missing or non-executable file is a startup error."""
    from shipgate.hosts.inventory import file_sha256

    if not target.is_file():
        raise CampaignError(f"--target {target}: no such file")
    if not os.access(target, os.X_OK):
        raise CampaignError(f"--target {target}: not an executable file")
    return file_sha256(target)


def _wanted(opts: CampaignOptions, sha256: str | None) -> TargetRef:
    if opts.target is None:
        return TargetRef(kind="refpeer", defects=list(opts.defects), git_ref=opts.git_ref)
    return TargetRef(kind="release" if opts.release else "binary", path=str(opts.target), sha256=sha256,
                     git_ref=opts.git_ref, release=opts.release)


def _prepare_lab(opts: CampaignOptions, settings: GateSettings, why: str) -> Plan:
    from shipgate.providers import lab
    from shipgate.providers.lab.system import preflight

    cloud = [f for f, v in (("--stack", opts.stack), ("--ssh-key", opts.ssh_key), ("--destroy", opts.destroy)) if v]
    if cloud:
        raise CampaignError(f"{', '.join(cloud)}: DigitalOcean option(s), but the campaign would run on the lab "
                            f"({why or 'lab'}); `pulumi up` a stack first, or leave them out")

    try:
        lab.LabLayout(opts.lab_name)
        defects = lab.check_defects(opts.defects, opts.target)
        sha256 = _check_target(opts.target) if opts.target is not None else None
        preflight()
        existing = lab.load(opts.lab_name)
    except (lab.LabError, lab.LabNameError) as exc:
        raise CampaignError(str(exc)) from None
    wanted = _wanted(replace(opts, defects=defects), sha256)
    campaign_id = opts.campaign_id or new_campaign_id()
    how = f" ({why})" if why else ""
    if existing is None:
        return Plan(campaign_id=campaign_id, provider="lab", where=f"lab {opts.lab_name!r}, built for this "
                    f"campaign{how}", settings=settings, target=wanted)
    have = TargetRef.of(existing.target).model_copy(update={"sha256": lab.installed_target_sha256(opts.lab_name)})
    if (_file_kind(have.kind), have.sha256, sorted(have.defects)) != (
            _file_kind(wanted.kind), wanted.sha256, sorted(wanted.defects)):
        raise CampaignError(f"lab {opts.lab_name!r} is already up with {_describe(have)}, not {_describe(wanted)}: "
                            f"`invoke lab.down --name {opts.lab_name}` first, or ask for the lab's own target")
    target = have.model_copy(update={"path": wanted.path, "git_ref": opts.git_ref or have.git_ref})
    return Plan(campaign_id=campaign_id, provider="lab", where=f"lab {opts.lab_name!r}, already up (it stays up)"
                f"{how}", settings=settings, target=target, inventory=existing)


def _file_kind(kind: str | None) -> str | None:
    """A named release is a binary file too: the same file up in the lab is the same target."""
    return "binary" if kind == "release" else kind


def _describe(t: TargetRef) -> str:
    if t.kind == "refpeer":
        return "the bundled reference peer" + (f" with defects {','.join(t.defects)}" if t.defects else
                                               " (no defects)")
    return f"{t.kind} {t.path or '?'} (sha256 {(t.sha256 or 'unknown')[:16]})"


def _prepare_digitalocean(opts: CampaignOptions, settings: GateSettings, why: str, outputs: dict | None,
                          stack: str | None) -> Plan:
    from shipgate.hosts.inventory import Target
    from shipgate.providers.digitalocean import stack as do

    if opts.defects:
        raise CampaignError("--defects seeds the bundled reference peer and only works on the lab (--infra lab)")
    if opts.target is None:
        raise CampaignError("on DigitalOcean the gate needs --target: the ai-memory binary to install on the "
                            f"droplets (the reference peer runs only on the lab; {why or '--infra digitalocean'})")
    sha256 = _check_target(opts.target)
    key = opts.ssh_key or Path(os.environ.get("SHIPGATE_SSH_KEY", Path.home() / ".ssh" / "id_ed25519"))
    if not key.is_file():
        raise CampaignError(f"SSH private key {key} not found: give --ssh-key or set SHIPGATE_SSH_KEY")
    try:
        if outputs is None:
            stack = _stack_name(opts)
            outputs = do.read_stack_outputs(stack=stack)
        if stack is None:
            stack = do.selected_stack()
        if not outputs:
            raise CampaignError(f"Pulumi stack {stack} has no outputs: run `pulumi up` first")
        parsed = do.parse_stack_outputs(outputs)
    except do.DigitalOceanError as exc:
        raise CampaignError(str(exc).replace("\n", " ")) from None
    if opts.campaign_id and opts.campaign_id != parsed.campaign_id:
        raise CampaignError(f"--campaign-id {opts.campaign_id} does not match Pulumi stack {stack}, whose campaign "
                            f"is {parsed.campaign_id} (its resources carry the tag {do.campaign_tag(parsed.campaign_id)})")
    known_hosts = Path.home() / ".cache" / "shipgate" / f"{parsed.campaign_id}.known_hosts"
    target = Target(kind="release" if opts.release else "binary", path=opts.target.resolve(), git_ref=opts.git_ref,
                    sha256=sha256, release=opts.release)
    try:
        inv = do.inventory_from_stack_outputs(outputs, ssh_key=key, known_hosts=known_hosts, target=target)
    except do.DigitalOceanError as exc:
        raise CampaignError(str(exc).replace("\n", " ")) from None
    run_id = parsed.campaign_id
    n = 2
    while (opts.runs_dir / run_id).exists():
        run_id, n = f"{parsed.campaign_id}.{n}"[:63], n + 1
    where = f"digitalocean, Pulumi stack {stack} (campaign {parsed.campaign_id}; {why or '--infra digitalocean'})"
    if run_id != parsed.campaign_id:
        where += f"; runs/{parsed.campaign_id} exists, so this run is runs/{run_id}"
    return Plan(campaign_id=run_id, provider="digitalocean", where=where, settings=settings,
                target=TargetRef.of(inv.target), inventory=inv, stack=stack, stack_campaign=parsed.campaign_id,
                outputs=outputs)


def _provide(opts: CampaignOptions, plan: Plan, progress: Callable[[str], None]) -> tuple[Inventory, bool]:
    """The hosts: the lab already up, a lab built now, or the stack's droplets (their host keys written)."""
    built = False
    if plan.provider == "digitalocean" and plan.inventory is not None and plan.outputs is not None:
        from shipgate.providers.digitalocean import stack as do

        do.write_known_hosts(plan.outputs, plan.inventory.ssh.known_hosts)
        return plan.inventory, False
    if plan.inventory is not None:
        if opts.inventory is None:
            progress(f"lab {opts.lab_name!r} is already up; using it (it stays up)")
        inv = plan.inventory.model_copy(update={"campaign_id": plan.campaign_id})
    else:
        from shipgate.providers import lab

        progress(f"building lab {opts.lab_name!r}")
        inv = lab.up(opts.lab_name, target=opts.target, defects=opts.defects, campaign_id=plan.campaign_id)
        inv, built = inv.model_copy(update={"campaign_id": plan.campaign_id}), True
    provenance = {"sha256": plan.target.sha256 or inv.target.sha256, "git_ref": opts.git_ref or inv.target.git_ref}
    if opts.release:
        provenance.update(kind="release", release=opts.release)
    return inv.model_copy(update={"target": inv.target.model_copy(update=provenance)}), built


def _install(opts: CampaignOptions, inventory: Inventory, access: Any, progress: Callable[[str], None],
             target: TargetRef) -> tuple[Inventory, TargetRef]:
    """Upload the host agent; on droplets also the target binary. Record the version read back."""
    from shipgate.target import service

    if inventory.provider == "digitalocean":
        from shipgate.providers.digitalocean.stack import READY_COMMAND

        progress("waiting for cloud-init to finish on the droplets")
        results = access.run_many(list(HOST_NAMES), READY_COMMAND, timeout=960)
        not_ready = {h: (r.error or f"exit {r.exit_code}") for h, r in results.items() if not r.ok}
        if not_ready:
            raise RuntimeError(f"droplets not ready (cloud-init): {not_ready}")
    if inventory.provider != "lab" and inventory.target.kind in ("binary", "release"):
        progress(f"installing {inventory.target.path} as /usr/local/bin/ai-memory on the hosts")
        for host in HOST_NAMES:
            access.put(host, inventory.target.path, "/usr/local/bin/ai-memory", mode=0o755)
    service.install_agent(access, list(HOST_NAMES))
    versions = {h: (r.stdout.strip().splitlines() or [""])[0][:200]
                for h, r in access.run_many(list(PEER_NAMES), "ai-memory --version", timeout=30).items() if r.ok}
    version = versions.get("node-a") or inventory.target.version
    if len(set(versions.values())) > 1:
        progress(f"warning: the peers report different versions: {versions}")
    caps = probe_host(access, "node-a")
    asked = inventory.target.release
    if asked and (caps is None or caps.version != asked.split("@", 1)[1]):
        raise RuntimeError(f"asked for {asked}, but node-a runs {version or 'a binary that prints no version'}")
    if caps is None:
        progress(f"target: {inventory.target.kind} {version or '(version unknown)'} (capability probe stopped: a "
                 f"command hung; the gate assumes the whole surface)")
    else:
        absent = f"; lacks {', '.join(caps.absent)}" if caps.absent else ""
        progress(f"target: {inventory.target.kind} {version or '(version unknown)'} "
                 f"({len(caps.subcommands)} subcommands probed{absent})")
    inventory = inventory.model_copy(update={"target": inventory.target.model_copy(
        update={"version": version, "capabilities": caps})})
    return inventory, target.model_copy(update={"version": version})


def _unreachable(access: Any) -> dict[str, str]:
    results = access.run_many(list(HOST_NAMES), "true", timeout=15)
    return {h: (r.error or f"exit {r.exit_code}") for h, r in results.items() if not r.ok}


def _run_phases(opts: CampaignOptions, inventory: Inventory, access: Any, run_dir: Path,
                durations: dict[str, float], progress: Callable[[str], None]) -> None:
    from phases.base import PhaseContext

    ctx = PhaseContext(inventory=inventory, access=access, settings=opts.settings, run_dir=run_dir, progress=progress)
    broken: str | None = None
    for phase in opts.settings.phases:
        t = time.monotonic()
        if broken is None:
            gone = _unreachable(access)
            if gone:
                broken = "; ".join(f"{h} unreachable ({why})" for h, why in gone.items())
        if broken is not None:
            reports = _not_run(phase, f"not run: {broken}")
        else:
            progress(f"phase {phase}: start")
            try:
                module = importlib.import_module(f"phases.phase{phase}")
                result = module.run(ctx)
                reports = result if isinstance(result, list) else [result]
            except Interrupted as exc:
                # The phase's own evidence is lost; its report at least names why it stopped.
                for report in _not_run(phase, f"phase {phase} interrupted by {exc}: it did not finish"):
                    write_text(run_dir / _artifact_name(phase, report), report.to_json())
                raise
            except ModuleNotFoundError as exc:
                reports = _not_run(phase, f"phase {phase} is not available: {exc}")
            except Exception as exc:
                reports = _not_run(phase, f"phase {phase} crashed: {type(exc).__name__}: {exc}")
        for report in reports:
            write_text(run_dir / _artifact_name(phase, report), report.to_json())
        durations[f"phase{phase}"] = round(time.monotonic() - t, 3)
        statuses = ", ".join(sorted({r.status for r in reports}))
        progress(f"phase {phase}: {statuses} ({durations[f'phase{phase}']:.1f}s)")
        if broken is None:
            gone = _unreachable(access)
            if gone:
                broken = "an earlier phase lost " + "; ".join(f"{h} ({why})" for h, why in gone.items())


def _not_run(phase: int, reason: str) -> list[PhaseReportBase]:
    if phase == 1:
        return [error_report(1, reason, node=n) for n in PEER_NAMES]
    return [error_report(phase, reason)]


def _teardown(opts: CampaignOptions, plan: Plan, access: Any, built_lab: bool,
              progress: Callable[[str], None]) -> None:
    """What the gate made goes: the lab it built (unless --keep). On DigitalOcean the stack is the operator's:
    it stays up unless --destroy asked for `pulumi destroy`."""
    if access is not None:
        with contextlib.suppress(Exception):
            access.close()
    if built_lab and not opts.keep:
        from shipgate.providers import lab

        progress(f"removing lab {opts.lab_name!r}")
        try:
            lab.down(opts.lab_name)
        except Exception as exc:
            progress(f"lab teardown failed: {exc}; run `invoke lab.down --name {opts.lab_name}`")
    elif built_lab:
        progress(f"lab {opts.lab_name!r} kept up (--keep); `invoke lab.down --name {opts.lab_name}` removes it")
    if plan.provider != "digitalocean" or plan.stack is None:
        return
    janitor = f"`invoke janitor --campaign {plan.stack_campaign}`"
    if not opts.destroy:
        progress(f"Pulumi stack {plan.stack} stays up (the gate never destroys it unasked): `pulumi destroy "
                 f"--stack {plan.stack}` removes it, then {janitor} checks that nothing is left")
        return
    from shipgate.providers.digitalocean import stack as do

    progress(f"destroying Pulumi stack {plan.stack} (--destroy)")
    try:
        do.pulumi_destroy(stack=plan.stack)
        progress(f"stack {plan.stack} destroyed; {janitor} checks that nothing is left")
    except do.DigitalOceanError as exc:
        progress(f"pulumi destroy failed ({exc}); {janitor} --yes removes what is left")


def _summarise(opts: CampaignOptions, plan: Plan, run_dir: Path, started_at: datetime, t0: float,
               durations: dict[str, float], reasons: list[str], target: TargetRef,
               progress: Callable[[str], None]) -> CampaignSummary:
    """The summary: the campaign's own reasons (its cause) first, then what each artifact says."""
    from shipgate.evidence.validate import load_phase_artifacts

    requested = opts.settings.phases
    artifacts = load_phase_artifacts(run_dir, requested)
    verdict = campaign_verdict(requested, artifacts)
    status = verdict.status
    if reasons and status == "pass":
        status = "error"
    artifact_reasons = list(verdict.reasons)
    if reasons and not verdict.phases_run:
        artifact_reasons = [f"no phase ran: phases {','.join(map(str, requested))} left no evidence"]
    exit_code = {"pass": 0, "fail": 1, "error": 2}[status]
    phases = [a for name, a in sorted(artifacts.items()) if isinstance(a, PhaseReportBase)]
    scope = VerdictScope.of(target, opts.settings)
    summary = CampaignSummary(
        campaign_id=plan.campaign_id, ai_memory_git_ref=target.git_ref or opts.git_ref,
        completed_at=datetime.now(UTC), overall_pass=status == "pass", phases=phases, verdict=status,
        exit_code=exit_code, reasons=[] if status == "pass" else reasons + artifact_reasons,
        phases_requested=requested, phases_run=verdict.phases_run, phase_results=verdict.phase_results,
        started_at=started_at, duration_s=round(time.monotonic() - t0, 3), durations_s=durations,
        settings=opts.settings.model_dump(mode="json"), target=target, scope=scope,
        cause=reasons[0] if reasons else None, provider=plan.provider, stack=plan.stack,
    )
    write_text(run_dir / "campaign-summary.json", summary.to_json())
    if opts.render:
        _render(run_dir, progress)
    progress(f"verdict: {status.upper()} (exit {exit_code}), {scope.headline} — {run_dir}")
    progress(f"  {summary.decision()}")
    for line in summary.reasons[:10]:
        progress(f"  - {line}")
    return summary


def _render(run_dir: Path, progress: Callable[[str], None]) -> None:
    """HTML, JUnit and the CI step summary; a rendering problem never changes the verdict."""
    try:
        from shipgate.evidence import report
    except ImportError:
        return
    try:
        report.render_campaign(run_dir)
        report.render_index(run_dir.parent)
        summary_path = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary_path:
            with open(summary_path, "a", encoding="utf-8") as fh:
                fh.write(report.step_summary(run_dir))
        progress(f"report: {run_dir / 'index.html'}")
    except Exception as exc:
        progress(f"report rendering failed ({type(exc).__name__}: {exc}); the artifacts are intact")
