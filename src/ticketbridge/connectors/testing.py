"""The conformance suite every connector passes, against its own sandbox over real HTTP.

Each check is a plain async function taking the :class:`Connector`; ``tests/connectors/
test_conformance.py`` runs them all for every installed connector, so a new connector is held
to the same contract the moment it registers its entry point.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from ticketbridge.connectors.base import (
    ConnectionConfig,
    Connector,
    Destination,
    ReadRequest,
    Record,
    Source,
)
from ticketbridge.engine.records import record_from_json, record_to_json
from ticketbridge.errors import AuthError, ConnectorError
from ticketbridge.http.context import HttpContext
from ticketbridge.model import (
    Booking,
    Consent,
    ConsentState,
    Contact,
    Event,
    Money,
    Ticket,
    Venue,
    stable_hash,
)
from ticketbridge.project import expand_env
from ticketbridge.sandbox import SandboxApp

SANDBOX_URL = "http://sandbox.conformance"
NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


def sandbox(connector: Connector, records: int = 60) -> SandboxApp:
    assert connector.sandbox is not None, f"{connector.platform} has no sandbox"
    app: SandboxApp = connector.sandbox.create(seed=7, records=records, today=NOW)
    return app


def sandbox_config(connector: Connector, env: dict[str, str] | None = None) -> ConnectionConfig:
    """The connection settings ``init`` and the demo write, loaded like a project file."""
    assert connector.sandbox is not None, f"{connector.platform}: no sandbox"
    raw = connector.sandbox.config(SANDBOX_URL)
    expanded = expand_env(raw, env if env is not None else dict(connector.sandbox.env))
    return connector.config.model_validate(expanded)


def context(app: SandboxApp) -> HttpContext:
    async def no_sleep(_: float) -> None:
        return None

    ctx = HttpContext(sleep=no_sleep)
    ctx.mount(SANDBOX_URL, httpx.ASGITransport(app=app.app))
    return ctx


def check_registration(connector: Connector) -> None:
    assert (
        connector.source is not None
        or connector.destination is not None
        or (connector.sandbox is not None)
    ), "a connector must offer something"
    assert "platform" in connector.config.model_fields
    config = sandbox_config(connector)
    assert config.platform == connector.platform
    assert connector.sandbox is not None
    for secret in connector.sandbox.env.values():
        assert secret not in repr(config), "secrets must be SecretStr (never in repr)"
    referenced = str(connector.sandbox.config(SANDBOX_URL))
    for name, value in connector.sandbox.env.items():
        if f"${{{name}}}" in referenced:
            assert value in config.secrets(), f"{name} must be a secret field"


async def read_all(source: Source, stream: str, options: Any) -> list[Record]:
    records: list[Record] = []
    async for page in source.read(ReadRequest(stream=stream, options=options)):
        records.extend(page.records)
    return records


async def check_source(connector: Connector) -> None:
    """Every stream reads from the sandbox; keys are unique and stable; records survive the
    JSON round trip dead letters take; checks pass with the sandbox credentials."""
    if connector.source is None:
        return
    app = sandbox(connector)
    source = connector.source(sandbox_config(connector), context(app))
    try:
        assert all(c.ok for c in await source.check()), await source.check()
        for spec in source.streams():
            options = spec.options()
            first = await read_all(source, spec.name, options)
            assert first, f"{connector.platform}.{spec.name} read nothing from its sandbox"
            keys = [r.key for r in first]
            assert len(keys) == len(set(keys)), "record keys must be unique within a read"
            assert all(r.kind in spec.kinds for r in first)
            for record in first[:50]:
                again = record_from_json(record_to_json(record))
                assert again.data == record.data and again.key == record.key
            second = await read_all(source, spec.name, options)
            assert [r.key for r in second] == keys, "reads must be deterministic"
        assert source.api_calls > 0
    finally:
        await source.aclose()


async def check_source_rejects_bad_credentials(connector: Connector) -> None:
    if connector.source is None or connector.sandbox is None or not connector.sandbox.env:
        return
    wrong = {k: "wrong-" + v for k, v in connector.sandbox.env.items()}
    source = connector.source(sandbox_config(connector, wrong), context(sandbox(connector)))
    try:
        spec = source.streams()[0]
        try:
            await read_all(source, spec.name, spec.options())
        except AuthError as exc:
            assert connector.platform in str(exc) or exc.platform == connector.platform
            for secret in wrong.values():
                assert secret not in str(exc)
            return
        raise AssertionError("a wrong credential must raise AuthError")
    finally:
        await source.aclose()


def sample_records() -> list[Record]:
    contact = Contact.build(
        email="ada@example.org",
        mobile="+447700900123",
        first_name="Ada",
        last_name="Byron",
        email_consent=Consent(state=ConsentState.GRANTED, source="test"),
        attributes={"id": 1, "cards": {"Cardnumber": 42}},
    )
    event = Event(
        external_id="E1",
        name="Gala",
        venue=Venue(name="Riverside Hall"),
        starts_at=NOW,
        tags=["Golf"],
    )
    booking = Booking(
        confirmation_number="C1",
        booked_at=NOW,
        attendance_at=NOW,
        party_size=2,
        value=Money(minor=5000, currency="GBP"),
        contact=contact,
        venue=event.venue,
        event=event,
        tickets=[Ticket(number="T1", price=Money(minor=2500, currency="GBP"))],
    )
    return [
        Record("contact:test:1", "contact", contact),
        Record("booking:test:C1", "booking", booking),
    ]


async def check_destination_prepare(connector: Connector) -> None:
    """``prepare`` is pure: deterministic and hashable, for every accepted kind."""
    if connector.destination is None:
        return
    destination: Destination = connector.destination(
        sandbox_config(connector), context(sandbox(connector))
    )
    try:
        for spec in destination.objects():
            options = spec.options()
            for record in sample_records():
                if record.kind not in spec.accepts:
                    continue
                try:
                    first = destination.prepare(spec.name, record, options)
                except ConnectorError:
                    continue  # refusing a record is allowed; it must just be deterministic
                assert first == destination.prepare(spec.name, record, options)
                assert set(first) <= set(spec.entities) or not spec.entities
                stable_hash(first)  # JSON-able, as the ledger hashes it
        assert await destination.check(), "check() reports something"
    finally:
        await destination.aclose()


async def check_sandbox_admin(connector: Connector) -> None:
    app = sandbox(connector)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app.app), base_url=SANDBOX_URL
    ) as client:
        stats = (await client.get("/_sandbox/stats")).json()
        assert {"requests", "statuses", "writes"} <= set(stats)
        assert (await client.post("/_sandbox/reset")).status_code == 200
        assert (await client.get("/_sandbox/data")).status_code == 200
        faults = await client.post("/_sandbox/faults", json={"rate_5xx": 0.5})
        assert faults.status_code == 200


CHECKS = {
    "registration": check_registration,
    "source": check_source,
    "source_bad_credentials": check_source_rejects_bad_credentials,
    "destination_prepare": check_destination_prepare,
    "sandbox_admin": check_sandbox_admin,
}
