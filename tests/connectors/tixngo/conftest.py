"""Fixtures: an in-process TIXNGO sandbox reached over real HTTP (ASGI transport)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ticketbridge.connectors.tixngo import create_sandbox
from ticketbridge.sandbox import SandboxApp

from .support import TODAY, Harness


@pytest.fixture
def sandbox() -> SandboxApp:
    return create_sandbox(seed=7, records=2500, today=TODAY)


@pytest.fixture
async def harness(sandbox: SandboxApp) -> AsyncIterator[Harness]:
    h = Harness(sandbox)
    yield h
    await h.aclose()
