"""Fixtures for the infra tests: fresh Pulumi mocks per test."""

from __future__ import annotations

import warnings

import pulumi
import pytest

with warnings.catch_warnings():
    # pulumi_digitalocean warns about its own deprecated resources when imported; that noise is not ours.
    # Importing it here, once, keeps it out of every later import (the module is then cached).
    warnings.simplefilter("ignore", DeprecationWarning)
    import pulumi_digitalocean  # noqa: F401

from do_mocks import DoMocks


@pytest.fixture
def mocks() -> DoMocks:
    """Fresh mocks per test, so resource counts are this test's own."""
    m = DoMocks()
    pulumi.runtime.set_mocks(m, project="ai-memory-ship-gate", stack="campaign-test", preview=False)
    return m

