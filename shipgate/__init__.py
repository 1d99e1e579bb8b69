"""ai-memory ship-gate: the release gate library (inventory, hosts, lab, phases' shared pieces, artifacts, reports)."""

__version__ = "0.1.0"
