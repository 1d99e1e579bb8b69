"""Fixtures for the infra tests: fresh Pulumi mocks per test."""

from __future__ import annotations

import pulumi
import pytest
from do_mocks import DoMocks


@pytest.fixture
def mocks() -> DoMocks:
    """Fresh mocks per test, so resource counts are this test's own."""
    m = DoMocks()
    pulumi.runtime.set_mocks(m, project="ai-memory-ship-gate", stack="campaign-test", preview=False)
    return m


def pytest_configure(config: pytest.Config) -> None:
    """pulumi_digitalocean warns about its own deprecated resources at import; that noise is not ours."""
    config.addinivalue_line("filterwarnings", r"ignore::DeprecationWarning:pulumi_digitalocean\..*")
