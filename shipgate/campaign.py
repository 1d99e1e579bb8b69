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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from shipgate.atomic import write_text
from shipgate.inventory import HOST_NAMES, PEER_NAMES, Inventory
from shipgate.models import (
    CampaignSummary,
    Check,
    InventoryRecord,
    Phase1NodeReport,
    PhaseReportBase,
    TargetRef,
)
from shipgate.models.phases import PHASE_MODELS
from shipgate.settings import GateSettings
from shipgate.target.capabilities import probe_host
from shipgate.verdict import campaign_verdict

ROOT = Path(__file__).resolve().parents[1]


class CampaignError(ValueError):
    """The campaign cannot start (bad options); nothing was provisioned."""


class Interrupted(BaseException):
    """SIGTERM (or SIGINT) asked the campaign to stop; teardown still runs."""


@dataclass
class CampaignOptions:
    settings: GateSettings
    provider: Literal["lab", "digitalocean"] = "lab"
    lab_name: str = "sg"
    target: Path | None = None
    defects: list[str] = field(default_factory=list)
    keep: bool = False
    runs_dir: Path = ROOT / "runs"
    campaign_id: str | None = None
    git_ref: str | None = None
    inventory: Inventory | None = None  # given directly (tests, DigitalOcean); then nothing is provisioned
    render: bool = True
    ssh_key: Path | None = None  # DigitalOcean: the operator's private key (default ~/.ssh/id_ed25519)


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
    """Run a campaign and return its summary (already written to runs/<id>/)."""
    progress = progress or Console()
    settings = opts.settings
    campaign_id = opts.campaign_id or new_campaign_id()
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
    target = TargetRef(kind="binary" if opts.target else "refpeer")

    @contextlib.contextmanager
    def step(name: str) -> Iterator[None]:
        t = time.monotonic()
        try:
            yield
        finally:
            durations[name] = round(time.monotonic() - t, 3)

    progress(f"campaign {campaign_id}: phases {','.join(map(str, settings.phases))} on {opts.provider}")
    # Outermost: once the phases stop (or are interrupted), a second Ctrl-C or a SIGTERM is noted, not
    # obeyed, until teardown and the summary are done; no gap where the default handler could kill the gate.
    with _signals_deferred() as ignored:
        try:
            with _signals_raise():
                with step("provision"):
                    inventory, built_lab = _provide(opts, campaign_id, progress)
                target = TargetRef(kind=inventory.target.kind, version=inventory.target.version,
                                   git_ref=inventory.target.git_ref or opts.git_ref)
                write_text(run_dir / "inventory.json", InventoryRecord.from_inventory(inventory).to_json())
                from shipgate.hosts import HostAccess

                access = HostAccess(inventory)
                with step("install"):
                    inventory, target = _install(opts, inventory, access, progress, target)
                # again, with the version read back and the capability probe
                write_text(run_dir / "inventory.json", InventoryRecord.from_inventory(inventory).to_json())
                _run_phases(opts, inventory, access, run_dir, durations, progress)
                with step("validate"):
                    from shipgate.validate import validate_run

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
                _teardown(opts, access, built_lab, progress)
        summary = _summarise(opts, campaign_id, run_dir, started_at, t0, durations, reasons, target, progress)
        if ignored:
            progress(f"signals during teardown and the summary ignored until they finished: {', '.join(ignored)}")
    return summary


def _provide(opts: CampaignOptions, campaign_id: str, progress: Callable[[str], None]) -> tuple[Inventory, bool]:
    if opts.inventory is not None:
        return opts.inventory.model_copy(update={"campaign_id": campaign_id}), False
    if opts.provider == "digitalocean":
        from shipgate import digitalocean
        from shipgate.inventory import Target

        if opts.target is None:
            raise ValueError("--infra digitalocean needs --target: the ai-memory binary to install on the droplets")
        key = opts.ssh_key or Path(os.environ.get("SHIPGATE_SSH_KEY", Path.home() / ".ssh" / "id_ed25519"))
        if not key.is_file():
            raise ValueError(f"SSH private key {key} not found (set --ssh-key or SHIPGATE_SSH_KEY)")
        known_hosts = Path.home() / ".cache" / "shipgate" / f"{campaign_id}.known_hosts"
        known_hosts.parent.mkdir(parents=True, exist_ok=True)
        progress("reading the Pulumi stack outputs")
        inv = digitalocean.load_inventory(ssh_key=key, known_hosts=known_hosts,
                                          target=Target(kind="binary", path=opts.target, git_ref=opts.git_ref))
        return inv.model_copy(update={"campaign_id": campaign_id}), False
    from shipgate import lab

    existing = lab.load(opts.lab_name)
    if existing is not None:
        if opts.defects and sorted(opts.defects) != sorted(existing.target.defects):
            raise ValueError(f"lab {opts.lab_name!r} is already up with defects {existing.target.defects or 'none'}, "
                             f"not {opts.defects}: `invoke lab.down --name {opts.lab_name}` first")
        progress(f"lab {opts.lab_name!r} is already up; using it (it stays up)")
        return existing.model_copy(update={"campaign_id": campaign_id}), False
    progress(f"building lab {opts.lab_name!r}")
    inv = lab.up(opts.lab_name, target=opts.target, defects=opts.defects, campaign_id=campaign_id)
    return inv.model_copy(update={"campaign_id": campaign_id}), True


