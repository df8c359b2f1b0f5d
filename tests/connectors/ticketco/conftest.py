"""Fixtures: an in-process TicketCo sandbox reached over real HTTP (ASGI transport)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ticketbridge.connectors.ticketco.sandbox import create_sandbox
from ticketbridge.sandbox import SandboxApp

from .support import TODAY, Harness


@pytest.fixture
def sandbox() -> SandboxApp:
    # A small page size so that every list is read over several pages.
    return create_sandbox(seed=7, records=1200, today=TODAY, page_size=7)


@pytest.fixture
async def harness(sandbox: SandboxApp) -> AsyncIterator[Harness]:
    h = Harness(sandbox)
    yield h
    await h.aclose()
