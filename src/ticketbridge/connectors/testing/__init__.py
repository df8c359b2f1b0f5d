"""The conformance suite every connector passes, against its own sandbox over real HTTP.

Each case is a plain async function taking the :class:`Connector`; ``tests/connectors/
test_conformance.py`` runs them all for every installed connector, so a new connector is held
to the same contract the moment it registers its entry point. The cases work through the
``Source`` / ``Destination`` protocols and the sandbox admin routes only, never a platform's
own payloads.

A case that does not apply to a connector (a source case for a destination, say) raises
:class:`NotApplicable` with the reason: the test runner reports it as skipped, never passed.
Every other outcome is an assertion: a case that returns has checked something.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ticketbridge.connectors.base import Connector
from ticketbridge.connectors.testing.destinations import (
    check_destination_bad_credentials,
    check_destination_check,
    check_destination_prepare,
    check_destination_retry_after,
    check_destination_write,
)
from ticketbridge.connectors.testing.harness import (
    NOW,
    SANDBOX_URL,
    Harness,
    NotApplicable,
    sandbox_config,
)
from ticketbridge.connectors.testing.samples import sample_records
from ticketbridge.connectors.testing.sources import (
    check_source_bad_credentials,
    check_source_check,
    check_source_read,
    check_source_resume,
    check_source_retry_after,
)

KINDS = frozenset({"booking", "contact", "ticket"})


async def check_registration(connector: Connector) -> None:
    """The connector offers something, has a sandbox (DESIGN 6), its sandbox settings load
    as a project file would, its credentials are secrets, and its declared streams and
    objects are the ones its source and destination list."""
    assert (
        connector.source is not None
        or connector.destination is not None
        or (connector.sandbox is not None)
    ), "a connector must offer something"
    assert connector.sandbox is not None, f"{connector.platform} has no sandbox (DESIGN 6)"
    assert "platform" in connector.config.model_fields
    config = sandbox_config(connector)
    assert config.platform == connector.platform
    for secret in connector.sandbox.env.values():
        assert secret not in repr(config), "secrets must be SecretStr (never in repr)"
    referenced = str(connector.sandbox.config(SANDBOX_URL))
    for name, value in connector.sandbox.env.items():
        assert f"${{{name}}}" in referenced, f"{name} is declared but never referenced"
        assert value in config.secrets(), f"{name} must be a secret field"
    harness = Harness.create(connector)
    if connector.source is not None:
        async with harness.source() as source:
            assert [s.name for s in source.streams()] == [s.name for s in connector.streams]
            for spec in source.streams():
                assert set(spec.kinds) <= KINDS, f"{spec.name}: unknown kinds {spec.kinds}"
    if connector.destination is not None:
        async with harness.destination() as destination:
            assert [o.name for o in destination.objects()] == [o.name for o in connector.objects]
            for obj in destination.objects():
                assert obj.accepts and set(obj.accepts) <= KINDS, f"{obj.name}: {obj.accepts}"


async def check_sandbox_admin(connector: Connector) -> None:
    """``/_sandbox/*``: stats count requests (admin ones not), faults are set, shown and
    applied (a deterministic 429 with Retry-After), bad fault settings are refused, data is
    a JSON object, and reset restores the seeded data, clears stats and faults."""
    harness = Harness.create(connector)
    stats = await harness.stats()
    assert {"requests", "statuses", "writes", "faults", "total_requests"} <= set(stats)
    assert stats["total_requests"] == 0, "admin calls are not counted"
    seeded = await harness.data()
    assert isinstance(seeded, dict) and seeded, "/_sandbox/data is a JSON object"

    shown = await harness.faults(fail_next=1, retry_after_s=7)
    assert (shown["fail_next"], shown["retry_after_s"]) == (1, 7)
    status, _ = await harness.admin("POST", "/_sandbox/faults", {"no_such_fault": 1})
    assert status == 422, f"an unknown fault setting is refused, not {status}"
    await harness.faults(fail_next=1, retry_after_s=7)
    status, _ = await harness.admin("GET", "/conformance/no-such-route")
    assert status == 429, f"the next request answers 429, not {status}"
    status, _ = await harness.admin("GET", "/conformance/no-such-route")
    assert status == 404, f"only the next one: then the route's own answer, not {status}"
    stats = await harness.stats()
    assert stats["total_requests"] == 2 and stats["statuses"] == {"404": 1, "429": 1}, stats
    assert stats["faults"] == {"fail_next": 1}, stats["faults"]

    await harness.faults(rate_5xx=1.0)
    status, _ = await harness.admin("POST", "/_sandbox/reset")
    assert status == 200
    assert (await harness.stats())["total_requests"] == 0, "reset clears the stats"
    status, _ = await harness.admin("GET", "/conformance/no-such-route")
    assert status == 404, f"reset clears the faults, yet got {status}"
    assert await harness.data() == seeded, "reset restores the seeded data"


Check = Callable[[Connector], Awaitable[None]]

CHECKS: dict[str, Check] = {
    "registration": check_registration,
    "sandbox_admin": check_sandbox_admin,
    "source_check": check_source_check,
    "source_read": check_source_read,
    "source_resume": check_source_resume,
    "source_retry_after": check_source_retry_after,
    "source_bad_credentials": check_source_bad_credentials,
    "destination_check": check_destination_check,
    "destination_prepare": check_destination_prepare,
    "destination_write": check_destination_write,
    "destination_retry_after": check_destination_retry_after,
    "destination_bad_credentials": check_destination_bad_credentials,
}

__all__ = ["CHECKS", "NOW", "SANDBOX_URL", "Harness", "NotApplicable", "sample_records"]