def _install(opts: CampaignOptions, inventory: Inventory, access: Any, progress: Callable[[str], None],
             target: TargetRef) -> tuple[Inventory, TargetRef]:
    """Upload the host agent; on droplets also the target binary. Record the version read back."""
    from shipgate import service

    if inventory.provider == "digitalocean":
        from shipgate.digitalocean import READY_COMMAND

        progress("waiting for cloud-init to finish on the droplets")
        results = access.run_many(list(HOST_NAMES), READY_COMMAND, timeout=960)
        not_ready = {h: (r.error or f"exit {r.exit_code}") for h, r in results.items() if not r.ok}
        if not_ready:
            raise RuntimeError(f"droplets not ready (cloud-init): {not_ready}")
    if inventory.provider != "lab" and inventory.target.kind == "binary":
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
    from phases.common import PhaseContext

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


def _teardown(opts: CampaignOptions, access: Any, built_lab: bool, progress: Callable[[str], None]) -> None:
    if access is not None:
        with contextlib.suppress(Exception):
            access.close()
    if built_lab and not opts.keep:
        from shipgate import lab

        progress(f"removing lab {opts.lab_name!r}")
        try:
            lab.down(opts.lab_name)
        except Exception as exc:
            progress(f"lab teardown failed: {exc}; run `invoke lab.down --name {opts.lab_name}`")
    elif built_lab:
        progress(f"lab {opts.lab_name!r} kept up (--keep); `invoke lab.down --name {opts.lab_name}` removes it")


def _summarise(opts: CampaignOptions, campaign_id: str, run_dir: Path, started_at: datetime, t0: float,
               durations: dict[str, float], reasons: list[str], target: TargetRef,
               progress: Callable[[str], None]) -> CampaignSummary:
    from shipgate.validate import load_phase_artifacts

    requested = opts.settings.phases
    artifacts = load_phase_artifacts(run_dir, requested)
    verdict = campaign_verdict(requested, artifacts)
    status = verdict.status
    all_reasons = list(verdict.reasons) + reasons
    if reasons and status == "pass":
        status = "error"
    exit_code = {"pass": 0, "fail": 1, "error": 2}[status]
    phases = [a for name, a in sorted(artifacts.items()) if isinstance(a, PhaseReportBase)]
    summary = CampaignSummary(
        campaign_id=campaign_id, ai_memory_git_ref=target.git_ref or opts.git_ref,
        completed_at=datetime.now(UTC), overall_pass=status == "pass", phases=phases, verdict=status,
        exit_code=exit_code, reasons=[] if status == "pass" else all_reasons, phases_requested=requested,
        phases_run=verdict.phases_run, phase_results=verdict.phase_results, started_at=started_at,
        duration_s=round(time.monotonic() - t0, 3), durations_s=durations,
        settings=opts.settings.model_dump(mode="json"), target=target, provider=opts.provider,
    )
    write_text(run_dir / "campaign-summary.json", summary.to_json())
    if opts.render:
        _render(run_dir, progress)
    progress(f"verdict: {status.upper()} (exit {exit_code}) — {run_dir}")
    for line in summary.reasons[:10]:
        progress(f"  - {line}")
    return summary


def _render(run_dir: Path, progress: Callable[[str], None]) -> None:
    """HTML, JUnit and the CI step summary; a rendering problem never changes the verdict."""
    try:
        from shipgate import report
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
