"""Host providers: where a campaign's hosts come from (the lab on this machine, or DigitalOcean)."""
