"""Every installed connector passes the conformance suite against its own sandbox.

A case that does not apply to a connector is reported as skipped with its reason, never as
passed.
"""

from __future__ import annotations

from typing import Any

import pytest

from ticketbridge.connectors import registry
from ticketbridge.connectors.testing import CHECKS, NotApplicable


def _cases() -> list[Any]:
    return [
        pytest.param(platform, check, id=f"{platform}-{check}")
        for platform in registry.names()
        for check in CHECKS
    ]


@pytest.mark.parametrize(("platform", "check"), _cases())
async def test_conformance(platform: str, check: str) -> None:
    try:
        await CHECKS[check](registry.get(platform))
    except NotApplicable as exc:
        pytest.skip(exc.reason)
