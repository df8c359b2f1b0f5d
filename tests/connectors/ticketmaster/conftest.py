"""Fixtures: an in-process Ticketmaster sandbox reached over real HTTP (ASGI transport)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ticketbridge.connectors.ticketmaster import create_sandbox
from ticketbridge.sandbox import SandboxApp

from .support import TODAY, Harness


@pytest.fixture
def sandbox() -> SandboxApp:
    # No spike arrest here: these tests are about data, and retry waits would only slow
    # them down. The rate-limit tests build their own sandbox with the limit on.
    return create_sandbox(seed=7, records=300, today=TODAY, spike_arrest_per_s=None)


@pytest.fixture
async def harness(sandbox: SandboxApp) -> AsyncIterator[Harness]:
    h = Harness(sandbox)
    yield h
    await h.aclose()
