"""The DigitalOcean provider: the Pulumi stack's typed config and outputs, and the janitor."""
