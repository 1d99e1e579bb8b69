"""One campaign, start to finish: inventory -> install -> phases -> validate -> summary -> report -> teardown.

The flow never says green without evidence: a phase that cannot run writes an `error` report, an
interrupted campaign writes an `error` summary, validation runs before teardown, and teardown runs on
every exit path (normal end, failure, exception, Ctrl-C, SIGTERM).

The engine is handed its phases (`Phase`, shipgate.run.context) and its provider kinds (`Provider`,
shipgate.providers.base) by shipgate.tasks.wiring: it imports no phase and no concrete provider.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from shipgate.evidence import report
from shipgate.evidence.atomic import write_text
from shipgate.evidence.models import (
    CampaignSummary,
    InventoryRecord,
    PhaseReportBase,
    TargetRef,
    VerdictScope,
)
from shipgate.evidence.validate import load_phase_artifacts, validate_run
from shipgate.evidence.verdict import campaign_verdict
from shipgate.hosts.inventory import CAMPAIGN_ID_RE, HOST_NAMES, PEER_NAMES, Inventory
from shipgate.hosts.ssh import HostAccess
from shipgate.providers.base import Provider, ProviderKind, with_provenance
from shipgate.run import signals
from shipgate.run.console import Console, printable
from shipgate.run.context import Phase, PhaseContext
from shipgate.run.options import ROOT, CampaignError, CampaignOptions, Plan, new_campaign_id
from shipgate.target import service, startup
from shipgate.target.capabilities import probe_host

__all__ = ["ROOT", "CampaignError", "CampaignOptions", "Console", "Interrupted", "Plan", "new_campaign_id",
           "prepare", "printable", "run_campaign"]

Providers = Mapping[str, ProviderKind]


class Interrupted(BaseException):
    """SIGTERM (or SIGINT) asked the campaign to stop; teardown still runs."""


def run_campaign(opts: CampaignOptions, progress: Callable[[str], None] | None = None, *,
                 phases: Sequence[Phase], providers: Providers) -> CampaignSummary:
    """Run a campaign of `phases` on the hosts of one of `providers`; return its summary (written to runs/<id>/).

    Startup errors (bad target, defects, lab name, a lab up with another target, no SSH key, no pulumi, an
    unreadable stack, a phase nobody handed in) raise `CampaignError` before any run folder exists.
    """
    progress = progress or Console()
    plan = prepare(opts, providers, phases)
    by_number = {p.number: p for p in phases}
    provider = providers[plan.provider](opts)
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
    access: HostAccess | None = None
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
    with signals.deferred() as ignored:
        try:
            with signals.raising(Interrupted):
                with step("provision"):
                    inventory = _acquire(opts, plan, provider, progress)
                target = TargetRef.of(inventory.target)
                write_text(run_dir / "inventory.json", InventoryRecord.from_inventory(inventory).to_json())
                access = HostAccess(inventory)
                with step("install"):
                    inventory, target = _install(inventory, access, provider, progress, target)
                # again, with the version read back and the capability probe
                write_text(run_dir / "inventory.json", InventoryRecord.from_inventory(inventory).to_json())
                _run_phases(opts, [by_number[n] for n in settings.phases], inventory, access, run_dir, durations,
                            progress)
                with step("validate"):
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
                _teardown(plan, provider, access, progress)
        summary = _summarise(opts, plan, run_dir, started_at, t0, durations, reasons, target, progress)
        if ignored:
            progress(f"signals during teardown and the summary ignored until they finished: {', '.join(ignored)}")
    return summary


def prepare(opts: CampaignOptions, providers: Providers, phases: Sequence[Phase]) -> Plan:
    """Settle the campaign before anything is created: provider, target, hosts, run id and the phases' settings.

    Every startup error is a `CampaignError` naming its cause in one line; nothing is provisioned and no run
    folder exists yet. Each requested phase settles its own settings here (phase 4 draws its seed when absent),
    so the plan line, the settings of the summary and the phase's own report all record the one value used.
    """
    settings = opts.settings
    by_number = {p.number: p for p in phases}
    unknown = [n for n in settings.phases if n not in by_number]
    if unknown:
        raise CampaignError(f"phase(s) {', '.join(map(str, unknown))} requested, but the gate has no such phase "
                            f"(it has {', '.join(str(p.number) for p in phases) or 'none'})")
    for n in settings.phases:
        settings = by_number[n].settle(settings)
    if opts.campaign_id is not None and not CAMPAIGN_ID_RE.match(opts.campaign_id):
        raise CampaignError(f"--campaign-id {opts.campaign_id!r}: use 1-63 lowercase letters, digits, '.', '_' "
                            "or '-', starting with a letter or digit")
    if opts.inventory is not None:
        inv = opts.inventory
        if inv.provider not in providers:
            raise CampaignError(f"the hosts given come from provider {inv.provider!r}, which the gate does not know")
        return Plan(campaign_id=opts.campaign_id or new_campaign_id(), provider=inv.provider,
                    where=f"{inv.provider} (hosts given)", settings=settings, target=TargetRef.of(inv.target),
                    inventory=inv, given=True)
    name, why, facts = _choose_provider(opts, providers)
    return providers[name](opts).plan(settings, why, facts)


def _choose_provider(opts: CampaignOptions, providers: Providers) -> tuple[str, str, dict]:
    """(provider, how it was chosen, what it read to choose). `auto`: the first kind after the default that
    claims the campaign, else the default with the last refusal as the reason."""
    default = next(iter(providers))
    if opts.provider is None:
        return default, "", {}
    if opts.provider != "auto":
        if opts.provider not in providers:
            raise CampaignError(f"--infra must be auto or {', '.join(providers)} (got {opts.provider!r})")
        return opts.provider, "" if opts.provider == default else f"--infra {opts.provider}", {}
    why = ""
    for name, kind in providers.items():
        if name == default:
            continue
        claim = kind.claim(opts)
        if claim.taken:
            return name, claim.why, claim.facts
        why = claim.why
    return default, why, {}


def _acquire(opts: CampaignOptions, plan: Plan, provider: Provider, progress: Callable[[str], None]) -> Inventory:
    """The hosts: handed in (stamped with this campaign), else the provider's."""
    if plan.given:
        assert plan.inventory is not None
        return with_provenance(plan.inventory, plan, opts)
    return provider.acquire(plan, progress)


