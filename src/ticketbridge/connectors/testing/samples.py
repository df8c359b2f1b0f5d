"""Canonical sample records every destination that accepts their kind must take.

Each sample carries identifiers no seeded sandbox record has (``conformance`` in the
address, the reference and the ticket number), so a case can find what a write left in
``/_sandbox/data`` without knowing the platform's payload shapes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ticketbridge.connectors.base import ObjectSpec, Record
from ticketbridge.connectors.testing.harness import NOW
from ticketbridge.model import (
    Booking,
    Consent,
    ConsentState,
    Contact,
    Event,
    Money,
    Person,
    Ticket,
    Venue,
)

VENUE = Venue(external_id="conformance-venue-1", name="Riverside Hall")
EVENT = Event(
    external_id="conformance-event-1",
    name="Conformance Gala",
    venue=VENUE,
    starts_at=NOW + timedelta(days=10),
    tags=["Golf"],
)


def _contact(first: str, email: str, mobile: str) -> Contact:
    return Contact.build(
        email=email,
        mobile=mobile,
        first_name=first,
        last_name="Conformance",
        email_consent=Consent(state=ConsentState.GRANTED, source="conformance"),
        attributes={"id": 4711, "cards": {"Cardnumber": 4711}},
    )


def _ticket(number: str, holder: str, **mobile: Any) -> Ticket:
    return Ticket(
        number=number,
        barcode=number.replace("-", ""),
        seat="12",
        row="F",
        section="Stalls",
        type="Adult",
        price=Money(minor=2500, currency="GBP"),
        holder=Person(first_name="Ada", last_name="Conformance", email=holder),
        status="valid",
        event=EVENT,
        updated_at=NOW,
        **mobile,
    )


def sample_records() -> list[Record]:
    """One record of each canonical kind, each with identities of its own."""
    booker = _contact("Grace", "grace.conformance@example.org", "+447700900456")
    booking = Booking(
        confirmation_number="TBCONF-4711",
        booked_at=NOW - timedelta(days=3),
        attendance_at=NOW + timedelta(days=10),
        source="web",
        party_size=2,
        value=Money(minor=5000, currency="GBP"),
        contact=booker,
        venue=VENUE,
        event=EVENT,
        tickets=[_ticket("TBCONF-4711-T1", booker.email or ""), _ticket("TBCONF-4711-T2", "")],
        updated_at=NOW,
    )
    return [
        Record(
            "contact:conformance:4711",
            "contact",
            _contact("Ada", "ada.conformance@example.org", "+447700900123"),
            cursor=NOW,
        ),
        Record("booking:conformance:TBCONF-4711", "booking", booking, cursor=NOW),
        Record(
            "ticket:conformance:TBTKT-4712",
            "ticket",
            # A mobile ticket (TIXNGO's feedback): its wallet owner, status and mode too.
            _ticket(
                "TBTKT-4712",
                "alan.conformance@example.org",
                owner=Person(
                    first_name="Alan",
                    last_name="Owner",
                    email="alan.owner.conformance@example.org",
                    external_id="u-conformance-1",
                ),
                mobile_status="TRANSFERRED",
                mobile_status_mode="lifecycle",
                attributes={"previous_status": "PENDING_TRANSFER"},
            ),
            cursor=NOW,
        ),
    ]


def identifiers(record: Record) -> list[str]:
    """Strings by which a destination's data may show the record: its reference, ticket
    numbers and people's addresses (lower case: platforms normalise addresses)."""
    data = record.data
    found: list[str | None] = []
    if isinstance(data, Contact):
        found += [data.email, data.mobile.lstrip("+") if data.mobile else None]
    elif isinstance(data, Booking):
        found += [data.confirmation_number, data.contact.email if data.contact else None]
        found += [t.number for t in data.tickets]
    else:
        found += [data.number, data.barcode, data.holder.email if data.holder else None]
    return [s.lower() for s in found if s]


def samples_for(spec: ObjectSpec) -> list[Record]:
    """The samples of every kind ``spec`` accepts (a kind without a sample is a suite bug)."""
    records = [r for r in sample_records() if r.kind in spec.accepts]
    missing = set(spec.accepts) - {r.kind for r in records}
    assert not missing, f"the conformance suite has no sample of kind {sorted(missing)}"
    return records
