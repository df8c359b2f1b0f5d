"""Fixtures: an in-process SECUTIX 360 sandbox reached over real HTTP (ASGI transport)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .support import Harness


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = Harness()
    yield h
    await h.aclose()
