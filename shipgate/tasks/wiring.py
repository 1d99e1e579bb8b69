"""The one place the engine meets the phases and the providers: `shipgate.run` imports neither.

`run_campaign` and `prepare` here are the engine's, handed `phases.PHASES` and the provider registry;
the tasks, the self-test, the benchmarks and the tests call these.
"""

from __future__ import annotations

from collections.abc import Callable

from phases import PHASES
from shipgate.evidence.models import CampaignSummary
from shipgate.providers.registry import PROVIDERS
from shipgate.run import campaign
from shipgate.run.options import CampaignError, CampaignOptions, Plan

__all__ = ["PHASES", "PROVIDERS", "CampaignError", "CampaignOptions", "Plan", "prepare", "run_campaign"]


def run_campaign(opts: CampaignOptions, progress: Callable[[str], None] | None = None) -> CampaignSummary:
    return campaign.run_campaign(opts, progress, phases=PHASES, providers=PROVIDERS)


def prepare(opts: CampaignOptions) -> Plan:
    return campaign.prepare(opts, PROVIDERS, PHASES)
