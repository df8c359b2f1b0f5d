"""Fixtures: an in-process Airship CRM sandbox reached over real HTTP (ASGI transport)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ticketbridge.connectors.airship_crm.sandbox import create_sandbox
from ticketbridge.sandbox import SandboxApp

from .support import Harness


@pytest.fixture
def sandbox() -> SandboxApp:
    return create_sandbox()


@pytest.fixture
async def harness(sandbox: SandboxApp) -> AsyncIterator[Harness]:
    h = Harness(sandbox)
    yield h
    await h.aclose()
