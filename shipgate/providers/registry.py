"""The provider kinds, as a table: a new provider is one package under providers/ plus one line here.

The first entry is the default (`--infra auto` falls back to it); `auto` asks the others, in order, whether
they claim the campaign.
"""

from __future__ import annotations

from shipgate.providers.base import ProviderKind
from shipgate.providers.digitalocean.provider import DigitalOceanProvider
from shipgate.providers.lab.provider import LabProvider

PROVIDERS: dict[str, ProviderKind] = {
    LabProvider.name: LabProvider,
    DigitalOceanProvider.name: DigitalOceanProvider,
}