def _install(inventory: Inventory, access: HostAccess, provider: Provider, progress: Callable[[str], None],
             target: TargetRef) -> tuple[Inventory, TargetRef]:
    """The provider installs the target; the gate uploads its host agent and records the version read back."""
    provider.prepare(inventory, access, progress)
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


def _unreachable(access: HostAccess) -> dict[str, str]:
    results = access.run_many(list(HOST_NAMES), "true", timeout=15)
    return {h: (r.error or f"exit {r.exit_code}") for h, r in results.items() if not r.ok}


def _run_phases(opts: CampaignOptions, phases: Sequence[Phase], inventory: Inventory, access: HostAccess,
                run_dir: Path, durations: dict[str, float], progress: Callable[[str], None]) -> None:
    caps = inventory.target.capabilities
    need = startup.for_version(caps.version if caps else None)
    if need.env:
        access.session_env.update(need.env)
        progress(f"target environment on every host: {', '.join(f'{k}={v}' for k, v in need.env.items())} "
                 f"({'; '.join(need.reasons)})")
    ctx = PhaseContext(inventory=inventory, access=access, settings=opts.settings, run_dir=run_dir, progress=progress)
    broken: str | None = None
    for phase in phases:
        n = phase.number
        t = time.monotonic()
        if broken is None:
            gone = _unreachable(access)
            if gone:
                broken = "; ".join(f"{h} unreachable ({why})" for h, why in gone.items())
        if broken is not None:
            reports = phase.not_run(f"not run: {broken}")
        else:
            progress(f"phase {n}: start")
            try:
                reports = phase.run(ctx)
            except Interrupted as exc:
                # The phase's own evidence is lost; its report at least names why it stopped.
                for report_ in phase.not_run(f"phase {n} interrupted by {exc}: it did not finish"):
                    write_text(run_dir / phase.artifact_of(report_), report_.to_json())
                raise
            except Exception as exc:
                reports = phase.not_run(f"phase {n} crashed: {type(exc).__name__}: {exc}")
        for report_ in reports:
            write_text(run_dir / phase.artifact_of(report_), report_.to_json())
        durations[f"phase{n}"] = round(time.monotonic() - t, 3)
        statuses = ", ".join(sorted({r.status for r in reports}))
        progress(f"phase {n}: {statuses} ({durations[f'phase{n}']:.1f}s)")
        if broken is None:
            gone = _unreachable(access)
            if gone:
                broken = "an earlier phase lost " + "; ".join(f"{h} ({why})" for h, why in gone.items())


def _teardown(plan: Plan, provider: Provider, access: HostAccess | None, progress: Callable[[str], None]) -> None:
    """The SSH sessions close, then the provider releases what it acquired (hosts handed in stay as they are)."""
    if access is not None:
        with contextlib.suppress(Exception):
            access.close()
    if not plan.given:
        provider.release(plan, progress)


def _summarise(opts: CampaignOptions, plan: Plan, run_dir: Path, started_at: datetime, t0: float,
               durations: dict[str, float], reasons: list[str], target: TargetRef,
               progress: Callable[[str], None]) -> CampaignSummary:
    """The summary: the campaign's own reasons (its cause) first, then what each artifact says."""
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
        report.render_campaign(run_dir)
        report.render_index(run_dir.parent)
        summary_path = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary_path:
            with open(summary_path, "a", encoding="utf-8") as fh:
                fh.write(report.step_summary(run_dir))
        progress(f"report: {run_dir / 'index.html'}")
    except Exception as exc:
        progress(f"report rendering failed ({type(exc).__name__}: {exc}); the artifacts are intact")
