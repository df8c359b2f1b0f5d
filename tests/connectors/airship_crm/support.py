"""Helpers: canonical records by hand, and a harness around an in-process sandbox."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import SecretStr

from tests.connectors.sandbox_admin import SandboxAdmin
from ticketbridge.connectors.airship_crm import (
    AirshipCrmConfig,
    AirshipCrmDestination,
    ContactBookingsOptions,
)
from ticketbridge.connectors.base import Change, Mapped, Record
from ticketbridge.http import HttpContext
from ticketbridge.model import (
    Booking,
    BookingStatus,
    Consent,
    ConsentState,
    Contact,
    Event,
    Money,
    Venue,
)
from ticketbridge.sandbox import SandboxApp

BASE = "http://airship.sandbox.test"
TOKEN = "sandbox-airship-token"


def make_booking(
    ref: str = "R1",
    *,
    email: str | None = "jane.doe@example.com",
    mobile: str | None = "07700 900123",
    venue: str | None = "Riverside Hall",
    status: BookingStatus = BookingStatus.BOOKED,
    email_consent: ConsentState = ConsentState.GRANTED,
    sms_consent: ConsentState = ConsentState.UNKNOWN,
    tags: tuple[str, ...] = (),
    party_size: int | None = 2,
    value: str | None = "45.00",
    source: str | None = "web",
    contact: Contact | None = None,
) -> Record:
    """A canonical booking record as a source would emit it (``Contact.build`` normalises)."""
    person = contact or Contact.build(
        email=email,
        mobile=mobile,
        default_region="GB",
        first_name="Jane",
        last_name="Doe",
        email_consent=Consent(state=email_consent),
        sms_consent=Consent(state=sms_consent),
    )
    place = Venue(name=venue) if venue else None
    data = Booking(
        confirmation_number=ref,
        booked_at=datetime(2024, 5, 1, 9, 30, tzinfo=UTC),
        attendance_at=datetime(2024, 6, 1, 19, 0, tzinfo=UTC),
        status=status,
        source=source,
        party_size=party_size,
        value=Money.from_decimal(value, "GBP") if value else None,
        contact=person,
        venue=place,
        event=Event(external_id="E1", name="Friday Night", venue=place, tags=list(tags)),
    )
    return Record(key=f"booking:ticketco:{ref}", kind="booking", data=data)


class Harness(SandboxAdmin):
    """One sandbox, an HttpContext mounted on it, and the destinations built from it."""

    def __init__(self, sandbox: SandboxApp) -> None:
        self.sandbox = sandbox
        self.sleeps: list[float] = []

        async def no_wait(seconds: float) -> None:  # retries stay fast; delays are recorded
            self.sleeps.append(seconds)

        self.origin = BASE
        self.transport = httpx.ASGITransport(app=sandbox.app)
        self.ctx = HttpContext(sleep=no_wait)
        self.ctx.mount(BASE, self.transport)
        self._open: list[AirshipCrmDestination] = []

    def config(self, **overrides: Any) -> AirshipCrmConfig:
        settings: dict[str, Any] = {
            "platform": "airship_crm",
            "base_url": BASE + "/v1",
            "token": SecretStr(TOKEN),
            "account_id": 1,
            **overrides,
        }
        return AirshipCrmConfig(**settings)

    def destination(self, **overrides: Any) -> AirshipCrmDestination:
        dest = AirshipCrmDestination(self.config(**overrides), self.ctx)
        self._open.append(dest)
        return dest

    async def aclose(self) -> None:
        for dest in self._open:
            await dest.aclose()


def change_for(
    dest: AirshipCrmDestination,
    record: Record,
    action: str = "create",
    *,
    entities: tuple[str, ...] | None = None,
    dest_ids: dict[str, str] | None = None,
    options: Any = None,
) -> Change:
    """What the engine would hand over: prepared fields, filtered to ``entities``.

    The default entity filter mirrors the object's default policy: contact on create only.
    """
    mapped: Mapped = dest.prepare("contact_bookings", record, options or ContactBookingsOptions())
    if entities is None:
        entities = ("contact", "booking") if action == "create" else ("booking",)
    fields = {k: v for k, v in mapped.items() if k in entities}
    return Change(
        key=record.key,
        action=action,  # type: ignore[arg-type]
        record=record,
        fields=fields,
        dest_ids=dict(dest_ids or {}),
    )
