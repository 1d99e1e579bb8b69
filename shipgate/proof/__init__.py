"""Proof of the gate itself: the self-test against seeded defects."""
