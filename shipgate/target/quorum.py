"""What a release documents for a write that misses its quorum, so the probes judge each release by its own rule.

Up to 0.8.0 the answer is 503 `{"error":"quorum_not_met","got","needed","reason"}` with Retry-After
(`0.6.0:src/handlers.rs:356-385`); from 0.8.1 it is 202 `{"quorum_met":false,"acks","needed","reason",
"durability":"local"}` (`0.8.1:src/handlers/parity.rs:71-80`, CHANGELOG 0.8.1 "W3 / gap G12";
docs/release-history.md). Either way the local row is kept, so the probe rows must reach every node after the
heal. A target whose version cannot be read is held to the contract's 503.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

ACCEPTED_FROM = (0, 8, 1)


@dataclass(frozen=True)
class QuorumMissRule:
    status: int
    shape: dict[str, Any]
    source: str

    def body_ok(self, body: Any, needed: int) -> bool:
        """Whether a quorum-miss body has the documented shape for a cluster that needed `needed` acks."""
        if not isinstance(body, dict) or body.get("needed") != needed:
            return False
        if self.status == 202:
            acks = body.get("acks")
            return (body.get("quorum_met") is False and body.get("durability") == "local"
                    and isinstance(acks, int) and not isinstance(acks, bool) and 1 <= acks < needed)
        got = body.get("got")
        return (body.get("error") == "quorum_not_met" and isinstance(got, int) and not isinstance(got, bool)
                and 1 <= got < needed)


def _numeric(version: str) -> tuple[int, ...] | None:
    m = re.match(r"^(\d+)\.(\d+)\.(\d+)", version)
    return tuple(int(g) for g in m.groups()) if m else None


def quorum_miss_rule(version: str | None, needed: int) -> QuorumMissRule:
    """The documented answer of `version` (e.g. "0.6.3") to a write that cannot reach `needed` acks."""
    parts = _numeric(version) if version else None
    if parts is not None and parts >= ACCEPTED_FROM:
        return QuorumMissRule(202, {"quorum_met": False, "acks": "1..needed-1", "needed": needed,
                                    "durability": "local"}, f"{version}: 202 from 0.8.1 (G12)")
    who = version or "version unknown: the contract"
    return QuorumMissRule(503, {"error": "quorum_not_met", "got": "1..needed-1", "needed": needed},
                          f"{who}: 503 quorum_not_met (0.6.0-0.8.0)")
