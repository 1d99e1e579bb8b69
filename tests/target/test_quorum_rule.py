"""The quorum-miss answer each release documents (docs/release-history.md), as the probes judge it."""

from __future__ import annotations

from shipgate.target.quorum import quorum_miss_rule

MISS_503 = {"error": "quorum_not_met", "got": 1, "needed": 2, "reason": "unreachable"}
MISS_202 = {"quorum_met": False, "acks": 1, "needed": 2, "reason": "timeout", "durability": "local"}


def test_up_to_0_8_0_a_miss_is_503_quorum_not_met():
    for version in ("0.6.0", "0.6.3", "0.7.1", "0.8.0", None, "garbage"):
        rule = quorum_miss_rule(version, 2)
        assert rule.status == 503, version
        assert rule.body_ok(MISS_503, 2) and not rule.body_ok(MISS_202, 2)


def test_from_0_8_1_a_miss_is_202_local_durability():
    for version in ("0.8.1", "0.9.0", "0.10.0", "1.0.0-rc1"):
        rule = quorum_miss_rule(version, 2)
        assert rule.status == 202, version
        assert rule.body_ok(MISS_202, 2) and not rule.body_ok(MISS_503, 2)


def test_a_body_claiming_more_acks_than_a_miss_can_have_or_another_quorum_is_refused():
    rule = quorum_miss_rule("0.6.3", 2)
    assert not rule.body_ok({**MISS_503, "got": 2}, 2)
    assert not rule.body_ok({**MISS_503, "got": True}, 2)
    assert not rule.body_ok(MISS_503, 3)
    assert not rule.body_ok("quorum_not_met", 2)
