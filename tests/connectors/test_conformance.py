"""Every installed connector passes the conformance suite against its own sandbox."""

from __future__ import annotations

import inspect

import pytest

from ticketbridge.connectors import registry
from ticketbridge.connectors.testing import CHECKS


@pytest.mark.parametrize("check", sorted(CHECKS))
@pytest.mark.parametrize("platform", registry.names())
async def test_conformance(platform: str, check: str) -> None:
    result = CHECKS[check](registry.get(platform))
    if inspect.isawaitable(result):
        await result
